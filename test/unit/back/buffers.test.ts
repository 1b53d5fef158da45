/**
 * The backend's per-frontend buffer store (src/back/buffers.ts) on two local domains: request
 * validation with its exact statuses, the lifetimes (a display buffer lives while in the table or
 * used by a framebuffer; a framebuffer while attached or held by a connector; only then is the
 * memory unmapped or freed), per-frontend limits counted until buffers are really released, and
 * clear() when the frontend goes away. Nothing is left mapped, granted or allocated afterwards.
 */
import { describe, expect, it } from 'vitest';
import type { DbufCreateReq, FbAttachReq } from '../../../src/abi/displif-packets.js';
import { XENDISPL_OP_DBUF_CREATE, XENDISPL_OP_FB_ATTACH } from '../../../src/abi/displif-constants.js';
import { DRM_FORMAT_RGB565, DRM_FORMAT_XRGB8888 } from '../../../src/abi/fourcc.js';
import { XEN_ERRNO } from '../../../src/abi/xen-errno.js';
import { BufferStore, DEFAULT_LIMITS, type DisplayLimits } from '../../../src/back/buffers.js';
import type { Machine } from '../../../src/hypervisor/index.js';
import { FrontShbuf, type ShbufMode } from '../../../src/shbuf/front-shbuf.js';
import { acct, guest, newMachine } from '../hypervisor/helpers.js';

const EINVAL = -XEN_ERRNO.EINVAL;
const ENOENT = -XEN_ERRNO.ENOENT;
const EEXIST = -XEN_ERRNO.EEXIST;
const ENOMEM = -XEN_ERRNO.ENOMEM;
const PAGE = 4096;

async function setup(limits: Partial<DisplayLimits> = {}) {
  const m = newMachine(64);
  const fe = await guest(m, 'front');
  const be = await guest(m, 'back');
  // Maptrack, grant-table and p2m frames grow on first use and are kept: warm both modes up.
  for (const mode of ['frontend-alloc', 'backend-alloc'] as const) {
    const s = new BufferStore(be.platform, fe.domid, DEFAULT_LIMITS);
    const b = FrontShbuf.create({ platform: fe.platform, backendDomid: be.domid, size: 64 * PAGE, mode });
    expect(s.createBuffer(dbuf(1n, b.firstRef, { width: 256, height: 256, buffer_sz: 64 * PAGE, flags: mode === 'backend-alloc' ? 1 : 0 })).status).toBe(0);
    if (mode === 'backend-alloc') b.mapBackendPages();
    b.free();
    s.clear();
    drain(fe.platform, be.platform);
  }
  const store = new BufferStore(be.platform, fe.domid, { ...DEFAULT_LIMITS, ...limits });
  const shbuf = (bytes: number, mode: ShbufMode = 'frontend-alloc'): FrontShbuf => FrontShbuf.create({ platform: fe.platform, backendDomid: be.domid, size: bytes, mode });
  return { m, fe, be, store, shbuf, base: m.accounting() };
}

function drain(...ps: { grants: { retryDeferred(force?: boolean): unknown } }[]): void {
  for (const p of ps) p.grants.retryDeferred(true);
}

function dbuf(cookie: bigint, ref: number, o: Partial<Omit<DbufCreateReq, 'operation' | 'id' | 'dbuf_cookie' | 'gref_directory'>> = {}): DbufCreateReq {
  return {
    operation: XENDISPL_OP_DBUF_CREATE,
    id: 0,
    dbuf_cookie: cookie,
    width: o.width ?? 64,
    height: o.height ?? 32,
    bpp: o.bpp ?? 32,
    buffer_sz: o.buffer_sz ?? 64 * 32 * 4,
    flags: o.flags ?? 0,
    gref_directory: ref,
    data_ofs: o.data_ofs ?? 0,
  };
}

function fb(dbufCookie: bigint, fbCookie: bigint, o: { width?: number; height?: number; format?: number } = {}): FbAttachReq {
  return { operation: XENDISPL_OP_FB_ATTACH, id: 0, dbuf_cookie: dbufCookie, fb_cookie: fbCookie, width: o.width ?? 64, height: o.height ?? 32, pixel_format: o.format ?? DRM_FORMAT_XRGB8888 };
}

function mapsHeld(m: Machine, domid: number): number {
  return acct(m, domid).mapsHeld;
}

describe('BufferStore', () => {
  it('validates DBUF_CREATE and FB_ATTACH with exact statuses, leaving nothing mapped on failure', async () => {
    const { m, fe, be, store, shbuf, base } = await setup();
    const b = shbuf(64 * 32 * 4);
    const cases: [Partial<Parameters<typeof dbuf>[2]> & { cookie?: bigint; ref?: number }, number, string][] = [
      [{ cookie: 0n }, EINVAL, 'cookie 0'],
      [{ ref: 0 }, EINVAL, 'gref_directory 0'],
      [{ width: 0 }, EINVAL, 'width 0 only'],
      [{ bpp: 12 }, EINVAL, 'bpp 12'],
      [{ buffer_sz: 0 }, EINVAL, 'buffer_sz 0'],
      [{ buffer_sz: PAGE }, EINVAL, 'geometry larger than buffer_sz'],
      [{ data_ofs: 64 * 32 * 4 }, EINVAL, 'data_ofs at the end'],
      [{ flags: 1, data_ofs: 4, buffer_sz: 64 * 32 * 4 + 4 }, EINVAL, 'be-alloc with data_ofs'],
      [{ flags: 1, width: 0, height: 0, bpp: 0 }, EINVAL, 'be-alloc PRIME'],
    ];
    const maps = mapsHeld(m, be.domid);
    for (const [o, errno, what] of cases) {
      expect(store.createBuffer(dbuf(o.cookie ?? 1n, o.ref ?? b.firstRef, o)).status, what).toBe(errno);
      expect(mapsHeld(m, be.domid), what).toBe(maps);
    }
    expect(store.createBuffer(dbuf(1n, b.firstRef, { flags: 0xffff_fffe })).status, 'junk flags above bit 0').toBe(0);
    expect(store.createBuffer(dbuf(1n, b.firstRef)).status).toBe(EEXIST);
    expect(store.attach(fb(1n, 0n)).status).toBe(EINVAL);
    expect(store.attach(fb(2n, 5n)).status).toBe(ENOENT);
    expect(store.attach(fb(1n, 5n, { format: 0x20202020 })).status).toBe(EINVAL);
    expect(store.attach(fb(1n, 5n, { width: 65 })).status).toBe(EINVAL);
    expect(store.attach(fb(1n, 5n, { height: 33 })).status).toBe(EINVAL);
    expect(store.attach(fb(1n, 5n, { format: DRM_FORMAT_RGB565 })).status).toBe(0);
    expect(store.attach(fb(1n, 5n)).status).toBe(EEXIST);
    expect(store.detach(6n).status).toBe(ENOENT);
    expect(store.destroyBuffer(6n).status).toBe(ENOENT);
    expect(store.usage).toEqual({ buffers: 1, framebuffers: 1, bytes: 2 * PAGE });
    store.clear();
    expect(store.usage).toEqual({ buffers: 0, framebuffers: 0, bytes: 0 });
    b.free();
    drain(fe.platform, be.platform);
    expect(m.leaks(base)).toEqual([]);
  });

  it('keeps memory mapped while a framebuffer or a connector uses it, and counts it until then', async () => {
    const { m, fe, be, store, shbuf, base } = await setup();
    const b = shbuf(64 * 32 * 4);
    const maps = mapsHeld(m, be.domid);
    expect(store.createBuffer(dbuf(1n, b.firstRef)).status).toBe(0);
    expect(mapsHeld(m, be.domid)).toBe(maps + 2);
    expect(store.attach(fb(1n, 2n)).status).toBe(0);
    const shown = store.hold(store.framebuffer(2n)!);
    b.view!.fill(0x5a);
    expect(store.destroyBuffer(1n).status).toBe(0);
    expect(store.detach(2n).status).toBe(0);
    expect(store.framebuffer(2n)).toBeUndefined();
    // Still shown: still mapped, still counted, the pixels still the guest's.
    expect(mapsHeld(m, be.domid)).toBe(maps + 2);
    expect(store.usage).toEqual({ buffers: 1, framebuffers: 1, bytes: 2 * PAGE });
    expect(shown.page(1)[0]).toBe(0x5a);
    // The cookies are free again meanwhile.
    expect(store.createBuffer(dbuf(1n, b.firstRef)).status).toBe(0);
    expect(store.attach(fb(1n, 2n)).status).toBe(0);
    expect(mapsHeld(m, be.domid)).toBe(maps + 4);
    store.release(shown);
    expect(mapsHeld(m, be.domid)).toBe(maps + 2);
    expect(store.usage).toEqual({ buffers: 1, framebuffers: 1, bytes: 2 * PAGE });
    // clear() ends attachments and table entries; a framebuffer a connector holds lives on.
    const held = store.hold(store.framebuffer(2n)!);
    store.clear();
    expect(mapsHeld(m, be.domid)).toBe(maps + 2);
    store.release(held);
    expect(mapsHeld(m, be.domid)).toBe(maps);
    expect(store.usage).toEqual({ buffers: 0, framebuffers: 0, bytes: 0 });
    b.free();
    drain(fe.platform, be.platform);
    expect(m.leaks(base)).toEqual([]);
  });

  it('limits buffers, framebuffers and bytes per frontend (-ENOMEM, nothing mapped or allocated), counting until release', async () => {
    const { m, fe, be, store, shbuf, base } = await setup({ maxBuffers: 3, maxFramebuffers: 2, maxBytes: 8 * PAGE });
    const bs = [shbuf(2 * PAGE), shbuf(2 * PAGE), shbuf(2 * PAGE), shbuf(2 * PAGE)];
    for (let i = 0; i < 3; i++) expect(store.createBuffer(dbuf(BigInt(i + 1), bs[i]!.firstRef)).status).toBe(0);
    const before = acct(m, be.domid);
    expect(store.createBuffer(dbuf(9n, bs[3]!.firstRef)).status, 'buffer 4 of 3').toBe(ENOMEM);
    expect(store.attach(fb(1n, 11n)).status).toBe(0);
    expect(store.attach(fb(2n, 12n)).status).toBe(0);
    expect(store.attach(fb(3n, 13n)).status, 'framebuffer 3 of 2').toBe(ENOMEM);
    const held = store.hold(store.framebuffer(11n)!);
    expect(store.detach(11n).status).toBe(0);
    expect(store.destroyBuffer(1n).status).toBe(0);
    expect(store.createBuffer(dbuf(9n, bs[3]!.firstRef)).status, 'buffer 1 is still shown: still counted').toBe(ENOMEM);
    expect(store.attach(fb(3n, 13n)).status, 'framebuffer 11 is still shown: still counted').toBe(ENOMEM);
    expect(acct(m, be.domid)).toEqual(before);
    store.release(held);
    expect(store.createBuffer(dbuf(9n, bs[3]!.firstRef)).status).toBe(0);
    expect(store.attach(fb(3n, 13n)).status).toBe(0);
    // Bytes: 3 buffers of 2 pages = 6 of 8 pages; 3 pages more do not fit, in either mode.
    store.clear();
    for (let i = 0; i < 3; i++) expect(store.createBuffer(dbuf(BigInt(i + 1), bs[i]!.firstRef)).status).toBe(0);
    const three = shbuf(3 * PAGE);
    const beThree = shbuf(3 * PAGE, 'backend-alloc');
    const full = acct(m, be.domid);
    expect(store.destroyBuffer(3n).status).toBe(0);
    expect(store.createBuffer(dbuf(4n, three.firstRef, { width: 64, height: 48, buffer_sz: 3 * PAGE })).status).toBe(0);
    expect(store.createBuffer(dbuf(5n, beThree.firstRef, { width: 64, height: 48, buffer_sz: 3 * PAGE, flags: 1 })).status).toBe(ENOMEM);
    expect(store.createBuffer(dbuf(5n, bs[3]!.firstRef, { buffer_sz: 0xffff_f000, width: 1, height: 1 })).status).toBe(ENOMEM);
    expect(acct(m, be.domid).pages).toBe(full.pages);
    expect(store.usage).toEqual({ buffers: 3, framebuffers: 0, bytes: 7 * PAGE });
    store.clear();
    for (const b of [...bs, three, beThree]) b.free();
    drain(fe.platform, be.platform);
    expect(m.leaks(base)).toEqual([]);
  });

  it('takes a PRIME import\'s geometry from its first framebuffer that fits', async () => {
    const { m, fe, be, store, shbuf, base } = await setup();
    const b = shbuf(3 * PAGE);
    expect(store.createBuffer(dbuf(1n, b.firstRef, { width: 0, height: 0, bpp: 0, buffer_sz: 3 * PAGE, data_ofs: 256 })).status).toBe(0);
    expect(store.attach(fb(1n, 2n, { width: 128, height: 64 })).status, 'too big: changes nothing').toBe(EINVAL);
    expect(store.attach(fb(1n, 3n)).status).toBe(0);
    expect(store.framebuffer(3n)).toMatchObject({ pitch: 256, offset: 256, width: 64, height: 32 });
    expect(store.attach(fb(1n, 4n, { width: 65, height: 1 })).status, 'wider than the pitch fixed by the first').toBe(EINVAL);
    expect(store.attach(fb(1n, 5n, { format: DRM_FORMAT_RGB565 })).status).toBe(0);
    expect(store.framebuffer(5n)?.pitch).toBe(256);
    store.clear();
    b.free();
    drain(fe.platform, be.platform);
    expect(m.leaks(base)).toEqual([]);
  });
});

/**
 * Page-directory shared buffers, both ends, both modes, on the emulated machine: the frontend
 * builds and grants, the backend walks and maps (zero-copy: writes on either side are seen by
 * the other), or allocates and fills the directory (be-alloc) and the frontend maps the
 * backend's pages. Bad directories the backend must refuse, each with nothing left mapped: gref 0,
 * a chain shorter than the buffer, a loop, more directory pages than needed, refs granted to
 * another domain, read-only refs, a buffer over the limit. Freeing returns every grant, page and
 * mapping (grants the backend still maps are ended once it unmaps).
 */
import { describe, expect, it } from 'vitest';
import { PGDIR_GREFS_PER_PAGE } from '../../../src/abi/page-directory.js';
import { XEN_ERRNO } from '../../../src/abi/xen-errno.js';
import { allocateGuestBuffer, type BackBuffer, mapGuestBuffer } from '../../../src/back/buffer-memory.js';
import type { ShbufResult } from '../../../src/shbuf/back-shbuf.js';
import { readPage, setRefs, writeChain } from '../../../src/shbuf/directory.js';
import { FrontShbuf } from '../../../src/shbuf/front-shbuf.js';
import { guest, newMachine } from '../hypervisor/helpers.js';

/**
 * Two local domains. p2m leaves and maptrack frames are allocated on first use and kept (as in
 * Xen), so the baseline is taken after one round trip of each mode at `warmPages` pages.
 */
async function setup(memoryMiB = 64, warmPages = 3100) {
  const m = newMachine(memoryMiB);
  const fe = await guest(m, 'front');
  const be = await guest(m, 'back');
  const size = warmPages * 4096;
  for (const mode of ['frontend-alloc', 'backend-alloc'] as const) {
    const b = FrontShbuf.create({ platform: fe.platform, backendDomid: be.domid, size, mode });
    const back = mode === 'frontend-alloc' ? mapGuestBuffer(be.platform, fe.domid, b.firstRef, size) : allocateGuestBuffer(be.platform, fe.domid, b.firstRef, size);
    if (!back.ok) throw new Error(back.message);
    if (mode === 'backend-alloc') b.mapBackendPages();
    b.free();
    back.value.release();
    fe.platform.grants.retryDeferred(true);
    be.platform.grants.retryDeferred(true);
  }
  const base = m.accounting();
  return { m, fe: fe.platform, be: be.platform, feId: fe.domid, beId: be.domid, base };
}

function ok<T>(r: ShbufResult<T>): T {
  if (!r.ok) throw new Error(`expected ok, got ${r.errno}: ${r.message}`);
  return r.value;
}

function errOf(r: ShbufResult<unknown>): [number, string] {
  if (r.ok) throw new Error('expected an error');
  return [r.errno, r.message];
}

const EINVAL = -XEN_ERRNO.EINVAL;
const EACCES = -XEN_ERRNO.EACCES;

describe('frontend-allocated buffers', () => {
  for (const size of [1, 4096, 4097, 1920 * 1080 * 4, 1023 * 4096, 1023 * 4096 + 1, 3 * 1023 * 4096]) {
    it(`${size} bytes: the backend maps exactly the guest's pages, zero-copy both ways`, async () => {
      const { m, fe, be, feId, beId, base } = await setup();
      const buf = FrontShbuf.create({ platform: fe, backendDomid: beId, size, mode: 'frontend-alloc' });
      const pages = Math.ceil(size / 4096);
      expect(buf.pages).toBe(pages);
      const dirs = buf.directoryPages();
      expect(dirs).toHaveLength(Math.ceil(pages / PGDIR_GREFS_PER_PAGE));
      expect(readPage(dirs[dirs.length - 1]!).gref_dir_next_page).toBe(0);
      buf.view![size - 1] = 0x22;
      buf.view![0] = 0x11;
      const back = ok(mapGuestBuffer(be, feId, buf.firstRef, size));
      expect(back.pages).toBe(pages);
      expect(back.view![0]).toBe(0x11);
      if (size > 1) expect(back.view![size - 1]).toBe(0x22);
      back.view![0] = 0x33; // and the other way
      expect(buf.view![0]).toBe(0x33);
      back.release();
      buf.free();
      expect(m.leaks(base)).toEqual([]);
      await m.close();
    });
  }

  it('freeing while the backend still maps defers the grants until it unmaps', async () => {
    const { m, fe, be, feId, beId, base } = await setup();
    const buf = FrontShbuf.create({ platform: fe, backendDomid: beId, size: 3 * 4096, mode: 'frontend-alloc' });
    const back = ok(mapGuestBuffer(be, feId, buf.firstRef, 3 * 4096));
    buf.free();
    expect(fe.grants.deferredCount).toBe(3);
    back.page(2)[0] = 7; // still the guest's page, still usable by the backend
    back.release();
    fe.grants.retryDeferred(true);
    expect(fe.grants.deferredCount).toBe(0);
    expect(m.leaks(base)).toEqual([]);
    await m.close();
  });
});

describe('backend-allocated buffers (be-alloc)', () => {
  for (const size of [100, 1920 * 1080 * 4, 1023 * 4096 + 5]) {
    it(`${size} bytes: the backend fills the directory, the frontend maps the backend's pages`, async () => {
      const { m, fe, be, feId, beId, base } = await setup();
      const buf = FrontShbuf.create({ platform: fe, backendDomid: beId, size, mode: 'backend-alloc' });
      const back = ok(allocateGuestBuffer(be, feId, buf.firstRef, size));
      expect(Array.from(buf.listedRefs())).toEqual(Array.from(back.refs));
      buf.mapBackendPages();
      back.view![5] = 0x44;
      expect(buf.page(0)[5]).toBe(0x44);
      buf.page(buf.pages - 1)[0] = 0x55;
      expect(back.page(back.pages - 1)[0]).toBe(0x55);
      if (buf.view) expect(buf.view.length).toBe(size);
      buf.free();
      back.release();
      be.grants.retryDeferred(true);
      fe.grants.retryDeferred(true);
      expect(m.leaks(base)).toEqual([]);
      await m.close();
    });
  }

  it('mapping refs that are not the backend\'s fails with -ENXIO and maps nothing', async () => {
    const { m, fe, beId, base } = await setup();
    const buf = FrontShbuf.create({ platform: fe, backendDomid: beId, size: 2 * 4096, mode: 'backend-alloc' });
    setRefs(buf.directoryPages(), [8, 9]); // never granted by the backend
    expect(() => buf.mapBackendPages()).toThrow(expect.objectContaining({ errno: -XEN_ERRNO.ENXIO }) as Error);
    buf.free();
    expect(m.leaks(base)).toEqual([]);
    await m.close();
  });
});

describe('bad directories: an error, nothing left mapped', () => {
  async function refuse(build: (s: Awaited<ReturnType<typeof setup>>) => { firstRef: number; size: number; cleanup?: () => void }, mode: 'map' | 'alloc' = 'map'): Promise<[number, string]> {
    const s = await setup();
    const { firstRef, size, cleanup } = build(s);
    const during = s.m.accounting();
    const r: ShbufResult<BackBuffer> = mode === 'map' ? mapGuestBuffer(s.be, s.feId, firstRef, size, { maxPages: 4096 }) : allocateGuestBuffer(s.be, s.feId, firstRef, size, { maxPages: 4096 });
    const e = errOf(r);
    expect(s.m.leaks(during)).toEqual([]); // the backend holds nothing more than before
    cleanup?.();
    s.fe.grants.retryDeferred(true);
    expect(s.m.leaks(s.base)).toEqual([]);
    await s.m.close();
    return e;
  }

  const frontBuf = (s: Awaited<ReturnType<typeof setup>>, size: number) => FrontShbuf.create({ platform: s.fe, backendDomid: s.beId, size, mode: 'frontend-alloc' });

  it('gref_directory 0', async () => {
    expect(await refuse(() => ({ firstRef: 0, size: 4096 }))).toEqual([EINVAL, 'gref_directory is 0']);
  });

  it('a gref of 0 inside the directory', async () => {
    const [errno, msg] = await refuse((s) => {
      const b = frontBuf(s, 3 * 4096);
      const refs = b.listedRefs();
      refs[1] = 0;
      setRefs(b.directoryPages(), refs);
      return { firstRef: b.firstRef, size: 3 * 4096, cleanup: () => b.free() };
    });
    expect([errno, msg]).toEqual([EINVAL, 'gref[1] of the directory is 0']);
  });

  it('a chain shorter than the buffer (buffer_sz beyond the directory)', async () => {
    const [errno, msg] = await refuse((s) => {
      const b = frontBuf(s, 4096);
      return { firstRef: b.firstRef, size: 2000 * 4096, cleanup: () => b.free() };
    });
    expect(errno).toBe(EINVAL);
    expect(msg).toMatch(/ends after 1 pages; 2000 buffer pages need 2/);
  });

  it('a loop in gref_dir_next_page', async () => {
    const [errno, msg] = await refuse((s) => {
      const b = frontBuf(s, 3000 * 4096); // 3 directory pages
      const dirs = b.directoryPages();
      const links = dirs.map((d) => readPage(d).gref_dir_next_page); // page 1 links back to page 0
      writeChain(dirs, [0, links[0]!, b.firstRef], b.listedRefs());
      return { firstRef: b.firstRef, size: 3000 * 4096, cleanup: () => b.free() };
    });
    expect(errno).toBe(EINVAL);
    expect(msg).toMatch(/loops back/);
  });

  it('more directory pages than the buffer needs', async () => {
    const [errno, msg] = await refuse((s) => {
      const b = frontBuf(s, 2000 * 4096); // 2 directory pages, used for a 1-page buffer
      return { firstRef: b.firstRef, size: 4096, cleanup: () => b.free() };
    });
    expect(errno).toBe(EINVAL);
    expect(msg).toMatch(/more pages than the 1/);
  });

  it('refs granted to another domain', async () => {
    const [errno] = await refuse((s) => {
      const b = FrontShbuf.create({ platform: s.fe, backendDomid: 0, size: 2 * 4096, mode: 'frontend-alloc' });
      return { firstRef: b.firstRef, size: 2 * 4096, cleanup: () => b.free() };
    });
    expect(errno).toBe(EACCES);
  });

  it('read-only buffer refs where writing is needed', async () => {
    const [errno, msg] = await refuse((s) => {
      const b = frontBuf(s, 2 * 4096);
      const gfns = s.fe.memory.allocPages(1) as Int32Array;
      const ro = s.fe.grants.grantAccess(s.beId, gfns[0]!, true);
      const refs = b.listedRefs();
      const original = refs[1]!;
      refs[1] = ro;
      setRefs(b.directoryPages(), refs);
      return {
        firstRef: b.firstRef,
        size: 2 * 4096,
        cleanup: () => {
          s.fe.grants.endAccess(ro, () => s.fe.memory.freePages(gfns));
          refs[1] = original;
          setRefs(b.directoryPages(), refs);
          b.free();
        },
      };
    });
    expect(errno).toBe(EACCES);
    expect(msg).toMatch(/index 1\b/);
  });

  it('a read-only directory for be-alloc (the backend must write it)', async () => {
    const [errno] = await refuse((s) => {
      const gfns = s.fe.memory.allocPages(1) as Int32Array;
      const ro = s.fe.grants.grantAccess(s.beId, gfns[0]!, true);
      return { firstRef: ro, size: 4096, cleanup: () => s.fe.grants.endAccess(ro, () => s.fe.memory.freePages(gfns)) };
    }, 'alloc');
    expect(errno).toBe(EACCES);
  });

  it('a buffer over the per-buffer limit, and sizes that are not sizes', async () => {
    expect((await refuse(() => ({ firstRef: 8, size: 4097 * 4096 })))[0]).toBe(-XEN_ERRNO.ENOMEM);
    expect((await refuse(() => ({ firstRef: 8, size: 0 })))[0]).toBe(EINVAL);
    expect((await refuse(() => ({ firstRef: 8, size: 2 ** 32 })))[0]).toBe(EINVAL);
  });

  it('be-alloc into a short chain leaves nothing allocated', async () => {
    const [errno] = await refuse((s) => {
      const b = FrontShbuf.create({ platform: s.fe, backendDomid: s.beId, size: 4096, mode: 'backend-alloc' });
      return { firstRef: b.firstRef, size: 1500 * 4096, cleanup: () => b.free() };
    }, 'alloc');
    expect(errno).toBe(EINVAL);
  });
});

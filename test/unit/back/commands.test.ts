/**
 * The displif command handler (src/back/commands.ts) on two local domains, with a stand-in for
 * the connector (its resolution, mode and flip state): each request's exact status, the failure
 * hook, and GET_EDID into buffers of every legal size (the header sets a minimum of 32 KiB, no
 * maximum).
 */
import { describe, expect, it } from 'vitest';
import { type DisplReq, decodeReq, encodeReq } from '../../../src/abi/displif-packets.js';
import {
  XENDISPL_EDID_MAX_SIZE,
  XENDISPL_OP_DBUF_CREATE,
  XENDISPL_OP_FB_ATTACH,
  XENDISPL_OP_GET_EDID,
  XENDISPL_OP_PG_FLIP,
  XENDISPL_OP_SET_CONFIG,
} from '../../../src/abi/displif-constants.js';
import { DRM_FORMAT_XRGB8888 } from '../../../src/abi/fourcc.js';
import { XEN_ERRNO } from '../../../src/abi/xen-errno.js';
import { BufferStore, DEFAULT_LIMITS, type Framebuffer } from '../../../src/back/buffers.js';
import { type CommandContext, handleRequest } from '../../../src/back/commands.js';
import type { BackConnector, Reply } from '../../../src/back/connector.js';
import { FrontShbuf } from '../../../src/shbuf/front-shbuf.js';
import { guest, newMachine } from '../hypervisor/helpers.js';

const EINVAL = -XEN_ERRNO.EINVAL;
const ENOENT = -XEN_ERRNO.ENOENT;
const EBUSY = -XEN_ERRNO.EBUSY;

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/** The part of BackConnector the handler uses. */
class FakeConnector {
  readonly info = { frontendDomid: 0, devid: 0, index: 0, uniqueId: 'c0', width: 64, height: 32 };
  config: { fb: Framebuffer; x: number; y: number; width: number; height: number } | undefined;
  canFlip = true;
  flipped: bigint[] = [];
  accepted: bigint[] = [];
  setConfig(fb: Framebuffer, x: number, y: number, width: number, height: number): void {
    this.config = { fb, x, y, width, height };
  }
  reset(): void {
    this.config = undefined;
  }
  /** The state changes at once (accepted); presenting starts when the returned function runs. */
  acceptFlip(fb: Framebuffer): () => void {
    this.accepted.push(fb.fbCookie);
    return () => this.flipped.push(fb.fbCookie);
  }
}

async function setup() {
  const m = newMachine(64);
  const fe = await guest(m, 'front');
  const be = await guest(m, 'back');
  const store = new BufferStore(be.platform, fe.domid, DEFAULT_LIMITS);
  const failures: string[] = [];
  const ctx: CommandContext = { platform: be.platform, frontendDomid: fe.domid, store, onError: (_c, op, r) => failures.push(`${op} ${r.status}`) };
  const conn = new FakeConnector();
  const run = (req: WithoutId<DisplReq>): Reply => handleRequest(ctx, conn as unknown as BackConnector, decodeReq(encodeReq({ ...req, id: 7 })));
  const shbuf = (bytes: number): FrontShbuf => FrontShbuf.create({ platform: fe.platform, backendDomid: be.domid, size: bytes, mode: 'frontend-alloc' });
  return { m, fe, be, store, conn, run, shbuf, failures };
}

describe('handleRequest', () => {
  it('gives each request its status and reports failures by operation name', async () => {
    const { conn, run, shbuf, failures } = await setup();
    expect(run({ unknown: true, operation: 0x42, op: new Uint8Array(56) }).status).toBe(EINVAL);
    const b = shbuf(64 * 32 * 4);
    expect(run({ operation: XENDISPL_OP_DBUF_CREATE, dbuf_cookie: 1n, width: 64, height: 32, bpp: 32, buffer_sz: 8192, flags: 0, gref_directory: b.firstRef, data_ofs: 0 }).status).toBe(0);
    expect(run({ operation: XENDISPL_OP_FB_ATTACH, dbuf_cookie: 1n, fb_cookie: 2n, width: 64, height: 32, pixel_format: DRM_FORMAT_XRGB8888 }).status).toBe(0);
    expect(run({ operation: XENDISPL_OP_PG_FLIP, fb_cookie: 2n }).status, 'no mode').toBe(EINVAL);
    expect(run({ operation: XENDISPL_OP_SET_CONFIG, fb_cookie: 2n, x: 0, y: 0, width: 65, height: 32, bpp: 32 }).status).toBe(EINVAL);
    expect(run({ operation: XENDISPL_OP_SET_CONFIG, fb_cookie: 3n, x: 0, y: 0, width: 64, height: 32, bpp: 32 }).status).toBe(ENOENT);
    expect(run({ operation: XENDISPL_OP_SET_CONFIG, fb_cookie: 2n, x: 0, y: 0, width: 64, height: 32, bpp: 32 }).status).toBe(0);
    const flip = run({ operation: XENDISPL_OP_PG_FLIP, fb_cookie: 2n });
    expect(flip.status).toBe(0);
    expect(conn.accepted, 'the flip is accepted while handling the request').toEqual([2n]);
    expect(conn.flipped, 'presenting starts only once its response is out').toEqual([]);
    flip.after?.();
    expect(conn.flipped).toEqual([2n]);
    conn.canFlip = false;
    expect(run({ operation: XENDISPL_OP_PG_FLIP, fb_cookie: 2n }).status).toBe(EBUSY);
    expect(run({ operation: XENDISPL_OP_SET_CONFIG, fb_cookie: 0n, x: 1, y: 2, width: 3, height: 4, bpp: 5 }).status, 'reset').toBe(0);
    expect(conn.config).toBeUndefined();
    expect(failures).toEqual(['0x42 -22', 'PG_FLIP -22', 'SET_CONFIG -22', 'SET_CONFIG -2', 'PG_FLIP -16']);
  });

  for (const bytes of [128, 4096, XENDISPL_EDID_MAX_SIZE, 2 * XENDISPL_EDID_MAX_SIZE, 1024 * 4096]) {
    it(`GET_EDID into a ${bytes}-byte buffer writes the EDID`, async () => {
      const { run, shbuf } = await setup();
      const b = shbuf(bytes);
      const r = run({ operation: XENDISPL_OP_GET_EDID, buffer_sz: bytes, gref_directory: b.firstRef });
      expect(r.status, r.why).toBe(0);
      expect(r.edid_sz).toBe(128);
      expect([...b.view!.subarray(0, 8)]).toEqual([0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0]);
    });
  }

  it('GET_EDID into a buffer smaller than the EDID is -EINVAL', async () => {
    const { run, shbuf } = await setup();
    const b = shbuf(4096);
    expect(run({ operation: XENDISPL_OP_GET_EDID, buffer_sz: 127, gref_directory: b.firstRef }).status).toBe(EINVAL);
    expect([...b.view!.subarray(0, 8)]).toEqual(new Array<number>(8).fill(0));
  });
});

/**
 * The displif command handler (displ_be's DisplayCommandHandler): one function per request,
 * given the connector whose ring carried it and the device's buffer store. Pure protocol
 * decisions; mapping is in shbuf/, transport in connector.ts, output in the presenter.
 *
 * Where vdispl differs from displ_be (reference sections 10.2 and 11), it follows the spec:
 * duplicate cookies are -EEXIST, unknown cookies -ENOENT, and SET_CONFIG checks x, y, width and
 * height against the connector's resolution. Reserved bytes are ignored (Linux leaves them
 * dirty); DBUF_CREATE flags are masked to bit 0 (buffers.ts). Unknown operations are -EINVAL, as
 * in displ_be.
 */
import type { Decoded } from '../abi/bytes.js';
import type { DisplReq, GetEdidReq, ReservedFlag, SetConfigReq } from '../abi/displif-packets.js';
import { isKnownReq } from '../abi/displif-packets.js';
import {
  DISPLIF_OPERATION_NAMES,
  XENDISPL_OP_DBUF_CREATE,
  XENDISPL_OP_DBUF_DESTROY,
  XENDISPL_OP_FB_ATTACH,
  XENDISPL_OP_FB_DETACH,
  XENDISPL_OP_GET_EDID,
  XENDISPL_OP_PG_FLIP,
  XENDISPL_OP_SET_CONFIG,
} from '../abi/displif-constants.js';
import { XEN_ERRNO } from '../abi/xen-errno.js';
import type { Platform } from '../hypervisor/platform.js';
import { exportFromRefs } from '../dmabuf/gntdev-dmabuf.js';
import { readFrontendRefs } from '../shbuf/back-shbuf.js';
import type { BufferStore, Status } from './buffers.js';
import type { BackConnector, Reply } from './connector.js';
import { buildEdid } from './edid.js';

export interface CommandContext {
  readonly platform: Platform;
  readonly frontendDomid: number;
  readonly store: BufferStore;
  /** Called for every failed request (status < 0). */
  readonly onError?: (conn: BackConnector, operation: string, reply: Reply) => void;
}

/** Largest GET_EDID buffer whose directory is walked (the header sets only a 32 KiB minimum). */
const EDID_BUFFER_LIMIT = 64 << 20;

const fail = (errno: number, why: string): Reply => ({ status: -errno, why });
const fromStatus = (s: Status): Reply => (s.why !== undefined ? { status: s.status, why: s.why } : { status: s.status });

function setConfig(ctx: CommandContext, conn: BackConnector, req: SetConfigReq): Reply {
  if (req.fb_cookie === 0n) {
    // "Pass all zeros to reset": the cookie decides, as in displ_be and Linux.
    conn.reset();
    return { status: 0 };
  }
  const fb = ctx.store.framebuffer(req.fb_cookie);
  if (!fb) return fail(XEN_ERRNO.ENOENT, `no framebuffer ${req.fb_cookie}`);
  const { x, y, width, height, bpp } = req;
  const cw = conn.info.width;
  const ch = conn.info.height;
  if (width === 0 || height === 0) return fail(XEN_ERRNO.EINVAL, `mode ${width}x${height}`);
  if (x + width > cw || y + height > ch) return fail(XEN_ERRNO.EINVAL, `${width}x${height} at (${x}, ${y}) exceeds the connector's ${cw}x${ch}`);
  if (width > fb.width || height > fb.height) return fail(XEN_ERRNO.EINVAL, `${width}x${height} is larger than the ${fb.width}x${fb.height} framebuffer`);
  if (bpp !== 0 && bpp !== fb.format.bpp) return fail(XEN_ERRNO.EINVAL, `bpp ${bpp} does not match the framebuffer's ${fb.format.name} (${fb.format.bpp})`);
  conn.setConfig(fb, x, y, width, height);
  return { status: 0 };
}

function pageFlip(ctx: CommandContext, conn: BackConnector, fbCookie: bigint): Reply {
  const fb = ctx.store.framebuffer(fbCookie);
  if (!fb) return fail(XEN_ERRNO.ENOENT, `no framebuffer ${fbCookie}`);
  if (!conn.config) return fail(XEN_ERRNO.EINVAL, 'page flip on a connector with no mode set (SET_CONFIG first)');
  if (fb.width < conn.config.width || fb.height < conn.config.height) {
    return fail(XEN_ERRNO.EINVAL, `the ${fb.width}x${fb.height} framebuffer is smaller than the ${conn.config.width}x${conn.config.height} mode`);
  }
  if (!conn.canFlip) return fail(XEN_ERRNO.EBUSY, 'too many frame-done events waiting for the frontend to consume them');
  return { status: 0, after: conn.acceptFlip(fb) };
}

function getEdid(ctx: CommandContext, conn: BackConnector, req: GetEdidReq): Reply {
  let edid: Uint8Array;
  try {
    edid = buildEdid({ width: conn.info.width, height: conn.info.height });
  } catch (e) {
    return fail(XEN_ERRNO.EINVAL, `no EDID for ${conn.info.width}x${conn.info.height}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (req.buffer_sz < edid.length) return fail(XEN_ERRNO.EINVAL, `buffer_sz ${req.buffer_sz} is smaller than the ${edid.length}-byte EDID`);
  if (req.buffer_sz > EDID_BUFFER_LIMIT) return fail(XEN_ERRNO.EINVAL, `buffer_sz ${req.buffer_sz} for an EDID is over ${EDID_BUFFER_LIMIT} bytes`);
  // The whole directory is checked; only the pages the EDID needs are mapped (the header asks
  // for at least 32 KiB; we write 128 or 256 bytes).
  const refs = readFrontendRefs(ctx.platform, ctx.frontendDomid, req.gref_directory, req.buffer_sz);
  if (!refs.ok) return { status: refs.errno, why: `EDID buffer: ${refs.message}` };
  const m = exportFromRefs(ctx.platform, ctx.frontendDomid, refs.value.subarray(0, Math.ceil(edid.length / 4096)));
  if (!m.ok) return { status: m.errno, why: `EDID buffer: ${m.message}` };
  try {
    for (let o = 0; o < edid.length; o += 4096) m.dmabuf.page(o / 4096).set(edid.subarray(o, o + 4096));
  } finally {
    m.dmabuf.put();
  }
  return { status: 0, edid_sz: edid.length };
}

/** Serves one request that arrived on `conn`'s ring. */
export function handleRequest(ctx: CommandContext, conn: BackConnector, decoded: Decoded<DisplReq & ReservedFlag>): Reply {
  if (!decoded.ok) return fail(XEN_ERRNO.EINVAL, decoded.error.message);
  const req = decoded.value;
  let reply: Reply;
  if (!isKnownReq(req)) {
    reply = fail(XEN_ERRNO.EINVAL, `unknown operation 0x${req.operation.toString(16)}`);
  } else {
    switch (req.operation) {
      case XENDISPL_OP_DBUF_CREATE:
        reply = { ...fromStatus(ctx.store.createBuffer(req)), pages: Math.ceil(req.buffer_sz / 4096) };
        break;
      case XENDISPL_OP_DBUF_DESTROY:
        reply = fromStatus(ctx.store.destroyBuffer(req.dbuf_cookie));
        break;
      case XENDISPL_OP_FB_ATTACH:
        reply = fromStatus(ctx.store.attach(req));
        break;
      case XENDISPL_OP_FB_DETACH:
        reply = fromStatus(ctx.store.detach(req.fb_cookie));
        break;
      case XENDISPL_OP_SET_CONFIG:
        reply = setConfig(ctx, conn, req);
        break;
      case XENDISPL_OP_PG_FLIP:
        reply = pageFlip(ctx, conn, req.fb_cookie);
        break;
      case XENDISPL_OP_GET_EDID:
        reply = getEdid(ctx, conn, req);
        break;
    }
  }
  if (reply.status < 0) ctx.onError?.(conn, DISPLIF_OPERATION_NAMES[req.operation] ?? `0x${req.operation.toString(16)}`, reply);
  return reply;
}

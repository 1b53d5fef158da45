/**
 * RFB (RFC 6143, with the community extensions of rfbproto) numbers and the server's messages as
 * bytes. Pure: no sockets.
 */
import { encodePixelFormat, PIXEL_FORMAT_BYTES, type RfbPixelFormat } from './pixel-format.js';

export const SECURITY_INVALID = 0;
export const SECURITY_NONE = 1;
export const SECURITY_VNC_AUTH = 2;

export const CLIENT_SET_PIXEL_FORMAT = 0;
export const CLIENT_SET_ENCODINGS = 2;
export const CLIENT_FRAMEBUFFER_UPDATE_REQUEST = 3;
export const CLIENT_KEY_EVENT = 4;
export const CLIENT_POINTER_EVENT = 5;
export const CLIENT_CUT_TEXT = 6;
export const CLIENT_ENABLE_CONTINUOUS_UPDATES = 150;
export const CLIENT_FENCE = 248;
export const CLIENT_SET_DESKTOP_SIZE = 251;

export const SERVER_FRAMEBUFFER_UPDATE = 0;
export const SERVER_END_OF_CONTINUOUS_UPDATES = 150;
export const SERVER_FENCE = 248;

export const ENCODING_RAW = 0;
export const ENCODING_COPY_RECT = 1;
export const ENCODING_ZLIB = 6;
export const ENCODING_ZRLE = 16;
export const PSEUDO_DESKTOP_SIZE = -223;
export const PSEUDO_LAST_RECT = -224;
export const PSEUDO_EXTENDED_DESKTOP_SIZE = -308;
export const PSEUDO_FENCE = -312;
export const PSEUDO_CONTINUOUS_UPDATES = -313;
/** -256 + level (0..9). */
export const PSEUDO_COMPRESS_LEVEL_0 = -256;
export const PSEUDO_COMPRESS_LEVEL_9 = -247;

export const FENCE_BLOCK_BEFORE = 1;
export const FENCE_BLOCK_AFTER = 2;
export const FENCE_SYNC_NEXT = 4;
export const FENCE_REQUEST = 0x80000000;
/**
 * Flags a fence answer may carry: those this server honours. BlockBefore and BlockAfter hold
 * because messages are handled strictly in order and answers wait behind the update being
 * computed. SyncNext is not offered: the message after the fence may take effect after an update
 * that was started before it arrived.
 */
export const FENCE_SUPPORTED = FENCE_BLOCK_BEFORE | FENCE_BLOCK_AFTER;
export const FENCE_MAX_PAYLOAD = 64;

/** ExtendedDesktopSize: x is the reason, y the status. */
export const EDS_REASON_SERVER = 0;
export const EDS_REASON_CLIENT = 1;
export const EDS_STATUS_OK = 0;
export const EDS_STATUS_PROHIBITED = 1;

/** "RFB 003.008\n" and friends: 12 bytes. */
export const VERSION_BYTES = 12;

export type RfbVersion = '3.3' | '3.7' | '3.8';

export function versionString(v: RfbVersion): string {
  return `RFB 00${v[0]}.00${v[2]}\n`;
}

/**
 * The version to speak for a client's ProtocolVersion, or undefined if it is not an RFB version
 * string. As the spec says: 3.3, 3.7 and 3.8 as such; later versions get 3.8; other 3.x (UltraVNC
 * 3.4/3.6, Apple's 3.889) get 3.3 (3.889 gets 3.8, as Apple's clients speak it).
 */
export function negotiateVersion(text: string): RfbVersion | undefined {
  const m = /^RFB (\d{3})\.(\d{3})\n$/.exec(text);
  if (!m) return undefined;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  if (major < 3) return undefined;
  if (major > 3) return '3.8';
  if (minor === 889 || minor >= 8) return '3.8';
  if (minor === 7) return '3.7';
  return '3.3';
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0);
  return b;
}

/** A reason string: u32 length + UTF-8 bytes. */
export function reasonBytes(text: string): Uint8Array {
  const t = new TextEncoder().encode(text);
  return concat([u32(t.length), t]);
}

export function serverInit(width: number, height: number, pf: RfbPixelFormat, name: string): Uint8Array {
  const n = new TextEncoder().encode(name);
  const out = new Uint8Array(4 + PIXEL_FORMAT_BYTES + 4 + n.length);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, width);
  dv.setUint16(2, height);
  encodePixelFormat(pf, out, 4);
  dv.setUint32(20, n.length);
  out.set(n, 24);
  return out;
}

export function endOfContinuousUpdates(): Uint8Array {
  return Uint8Array.of(SERVER_END_OF_CONTINUOUS_UPDATES);
}

export function serverFence(flags: number, payload: Uint8Array): Uint8Array {
  if (payload.length > FENCE_MAX_PAYLOAD) throw new RangeError(`a fence payload is at most ${FENCE_MAX_PAYLOAD} bytes`);
  const out = new Uint8Array(9 + payload.length);
  const dv = new DataView(out.buffer);
  out[0] = SERVER_FENCE;
  dv.setUint32(4, flags >>> 0);
  out[8] = payload.length;
  out.set(payload, 9);
  return out;
}

export const RECT_HEADER_BYTES = 12;

/** A rectangle header: u16 x, y, w, h, s32 encoding. */
export function putRectHeader(out: Uint8Array, o: number, x: number, y: number, w: number, h: number, encoding: number): number {
  const dv = new DataView(out.buffer, out.byteOffset + o, RECT_HEADER_BYTES);
  dv.setUint16(0, x);
  dv.setUint16(2, y);
  dv.setUint16(4, w);
  dv.setUint16(6, h);
  dv.setInt32(8, encoding);
  return o + RECT_HEADER_BYTES;
}

/** A DesktopSize pseudo-rectangle (no data). */
export function desktopSizeRect(width: number, height: number): Uint8Array {
  const out = new Uint8Array(RECT_HEADER_BYTES);
  putRectHeader(out, 0, 0, 0, width, height, PSEUDO_DESKTOP_SIZE);
  return out;
}

/** An ExtendedDesktopSize pseudo-rectangle with one screen (id 0) covering the framebuffer. */
export function extendedDesktopSizeRect(reason: number, status: number, width: number, height: number): Uint8Array {
  const out = new Uint8Array(RECT_HEADER_BYTES + 4 + 16);
  putRectHeader(out, 0, reason, status, width, height, PSEUDO_EXTENDED_DESKTOP_SIZE);
  const dv = new DataView(out.buffer);
  out[RECT_HEADER_BYTES] = 1;
  const s = RECT_HEADER_BYTES + 4;
  dv.setUint32(s, 0);
  dv.setUint16(s + 4, 0);
  dv.setUint16(s + 6, 0);
  dv.setUint16(s + 8, width);
  dv.setUint16(s + 10, height);
  dv.setUint32(s + 12, 0);
  return out;
}

/** A FramebufferUpdate holding only pseudo-rectangles. */
export function pseudoUpdate(rects: readonly Uint8Array[]): Uint8Array {
  const head = new Uint8Array(4);
  head[0] = SERVER_FRAMEBUFFER_UPDATE;
  new DataView(head.buffer).setUint16(2, rects.length);
  return concat([head, ...rects]);
}


/**
 * One viewer frame update, pure: the tiles of a frame that differ from what a client already has
 * (its shadow copy), encoded (tiles.ts) into one binary message, and the shadow brought up to
 * date. Runs wherever the encoding happens (the viewer's encoder worker, or inline).
 *
 * Message (binary, little-endian):
 *   u8 1, u8 0, u16 connector id, u32 seq, f64 flip time (ms since the epoch), u16 width,
 *   u16 height, u32 tile count, then per tile: u16 x, u16 y, u16 w, u16 h, u8 encoding
 *   (0 raw RGBA, 1 RLE RGBA, see tiles.ts), u32 length, bytes.
 */
import type { UpdateCodec } from './frame-encoder.js';
import { ENC_RAW, ENC_RLE, encodeTile, type Raster, type Shadow, takeDamage } from './tiles.js';

export const MSG_FRAME = 1;
const HEADER = 24;
const TILE_HEADER = 13;

export interface UpdateHeader {
  readonly id: number;
  readonly seq: number;
  readonly flipTime: number;
}

export interface FrameUpdate {
  readonly msg: Uint8Array;
  readonly shadow: Shadow;
  readonly tiles: number;
}

/** Encodes the tiles of `raster` that differ from `shadow` (all of them without one) and updates the shadow. */
export function encodeUpdate(raster: Raster, shadow: Shadow | undefined, h: UpdateHeader): FrameUpdate {
  // Encoded from the shadow after copying: see takeDamage.
  const { rects, shadow: next, settled } = takeDamage(raster, shadow);
  const tiles = rects.map((r) => encodeTile(settled, r));
  let size = HEADER;
  for (const t of tiles) size += TILE_HEADER + t.data.length;
  const msg = new Uint8Array(size);
  const dv = new DataView(msg.buffer);
  msg[0] = MSG_FRAME;
  dv.setUint16(2, h.id, true);
  dv.setUint32(4, h.seq, true);
  dv.setFloat64(8, h.flipTime, true);
  dv.setUint16(16, raster.width, true);
  dv.setUint16(18, raster.height, true);
  dv.setUint32(20, tiles.length, true);
  let o = HEADER;
  for (const t of tiles) {
    dv.setUint16(o, t.x, true);
    dv.setUint16(o + 2, t.y, true);
    dv.setUint16(o + 4, t.w, true);
    dv.setUint16(o + 6, t.h, true);
    msg[o + 8] = t.encoding;
    dv.setUint32(o + 9, t.data.length, true);
    msg.set(t.data, o + TILE_HEADER);
    o += TILE_HEADER + t.data.length;
  }
  return { msg, shadow: next, tiles: tiles.length };
}

/** The viewer's codec (frame-encoder.ts): params are the header, state the shadow. */
export const viewerCodec: UpdateCodec<UpdateHeader, Shadow> = {
  update: (raster, shadow, header) => {
    const u = encodeUpdate(raster, shadow, header);
    return { msg: u.msg, state: u.shadow, tiles: u.tiles };
  },
};

/** Where a worker finds the viewer's codec. */
export const VIEWER_CODEC = { module: import.meta.url, name: 'viewerCodec' } as const;

export interface DecodedTile {
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
  readonly encoding: number;
  readonly data: Uint8Array;
}

/** Parses a frame message (what the page does; for tests and tools). Throws RangeError if malformed. */
export function decodeUpdate(msg: Uint8Array): UpdateHeader & { width: number; height: number; tiles: DecodedTile[] } {
  if (msg.length < HEADER || msg[0] !== MSG_FRAME || msg[1] !== 0) throw new RangeError('not a frame message');
  const dv = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  const width = dv.getUint16(16, true);
  const height = dv.getUint16(18, true);
  const n = dv.getUint32(20, true);
  const tiles: DecodedTile[] = [];
  let o = HEADER;
  for (let i = 0; i < n; i++) {
    if (o + TILE_HEADER > msg.length) throw new RangeError(`tile ${i} header past the end`);
    const len = dv.getUint32(o + 9, true);
    if (o + TILE_HEADER + len > msg.length) throw new RangeError(`tile ${i} data past the end`);
    const t = { x: dv.getUint16(o, true), y: dv.getUint16(o + 2, true), w: dv.getUint16(o + 4, true), h: dv.getUint16(o + 6, true), encoding: msg[o + 8]!, data: msg.subarray(o + TILE_HEADER, o + TILE_HEADER + len) };
    if (t.w === 0 || t.h === 0 || t.x + t.w > width || t.y + t.h > height) throw new RangeError(`tile ${i} (${t.w}x${t.h} at ${t.x},${t.y}) is not inside the ${width}x${height} frame`);
    if (t.encoding === ENC_RAW ? len !== t.w * t.h * 4 : t.encoding !== ENC_RLE || len % 6 !== 0) throw new RangeError(`tile ${i}: ${len} bytes of encoding ${t.encoding}`);
    tiles.push(t);
    o += TILE_HEADER + len;
  }
  if (o !== msg.length) throw new RangeError(`${msg.length - o} bytes after the last tile`);
  return { id: dv.getUint16(2, true), seq: dv.getUint32(4, true), flipTime: dv.getFloat64(8, true), width, height, tiles };
}

/**
 * One RFB FramebufferUpdate for one client of one connector, as an UpdateCodec (it runs in the
 * encoder worker, frame-encoder.ts). Damage is the viewer's: 64x64 tiles of the frame, in the
 * guest's own format, compared with a shadow copy of what the client has (tiles.ts). The changed
 * tiles inside the requested area are copied into the shadow, then encoded from the shadow (the
 * guest may be drawing meanwhile), in the client's pixel format:
 *
 * - a tile equal to a tile sent earlier in the same update goes as CopyRect when the client
 *   accepts it (with Zlib and ZRLE only tiles of more than one colour: one colour compresses to
 *   next to nothing anyway);
 * - the other tiles are merged into rectangles (runs along a row of tiles, then equal runs of
 *   consecutive rows) and sent as Raw, Zlib or ZRLE, the last two on the connection's own zlib
 *   streams (one each, kept for the whole connection, in the codec's state).
 *
 * With CopyRects, a bottom-right tile that is not a copy goes after them (some clients take the
 * update as complete once that corner arrived). With LastRect the count is 0xFFFF and the update
 * ends with a LastRect rectangle. An update with
 * nothing in it is an empty message: the caller keeps the client's request for the next frame.
 */
import type { UpdateCodec, UpdateResult } from '../frame-encoder.js';
import { type Raster, type Rect, type Shadow, takeDamage } from '../tiles.js';
import { ClientPixels } from './client-pixels.js';
import { PixelWriter, type RfbPixelFormat } from './pixel-format.js';
import { ENCODING_COPY_RECT, ENCODING_RAW, ENCODING_ZLIB, ENCODING_ZRLE, PSEUDO_LAST_RECT, putRectHeader, RECT_HEADER_BYTES, SERVER_FRAMEBUFFER_UPDATE } from './protocol.js';
import { zrleData } from './zrle.js';
import { ZStream } from './zstream.js';

export type PixelEncoding = typeof ENCODING_RAW | typeof ENCODING_ZLIB | typeof ENCODING_ZRLE;

export interface RfbUpdateParams {
  readonly pf: RfbPixelFormat;
  readonly encoding: PixelEncoding;
  readonly copyRect: boolean;
  /** End the update with LastRect (count 0xFFFF). (64x64 tiles of at most 8192x8192 are at most 16384 rectangles: the count always fits.) */
  readonly lastRect: boolean;
  /** zlib level for the connection's streams (used when a stream is created). */
  readonly zlibLevel: number;
  /** Send every tile of `area`, changed or not (a non-incremental request). */
  readonly full: boolean;
  /** The area asked for, in framebuffer coordinates (clipped to the frame). */
  readonly area: Rect;
  /**
   * The client's stream for this encoding has carried data already: if the state holding it is
   * gone (the encoder worker restarted), the update fails rather than start a new stream the
   * client's inflater cannot follow.
   */
  readonly continued: boolean;
}

export interface RfbSlotState {
  /** What the client has, in the frame's format; `key` is the geometry it is valid for. */
  shadow: Shadow | undefined;
  zlib: ZStream | undefined;
  zrle: ZStream | undefined;
}

interface Copy {
  readonly dst: Rect;
  readonly src: Rect;
}

/** A hash of the bytes of `r` (FNV-1a, over 32-bit words when the rows allow), and whether all its pixels are equal. */
function tileDigest(raster: Raster, r: Rect): { hash: number; uniform: boolean } {
  const cpp = raster.format.bpp / 8;
  const d = raster.data;
  let h = 0x811c9dc5;
  if (cpp === 4 && (d.byteOffset & 3) === 0 && (raster.pitch & 3) === 0) {
    const u32 = new Uint32Array(d.buffer, d.byteOffset, d.byteLength >>> 2);
    const first = u32[(r.y * raster.pitch) / 4 + r.x]!;
    let uniform = true;
    for (let y = r.y; y < r.y + r.h; y++) {
      const o = (y * raster.pitch) / 4 + r.x;
      for (let i = o; i < o + r.w; i++) {
        const v = u32[i]!;
        h = Math.imul(h ^ v, 0x01000193);
        if (v !== first) uniform = false;
      }
    }
    return { hash: h >>> 0, uniform };
  }
  const f = Math.floor(r.x * cpp);
  const t = Math.ceil((r.x + r.w) * cpp);
  let uniform = Number.isInteger(cpp);
  const first = r.y * raster.pitch + f;
  for (let y = r.y; y < r.y + r.h; y++) {
    const o = y * raster.pitch;
    for (let i = o + f; i < o + t; i++) {
      const b = d[i]!;
      h = Math.imul(h ^ b, 0x01000193);
      if (uniform && b !== d[first + ((i - o - f) % cpp)]) uniform = false;
    }
  }
  return { hash: h >>> 0, uniform };
}

function sameBytes(raster: Raster, a: Rect, b: Rect): boolean {
  if (a.w !== b.w || a.h !== b.h) return false;
  const cpp = raster.format.bpp / 8;
  const n = Math.ceil(a.w * cpp);
  const d = raster.data;
  // Whole pixels only: formats of a fractional byte per pixel never get here with a mismatch in phase.
  if (Math.floor(a.x * cpp) !== a.x * cpp || Math.floor(b.x * cpp) !== b.x * cpp) return false;
  const buf = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  for (let y = 0; y < a.h; y++) {
    const pa = (a.y + y) * raster.pitch + a.x * cpp;
    const pb = (b.y + y) * raster.pitch + b.x * cpp;
    if (buf.compare(buf, pa, pa + n, pb, pb + n) !== 0) return false;
  }
  return true;
}

/** Splits `rects` (tiles, in row order) into CopyRects from earlier tiles and tiles to encode. */
function findCopies(raster: Raster, rects: readonly Rect[], skipUniform: boolean): { pixels: Rect[]; copies: Copy[] } {
  const seen = new Map<number, Rect[]>();
  const pixels: Rect[] = [];
  const copies: Copy[] = [];
  for (const r of rects) {
    const { hash, uniform } = tileDigest(raster, r);
    if (uniform && skipUniform) {
      pixels.push(r);
      continue;
    }
    const candidates = seen.get(hash);
    const src = candidates?.find((c) => sameBytes(raster, c, r));
    if (src) copies.push({ dst: r, src });
    else {
      pixels.push(r);
      if (candidates) candidates.push(r);
      else seen.set(hash, [r]);
    }
  }
  return { pixels, copies };
}

/** Merges tiles into rectangles: adjacent tiles of one row, then equal runs of consecutive rows. */
export function mergeTiles(rects: readonly Rect[]): Rect[] {
  const runs: Rect[] = [];
  for (const r of rects) {
    const last = runs[runs.length - 1];
    if (last && last.y === r.y && last.h === r.h && last.x + last.w === r.x) runs[runs.length - 1] = { ...last, w: last.w + r.w };
    else runs.push(r);
  }
  const out: Rect[] = [];
  const open = new Map<string, number>();
  for (const r of runs) {
    const k = `${r.x}/${r.w}`;
    const i = open.get(k);
    const prev = i === undefined ? undefined : out[i];
    if (prev && prev.y + prev.h === r.y) out[i!] = { ...prev, h: prev.h + r.h };
    else {
      open.set(k, out.length);
      out.push(r);
    }
  }
  return out;
}

function streamFor(state: RfbSlotState, which: 'zlib' | 'zrle', level: number): ZStream {
  let s = state[which];
  if (!s) {
    s = new ZStream(level);
    state[which] = s;
  }
  return s;
}

async function encodeRects(settled: Raster, rects: readonly Rect[], p: RfbUpdateParams, state: RfbSlotState): Promise<Uint8Array[]> {
  const pixels = new ClientPixels(settled.format, p.pf);
  const raw = new PixelWriter(p.pf);
  const cpixel = p.encoding === ENCODING_ZRLE ? new PixelWriter(p.pf, true) : raw;
  const parts: Promise<Uint8Array>[] = [];
  for (const r of rects) {
    const head = new Uint8Array(RECT_HEADER_BYTES + (p.encoding === ENCODING_RAW ? 0 : 4));
    putRectHeader(head, 0, r.x, r.y, r.w, r.h, p.encoding);
    const values = pixels.read(settled, r);
    parts.push(Promise.resolve(head));
    if (p.encoding === ENCODING_RAW) {
      parts.push(Promise.resolve(raw.bytes(values)));
      continue;
    }
    const data = p.encoding === ENCODING_ZLIB ? raw.bytes(values) : zrleData(values, r.w, r.h, cpixel);
    // Compressions are queued in order on the stream; the length goes in the header once known.
    parts.push(
      streamFor(state, p.encoding === ENCODING_ZLIB ? 'zlib' : 'zrle', p.zlibLevel)
        .compress(data)
        .then((z) => {
          new DataView(head.buffer).setUint32(RECT_HEADER_BYTES, z.length);
          return z;
        }),
    );
  }
  return Promise.all(parts);
}

async function update(raster: Raster, prev: RfbSlotState | undefined, p: RfbUpdateParams): Promise<UpdateResult<RfbSlotState>> {
  const streamKept = p.encoding === ENCODING_ZLIB ? prev?.zlib : p.encoding === ENCODING_ZRLE ? prev?.zrle : true;
  if (p.continued && !streamKept) throw new Error('the connection\'s zlib stream was lost (the encoder restarted)');
  const state: RfbSlotState = prev ?? { shadow: undefined, zlib: undefined, zrle: undefined };
  const { rects, shadow, settled } = takeDamage(raster, state.shadow, { area: p.area, full: p.full });
  state.shadow = shadow;
  const { pixels, copies } = p.copyRect ? findCopies(settled, rects, p.encoding !== ENCODING_RAW) : { pixels: rects, copies: [] as Copy[] };
  // The last tile goes last: some clients (gvnccapture) take the update as complete once its
  // bottom-right corner arrived. With copies, a last tile that is not a copy (never a source:
  // sources come first in row order) is sent after them.
  const lastTile = rects[rects.length - 1];
  const tail = copies.length > 0 && lastTile !== undefined && pixels[pixels.length - 1] === lastTile ? [pixels.pop()!] : [];
  const merged = mergeTiles(pixels);
  const count = merged.length + copies.length + tail.length;
  if (count === 0) return { msg: new Uint8Array(0), state, tiles: 0 };
  // Both encodings are started now, so the zlib stream gets their data in message order.
  const bodies = [encodeRects(settled, merged, p, state), encodeRects(settled, tail, p, state)];
  const [body, after] = await Promise.all(bodies);
  const lastRect = p.lastRect;
  let size = 4 + (lastRect ? RECT_HEADER_BYTES : 0) + copies.length * (RECT_HEADER_BYTES + 4);
  for (const b of [...body!, ...after!]) size += b.length;
  const msg = new Uint8Array(size);
  const dv = new DataView(msg.buffer);
  msg[0] = SERVER_FRAMEBUFFER_UPDATE;
  dv.setUint16(2, lastRect ? 0xffff : count);
  let o = 4;
  for (const b of body!) {
    msg.set(b, o);
    o += b.length;
  }
  for (const c of copies) {
    o = putRectHeader(msg, o, c.dst.x, c.dst.y, c.dst.w, c.dst.h, ENCODING_COPY_RECT);
    dv.setUint16(o, c.src.x);
    dv.setUint16(o + 2, c.src.y);
    o += 4;
  }
  for (const b of after!) {
    msg.set(b, o);
    o += b.length;
  }
  if (lastRect) putRectHeader(msg, o, 0, 0, 0, 0, PSEUDO_LAST_RECT);
  return { msg, state, tiles: merged.length + copies.length + tail.length };
}

/** The VNC codec (frame-encoder.ts). */
export const rfbCodec: UpdateCodec<RfbUpdateParams, RfbSlotState> = {
  update,
  dispose: (s) => {
    s.zlib?.close();
    s.zrle?.close();
  },
};

/** Where a worker finds it. */
export const RFB_CODEC = { module: import.meta.url, name: 'rfbCodec' } as const;

/**
 * Damage and tile encoding shared by the outputs (the viewer and VNC): a frame's visible
 * pixels are compared with the last frame a client got, 64x64 tile by tile, in the frame's own
 * format (half the bytes for 16-bit formats); changed tiles are converted to RGBA and encoded
 * as runs of equal pixels (RLE), or sent raw when that does not save at least 10%. RLE rather
 * than deflate: a page decodes it synchronously in a tight loop, where the browser's
 * DecompressionStream cost about 60 ms per frame of a few dozen tiles in headless Chromium here
 * (measured once, by hand; see the README).
 */
import { type PixelFormat, pixelRowBytes } from '../abi/fourcc.js';
import { copyFramePixels } from '../back/memory-presenter.js';
import type { Frame } from '../back/presenter.js';
import { toRgba } from './pixels.js';

export const TILE = 64;

/**
 * Rows of one frame in its own format: row y starts at y * pitch; only its first
 * ceil(width * bpp / 8) bytes are pixels (pitch may be larger).
 */
export interface Raster {
  readonly format: PixelFormat;
  readonly width: number;
  readonly height: number;
  readonly pitch: number;
  readonly data: Uint8Array;
}

/**
 * The visible `width` x `height` of a frame as a Raster: the frame's own memory when it is one
 * view (no copy), else its rows gathered from its pages.
 */
export function frameRaster(frame: Frame, width = frame.width, height = frame.height): Raster {
  const rowBytes = pixelRowBytes(frame.format, width);
  const end = frame.offset + frame.pitch * (height - 1) + rowBytes;
  if (frame.view) {
    if (end > frame.view.length) throw new RangeError(`a ${width}x${height} frame at offset ${frame.offset} (pitch ${frame.pitch}) needs ${end} bytes: it does not fit its ${frame.view.length}-byte buffer`);
    return { format: frame.format, width, height, pitch: frame.pitch, data: frame.view.subarray(frame.offset, end) };
  }
  const copy = copyFramePixels(frame, width, height);
  return { format: frame.format, width, height, pitch: copy.pitch, data: copy.data };
}

export interface Rect {
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}

function bytesOf(buf: Uint8Array): Buffer {
  return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Byte range [from, to) of columns [x, x + w) in a row. */
function columnBytes(format: PixelFormat, x: number, w: number): [number, number] {
  return [Math.floor((x * format.bpp) / 8), Math.ceil(((x + w) * format.bpp) / 8)];
}

/** Tiles of `cur` that differ from `prev` (same geometry), or every tile when `prev` is undefined. */
export function changedTiles(cur: Raster, prev: Uint8Array | undefined): Rect[] {
  const cols = Math.ceil(cur.width / TILE);
  const rows = Math.ceil(cur.height / TILE);
  const out: Rect[] = [];
  const tileRect = (tx: number, ty: number): Rect => ({ x: tx * TILE, y: ty * TILE, w: Math.min(TILE, cur.width - tx * TILE), h: Math.min(TILE, cur.height - ty * TILE) });
  if (!prev) {
    for (let ty = 0; ty < rows; ty++) for (let tx = 0; tx < cols; tx++) out.push(tileRect(tx, ty));
    return out;
  }
  const a = bytesOf(cur.data);
  const b = bytesOf(prev);
  const rowBytes = pixelRowBytes(cur.format, cur.width);
  const dirty = new Uint8Array(cols);
  const ranges = Array.from({ length: cols }, (_, tx) => columnBytes(cur.format, tx * TILE, Math.min(TILE, cur.width - tx * TILE)));
  for (let ty = 0; ty < rows; ty++) {
    dirty.fill(0);
    let left = cols;
    const y1 = Math.min(cur.height, (ty + 1) * TILE);
    for (let y = ty * TILE; y < y1 && left > 0; y++) {
      const row = y * cur.pitch;
      // Whole row first: most rows of a mostly static frame are equal.
      if (a.compare(b, row, row + rowBytes, row, row + rowBytes) === 0) continue;
      for (let tx = 0; tx < cols; tx++) {
        if (dirty[tx]) continue;
        const [f, t] = ranges[tx]!;
        if (a.compare(b, row + f, row + t, row + f, row + t) !== 0) {
          dirty[tx] = 1;
          left--;
        }
      }
    }
    for (let tx = 0; tx < cols; tx++) if (dirty[tx]) out.push(tileRect(tx, ty));
  }
  return out;
}

/** Copies the bytes of `rects` from `cur` into `shadow` (the client's copy of what it has). */
export function copyTiles(cur: Raster, shadow: Uint8Array, rects: readonly Rect[]): void {
  for (const r of rects) {
    const [f, t] = columnBytes(cur.format, r.x, r.w);
    for (let y = r.y; y < r.y + r.h; y++) {
      const o = y * cur.pitch;
      shadow.set(cur.data.subarray(o + f, o + t), o + f);
    }
  }
}

/** What a client has of a connector: the visible rows in the frame's own format, valid for geometry `key`. */
export interface Shadow {
  readonly key: string;
  readonly data: Uint8Array;
}

export interface Damage {
  /** What to send, in row order. */
  readonly rects: Rect[];
  /** The client's shadow once it has them. */
  readonly shadow: Shadow;
  /** `raster` over the shadow's bytes: encode from this (the guest may be drawing meanwhile). */
  readonly settled: Raster;
}

function intersect(a: Rect, b: Rect): Rect | undefined {
  const x = Math.max(a.x, b.x);
  const y = Math.max(a.y, b.y);
  const x1 = Math.min(a.x + a.w, b.x + b.w);
  const y1 = Math.min(a.y + a.h, b.y + b.h);
  return x1 > x && y1 > y ? { x, y, w: x1 - x, h: y1 - y } : undefined;
}

/**
 * What a client lacks of `raster`, taken into its shadow: the tiles that differ from `shadow`
 * (every tile when `full`), clipped to `area`, are copied into the shadow first and are to be
 * encoded from it, so the client gets exactly what the shadow says it has (a pixel the guest
 * changes after the copy differs from the shadow and goes next time). Without a shadow of this
 * geometry and format the client's copy is unknown: everything, whatever the area. Rectangles of
 * YUYV start and end on a pixel pair (the pair shares its chroma).
 */
export function takeDamage(raster: Raster, shadow: Shadow | undefined, o: { readonly area?: Rect; readonly full?: boolean } = {}): Damage {
  const key = `${raster.width}x${raster.height}/${raster.format.fourcc}/${raster.pitch}`;
  if (shadow?.key !== key) {
    const next = { key, data: raster.data.slice() };
    return { rects: changedTiles(raster, undefined), shadow: next, settled: { ...raster, data: next.data } };
  }
  const tiles = changedTiles(raster, o.full ? undefined : shadow.data);
  let rects = tiles;
  if (o.area) {
    const area = o.area;
    const pairs = raster.format.layout.kind === 'yuv422';
    rects = [];
    for (const t of tiles) {
      const r = intersect(t, area);
      if (!r) continue;
      if (pairs) {
        const x = r.x & ~1;
        rects.push({ x, y: r.y, w: Math.min(raster.width, (r.x + r.w + 1) & ~1) - x, h: r.h });
      } else rects.push(r);
    }
  }
  copyTiles(raster, shadow.data, rects);
  return { rects, shadow, settled: { ...raster, data: shadow.data } };
}

export const ENC_RAW = 0;
/** Runs of equal RGBA pixels: repeated (u16 count, u32 pixel), little-endian. */
export const ENC_RLE = 1;

export interface EncodedTile extends Rect {
  readonly encoding: typeof ENC_RAW | typeof ENC_RLE;
  readonly data: Uint8Array;
}

/** RLE of `px` (RGBA pixels as u32), or undefined as soon as it would exceed `limit` bytes. */
export function rle(px: Uint32Array, limit: number): Uint8Array | undefined {
  const out = new Uint8Array(Math.min(limit, px.length * 6) + 6);
  const dv = new DataView(out.buffer);
  let o = 0;
  let i = 0;
  while (i < px.length) {
    const v = px[i]!;
    let n = 1;
    while (i + n < px.length && px[i + n] === v && n < 0xffff) n++;
    if (o + 6 > limit) return undefined;
    dv.setUint16(o, n, true);
    dv.setUint32(o + 2, v, true);
    o += 6;
    i += n;
  }
  return out.subarray(0, o);
}

/** Decodes rle() output into `n` pixels. */
export function unrle(data: Uint8Array, n: number): Uint32Array {
  const out = new Uint32Array(n);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let k = 0;
  for (let o = 0; o + 6 <= data.length && k < n; o += 6) {
    const count = dv.getUint16(o, true);
    out.fill(dv.getUint32(o + 2, true), k, Math.min(n, k + count));
    k += count;
  }
  return out;
}

/**
 * Converts one packed pixel value of an RGB format to RGBA as a little-endian u32 (byte 0 = R,
 * byte 3 = A = 255), exactly as toRgba does: a lookup table for formats of 16 bits or fewer,
 * per-channel tables above.
 */
export type Converter = (v: number) => number;

const CONVERTERS = new Map<number, Converter>();

export function converterFor(format: PixelFormat): Converter | undefined {
  const l = format.layout;
  if (l.kind !== 'rgb') return undefined;
  let c = CONVERTERS.get(format.fourcc);
  if (c) return c;
  const one = (v: number): number => {
    const px = new Uint8Array(4);
    const b = new Uint8Array([v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff]);
    toRgba({ bytes: b, offset: 0, pitch: 4, width: 1, height: 1, format }, 0, 0, 1, 1, px);
    return (px[0]! | (px[1]! << 8) | (px[2]! << 16) | (px[3]! << 24)) >>> 0;
  };
  if (format.bpp <= 16) {
    const lut = new Uint32Array(1 << format.bpp);
    for (let v = 0; v < lut.length; v++) lut[v] = one(v);
    c = (v) => lut[v]!;
  } else {
    // 8-bit channels (every RGB format above 16 bits): shifts only.
    const { r, g, b } = l;
    if (r.bits === 8 && g.bits === 8 && b.bits === 8) c = (v) => (((v >>> r.shift) & 0xff) | (((v >>> g.shift) & 0xff) << 8) | (((v >>> b.shift) & 0xff) << 16) | 0xff000000) >>> 0;
    else c = one;
  }
  CONVERTERS.set(format.fourcc, c);
  return c;
}

/**
 * Reads the packed pixel values of rectangle `r` of `cur` (row by row) into `out`: typed-array
 * loads when the rows are aligned, byte assembly otherwise.
 */
export function readPixels(cur: Raster, r: Rect, out: Uint32Array): void {
  const cpp = cur.format.bpp / 8;
  const { data, pitch } = cur;
  let k = 0;
  if (cpp === 4 && (data.byteOffset & 3) === 0 && (pitch & 3) === 0) {
    const u32 = new Uint32Array(data.buffer, data.byteOffset, data.byteLength >>> 2);
    for (let y = r.y; y < r.y + r.h; y++) {
      const p = (y * pitch) / 4 + r.x;
      for (let x = 0; x < r.w; x++) out[k++] = u32[p + x]!;
    }
    return;
  }
  if (cpp === 2 && (data.byteOffset & 1) === 0 && (pitch & 1) === 0) {
    const u16 = new Uint16Array(data.buffer, data.byteOffset, data.byteLength >>> 1);
    for (let y = r.y; y < r.y + r.h; y++) {
      const p = (y * pitch) / 2 + r.x;
      for (let x = 0; x < r.w; x++) out[k++] = u16[p + x]!;
    }
    return;
  }
  for (let y = r.y; y < r.y + r.h; y++) {
    let p = y * pitch + r.x * cpp;
    for (let x = 0; x < r.w; x++, p += cpp) {
      let v = data[p]!;
      if (cpp > 1) v |= data[p + 1]! << 8;
      if (cpp > 2) v |= data[p + 2]! << 16;
      if (cpp > 3) v = (v | (data[p + 3]! << 24)) >>> 0;
      out[k++] = v;
    }
  }
}

/**
 * A tile as RGBA, run-length encoded when that saves at least 10%. For RGB formats the runs are
 * found on the packed pixel values and each run is converted once (adjacent runs of equal colour
 * merged), so a flat tile costs one conversion; the RGBA bytes are identical to toRgba's.
 */
export function encodeTile(cur: Raster, r: Rect): EncodedTile {
  const convert = converterFor(cur.format);
  const n = r.w * r.h;
  if (!convert) {
    const rgba = toRgba({ bytes: cur.data, offset: 0, pitch: cur.pitch, width: cur.width, height: cur.height, format: cur.format }, r.x, r.y, r.w, r.h) as Uint8Array;
    const z = rle(new Uint32Array(rgba.buffer, rgba.byteOffset, rgba.length / 4), Math.floor(rgba.length * 0.9));
    if (z) return { ...r, encoding: ENC_RLE, data: z };
    return { ...r, encoding: ENC_RAW, data: rgba };
  }
  const px = new Uint32Array(n);
  readPixels(cur, r, px);
  const limit = Math.floor(n * 4 * 0.9);
  const out = new Uint8Array(Math.min(limit, n * 6) + 6);
  let o = 0;
  let i = 0;
  let lastRgba = -1;
  let lastCount = 0;
  while (i < n && o <= limit) {
    const v = px[i]!;
    let j = i + 1;
    while (j < n && px[j] === v) j++;
    const rgba = convert(v);
    let count = j - i;
    i = j;
    // Merge with the previous run when the colour is the same (bits a display ignores differ).
    if (rgba === lastRgba && lastCount < 0xffff) {
      const add = Math.min(count, 0xffff - lastCount);
      lastCount += add;
      count -= add;
      out[o - 6] = lastCount & 0xff;
      out[o - 5] = lastCount >>> 8;
    }
    while (count > 0) {
      if (o + 6 > limit) {
        o = limit + 1;
        break;
      }
      const c = Math.min(count, 0xffff);
      out[o] = c & 0xff;
      out[o + 1] = c >>> 8;
      out[o + 2] = rgba & 0xff;
      out[o + 3] = (rgba >>> 8) & 0xff;
      out[o + 4] = (rgba >>> 16) & 0xff;
      out[o + 5] = rgba >>> 24;
      o += 6;
      count -= c;
      lastRgba = rgba;
      lastCount = c;
    }
  }
  if (o <= limit) return { ...r, encoding: ENC_RLE, data: out.subarray(0, o) };
  // Raw: convert every pixel, reusing the value buffer.
  let prev = -1;
  let prevRgba = 0;
  for (let k = 0; k < n; k++) {
    const v = px[k]!;
    if (v !== prev) {
      prev = v;
      prevRgba = convert(v);
    }
    px[k] = prevRgba;
  }
  return { ...r, encoding: ENC_RAW, data: new Uint8Array(px.buffer) };
}

/**
 * Exact conversion of every pixel format Linux xen-front advertises (and the other packed RGB
 * formats vdispl knows) to RGBA8888 for display, and the reverse packing of a colour, for guest
 * programs drawing in any format. The viewer's tiles and the PNG snapshots both come from here,
 * so a canvas shows exactly what a snapshot holds.
 *
 * Rules: channels of fewer than 8 bits are widened by bit replication (5 bits abcde ->
 * abcdeabc, so 0 -> 0 and max -> 255); alpha is ignored (scanout shows the colour: A = 255);
 * YUYV is BT.601 limited range, integer arithmetic, clamped. Little-endian pixels, as DRM
 * formats are defined.
 */
import type { PixelFormat, Yuv422Layout } from '../abi/fourcc.js';

/** Widens a `bits`-bit value to 8 bits by bit replication. */
export function widen(v: number, bits: number): number {
  if (bits >= 8) return v >>> (bits - 8);
  let out = 0;
  let have = 0;
  while (have < 8) {
    out = (out << bits) | v;
    have += bits;
  }
  return (out >>> (have - 8)) & 0xff;
}

function table(bits: number): Uint8Array {
  const t = new Uint8Array(1 << Math.min(bits, 16));
  for (let v = 0; v < t.length; v++) t[v] = widen(v, bits);
  return t;
}

const TABLES = new Map<number, Uint8Array>();
function tableFor(bits: number): Uint8Array {
  let t = TABLES.get(bits);
  if (!t) {
    t = table(bits);
    TABLES.set(bits, t);
  }
  return t;
}

function clamp8(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** BT.601 limited-range YCbCr -> RGB, integer (as libyuv/ffmpeg's fixed-point formulas). */
export function yuvToRgb(y: number, u: number, v: number): [number, number, number] {
  const c = y - 16;
  const d = u - 128;
  const e = v - 128;
  return [clamp8((298 * c + 409 * e + 128) >> 8), clamp8((298 * c - 100 * d - 208 * e + 128) >> 8), clamp8((298 * c + 516 * d + 128) >> 8)];
}

/** RGB -> BT.601 limited-range YCbCr, integer. */
export function rgbToYuv(r: number, g: number, b: number): [number, number, number] {
  return [
    clamp8(((66 * r + 129 * g + 25 * b + 128) >> 8) + 16),
    clamp8(((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128),
    clamp8(((112 * r - 94 * g - 18 * b + 128) >> 8) + 128),
  ];
}

export interface PixelSource {
  readonly bytes: Uint8Array;
  /** Offset of pixel (0, 0) in `bytes`. */
  readonly offset: number;
  readonly pitch: number;
  readonly width: number;
  readonly height: number;
  readonly format: PixelFormat;
}

/**
 * Converts the rectangle (x, y, w, h) of `src` to RGBA in `dst` (w * h * 4 bytes, rows packed).
 * Returns `dst`.
 */
export function toRgba(src: PixelSource, x = 0, y = 0, w = src.width, h = src.height, dst: Uint8Array | Uint8ClampedArray = new Uint8Array(w * h * 4)): Uint8Array | Uint8ClampedArray {
  const { bytes, pitch, format } = src;
  const bpp = format.bpp;
  const layout = format.layout;
  if (layout.kind === 'yuv422') {
    yuyvToRgba(src, layout, x, y, w, h, dst);
    return dst;
  }
  const cpp = bpp / 8;
  const { r, g, b } = layout;
  const rt = tableFor(r.bits);
  const gt = tableFor(g.bits);
  const bt = tableFor(b.bits);
  const rm = (1 << r.bits) - 1;
  const gm = (1 << g.bits) - 1;
  const bm = (1 << b.bits) - 1;
  let o = 0;
  for (let row = 0; row < h; row++) {
    let p = src.offset + (y + row) * pitch + x * cpp;
    for (let col = 0; col < w; col++) {
      let v: number;
      if (cpp === 4) v = (bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16) | (bytes[p + 3]! << 24)) >>> 0;
      else if (cpp === 3) v = bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16);
      else if (cpp === 2) v = bytes[p]! | (bytes[p + 1]! << 8);
      else v = bytes[p]!;
      p += cpp;
      dst[o] = rt[(v >>> r.shift) & rm]!;
      dst[o + 1] = gt[(v >>> g.shift) & gm]!;
      dst[o + 2] = bt[(v >>> b.shift) & bm]!;
      dst[o + 3] = 255;
      o += 4;
    }
  }
  return dst;
}

function yuyvToRgba(src: PixelSource, l: Yuv422Layout, x: number, y: number, w: number, h: number, dst: Uint8Array | Uint8ClampedArray): void {
  const { bytes, pitch } = src;
  // With an odd width the last pixel's pair is cut after its first two bytes (the row is
  // width * 2 bytes): only those are read, and a chroma sample that is not there counts as
  // 128 (none), so every way of reading a frame gives the same colour.
  const cut = (src.width & 1) === 1 ? src.width - 1 : -1;
  let o = 0;
  for (let row = 0; row < h; row++) {
    const base = src.offset + (y + row) * pitch;
    for (let col = x; col < x + w; col++) {
      // Each 32-bit word holds two pixels: Y0 U Y1 V (shifts from the layout).
      const p = base + (col >> 1) * 4;
      let rr: number;
      let gg: number;
      let bb: number;
      if (col === cut) {
        const half = bytes[p]! | (bytes[p + 1]! << 8);
        const at = (shift: number): number => (shift < 16 ? (half >>> shift) & 0xff : 128);
        [rr, gg, bb] = yuvToRgb(at(l.y0), at(l.u), at(l.v));
      } else {
        const word = (bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16) | (bytes[p + 3]! << 24)) >>> 0;
        const yy = (word >>> ((col & 1) === 0 ? l.y0 : l.y1)) & 0xff;
        [rr, gg, bb] = yuvToRgb(yy, (word >>> l.u) & 0xff, (word >>> l.v) & 0xff);
      }
      dst[o] = rr;
      dst[o + 1] = gg;
      dst[o + 2] = bb;
      dst[o + 3] = 255;
      o += 4;
    }
  }
}

/**
 * Packs an 8-bit-per-channel colour into `format`'s pixel value (narrowing by dropping low
 * bits; alpha 255 unless given; padding bits 0). For YUYV, the value of a pixel pair of that colour.
 */
export function packColor(format: PixelFormat, r: number, g: number, b: number, a = 255): number {
  const l = format.layout;
  if (l.kind === 'yuv422') {
    const [yy, u, v] = rgbToYuv(r, g, b);
    return ((yy << l.y0) | (u << l.u) | (yy << l.y1) | (v << l.v)) >>> 0;
  }
  const put = (v: number, c: { shift: number; bits: number } | undefined): number => (c ? ((v >>> (8 - Math.min(8, c.bits))) << c.shift) >>> 0 : 0);
  return (put(r, l.r) | put(g, l.g) | put(b, l.b) | put(a, l.a)) >>> 0;
}

/** Writes pixel value `v` (as packColor made it) at byte `p` of `bytes`, `cpp` bytes little-endian. */
export function storePixel(bytes: Uint8Array, p: number, v: number, cpp: number): void {
  bytes[p] = v & 0xff;
  if (cpp > 1) bytes[p + 1] = (v >>> 8) & 0xff;
  if (cpp > 2) bytes[p + 2] = (v >>> 16) & 0xff;
  if (cpp > 3) bytes[p + 3] = (v >>> 24) & 0xff;
}

/**
 * Software drawing into a pixel buffer of any format vdispl knows (packed RGB of 2, 3 or 4
 * bytes per pixel, and YUYV): filled rectangles and circles, text in the built-in font, and
 * copying a rectangle from a same-layout surface (to restore a background). Colours are pixel
 * values made by `packColor` (`Painter.color`); for YUYV that is the value of a pixel pair, so
 * every write covers whole pairs and x edges round outwards to even columns. Rows are never
 * written past `pitch`, so a buffer with an odd width (YUYV) or a padded pitch is safe.
 *
 * Every primitive clips to the surface and returns the rectangle it actually wrote (x edges
 * already rounded for YUYV), or undefined if it wrote nothing: exactly what must be restored
 * to undo it. Spans are filled with typed-array fills (aligned 16/32-bit pixels) or
 * pattern-doubling copyWithin (24-bit), so cost is dominated by native memory writes.
 */
import { dumbLayout, type PixelFormat } from '../abi/fourcc.js';
import { packColor, type PixelSource } from '../present/pixels.js';
import type { Rect } from '../present/tiles.js';
import { CELL_WIDTH, GLYPH_HEIGHT, glyph, textHeight, textWidth } from './font.js';

/** A pixel buffer the demo draws in: present/pixels.ts's PixelSource (so toRgba reads it). */
export type Surface = PixelSource;
export type { Rect };

/** A zeroed surface in plain memory with Linux's dumb-buffer layout (pitch = ceil(w * bpp / 8)). */
export function createSurface(width: number, height: number, format: PixelFormat): Surface {
  const lay = dumbLayout(width, height, format.bpp);
  if (!lay.ok) throw new RangeError(lay.error.message);
  return { bytes: new Uint8Array(lay.value.size), offset: 0, pitch: lay.value.pitch, width, height, format };
}

/** The smallest rectangle holding both (either may be undefined). */
export function unionRect(a: Rect | undefined, b: Rect | undefined): Rect | undefined {
  if (!a) return b;
  if (!b) return a;
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  return { x, y, w: Math.max(a.x + a.w, b.x + b.w) - x, h: Math.max(a.y + a.h, b.y + b.h) - y };
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export interface TextOptions {
  /** Integer scale of the 5x7 font (each font pixel is scale x scale pixels). */
  readonly scale?: number;
  /** Text colour (a pixel value). */
  readonly fg: number;
  /** Box colour behind the text (a pixel value); no box if absent. */
  readonly bg?: number;
  /** Box margin around the text, in pixels (default: the scale). */
  readonly pad?: number;
}

/** Draws into one surface. */
export class Painter {
  readonly format: PixelFormat;
  /** Whether pixels come in YUYV pairs (4 bytes per 2 pixels). */
  readonly pairs: boolean;
  /** Bytes per pixel (YUYV: 2). */
  readonly cpp: number;
  private readonly bytes: Uint8Array;
  private readonly u16: Uint16Array | undefined;
  private readonly u32: Uint32Array | undefined;

  constructor(readonly surface: Surface) {
    const f = surface.format;
    this.format = f;
    this.pairs = f.layout.kind === 'yuv422';
    this.cpp = f.bpp / 8;
    if (!Number.isInteger(this.cpp) || this.cpp < 2 || this.cpp > 4) throw new RangeError(`cannot draw ${f.name}: ${f.bpp} bits per pixel`);
    const b = surface.bytes;
    this.bytes = b;
    const aligned = (n: number): boolean => LITTLE_ENDIAN && b.byteOffset % n === 0;
    this.u16 = aligned(2) ? new Uint16Array(b.buffer, b.byteOffset, b.byteLength >> 1) : undefined;
    this.u32 = aligned(4) ? new Uint32Array(b.buffer, b.byteOffset, b.byteLength >> 2) : undefined;
  }

  /** The pixel value of an 8-bit RGB colour (for YUYV: a pair of that colour). */
  color(r: number, g: number, b: number): number {
    return packColor(this.format, r, g, b);
  }

  /**
   * Clips (x, y, w, h) to the surface; for YUYV also widens it to whole pixel pairs. Undefined
   * when nothing is left.
   */
  clip(x: number, y: number, w: number, h: number): Rect | undefined {
    const s = this.surface;
    let x0 = Math.max(0, Math.floor(x));
    let x1 = Math.min(s.width, Math.ceil(x + w));
    const y0 = Math.max(0, Math.floor(y));
    const y1 = Math.min(s.height, Math.ceil(y + h));
    if (x1 <= x0 || y1 <= y0) return undefined;
    if (this.pairs) {
      x0 &= ~1;
      x1 = Math.min(s.width, (x1 + 1) & ~1);
    }
    return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
  }

  /** Byte range [start, end) of columns [x0, x1) within a row (pairs widened, within the pitch). */
  private span(x0: number, x1: number): [number, number] {
    if (this.pairs) return [(x0 & ~1) * 2, Math.min(((x1 + 1) & ~1) * 2, this.surface.pitch)];
    return [x0 * this.cpp, x1 * this.cpp];
  }

  /** Writes `value` repeated (`len` bytes little-endian each) over bytes [s, e). */
  private fillBytes(s: number, e: number, value: number, len: number): void {
    const b = this.bytes;
    if (e <= s) return;
    if (len === 4 && this.u32 && (s & 3) === 0) {
      const n = (e - s) >> 2;
      this.u32.fill(value, s >> 2, (s >> 2) + n);
      for (let p = s + n * 4, k = 0; p < e; p++, k += 8) b[p] = (value >>> k) & 0xff;
      return;
    }
    if (len === 2 && this.u16 && (s & 1) === 0) {
      const n = (e - s) >> 1;
      this.u16.fill(value, s >> 1, (s >> 1) + n);
      if (s + n * 2 < e) b[e - 1] = value & 0xff;
      return;
    }
    const b0 = value & 0xff;
    let uniform = true;
    for (let k = 1; k < len; k++) if (((value >>> (8 * k)) & 0xff) !== b0) uniform = false;
    if (uniform) {
      b.fill(b0, s, e);
      return;
    }
    // One pattern, then double it with memmoves.
    const first = Math.min(len, e - s);
    for (let k = 0; k < first; k++) b[s + k] = (value >>> (8 * k)) & 0xff;
    let have = first;
    while (have < e - s) {
      const n = Math.min(have, e - s - have);
      b.copyWithin(s + have, s, s + n);
      have += n;
    }
  }

  /** Fills columns [x0, x1) of row y (already clipped). */
  private hspan(y: number, x0: number, x1: number, value: number): void {
    const row = this.surface.offset + y * this.surface.pitch;
    const [s, e] = this.span(x0, x1);
    this.fillBytes(row + s, row + e, value, this.pairs ? 4 : this.cpp);
  }

  /** Fills a rectangle; returns what it wrote. */
  fillRect(x: number, y: number, w: number, h: number, value: number): Rect | undefined {
    const r = this.clip(x, y, w, h);
    if (!r) return undefined;
    const { offset, pitch } = this.surface;
    const [s, e] = this.span(r.x, r.x + r.w);
    const len = this.pairs ? 4 : this.cpp;
    const fast = (len === 4 && this.u32) || (len === 2 && this.u16);
    const first = offset + r.y * pitch;
    this.fillBytes(first + s, first + e, value, len);
    for (let row = 1; row < r.h; row++) {
      const o = first + row * pitch;
      // Typed fills are as fast as a copy; other rows copy the first one.
      if (fast) this.fillBytes(o + s, o + e, value, len);
      else this.bytes.copyWithin(o + s, first + s, first + e);
    }
    return r;
  }

  /** Fills the disc of radius r (pixel centres within r + 0.5 of (cx, cy)); returns what it wrote. */
  fillCircle(cx: number, cy: number, r: number, value: number): Rect | undefined {
    const { width, height } = this.surface;
    cx = Math.round(cx);
    cy = Math.round(cy);
    r = Math.max(0, Math.floor(r));
    let out: Rect | undefined;
    const y0 = Math.max(0, cy - r);
    const y1 = Math.min(height - 1, cy + r);
    const rr = (r + 0.5) * (r + 0.5);
    for (let y = y0; y <= y1; y++) {
      const dy = y - cy;
      const half = Math.floor(Math.sqrt(rr - dy * dy));
      let x0 = Math.max(0, cx - half);
      let x1 = Math.min(width, cx + half + 1);
      if (x1 <= x0) continue;
      if (this.pairs) {
        x0 &= ~1;
        x1 = Math.min(width, (x1 + 1) & ~1);
      }
      this.hspan(y, x0, x1, value);
      out = unionRect(out, { x: x0, y, w: x1 - x0, h: 1 });
    }
    return out;
  }

  /**
   * Copies `rect` from `src` (the same format and pitch, e.g. the background this surface was
   * copied from). For YUYV the rectangle is widened to whole pairs, as drawing does.
   */
  copyFrom(src: Surface, rect: Rect): void {
    const d = this.surface;
    if (src.format.fourcc !== d.format.fourcc || src.pitch !== d.pitch) {
      throw new RangeError(`copyFrom: ${src.format.name} pitch ${src.pitch} into ${d.format.name} pitch ${d.pitch}`);
    }
    const r = this.clip(rect.x, rect.y, rect.w, rect.h);
    if (!r || r.y + r.h > src.height) return;
    const [s, e] = this.span(r.x, r.x + r.w);
    for (let y = r.y; y < r.y + r.h; y++) {
      const so = src.offset + y * src.pitch;
      this.bytes.set(src.bytes.subarray(so + s, so + e), d.offset + y * d.pitch + s);
    }
  }

  /**
   * Draws `text` (one line) with its top-left corner at (x, y), optionally on a box; returns
   * what it wrote.
   */
  drawText(x: number, y: number, text: string, opts: TextOptions): Rect | undefined {
    const scale = Math.max(1, Math.floor(opts.scale ?? 1));
    x = Math.round(x);
    y = Math.round(y);
    let out: Rect | undefined;
    if (opts.bg !== undefined) {
      const pad = opts.pad ?? scale;
      out = this.fillRect(x - pad, y - pad, textWidth(text, scale) + 2 * pad, textHeight(scale) + 2 * pad, opts.bg);
    }
    let cx = x;
    for (const ch of text) {
      const g = glyph(ch);
      for (let gy = 0; gy < GLYPH_HEIGHT; gy++) {
        for (const [start, len] of g.runs[gy]!) {
          out = unionRect(out, this.fillRect(cx + start * scale, y + gy * scale, len * scale, scale, opts.fg));
        }
      }
      cx += CELL_WIDTH * scale;
    }
    return out;
  }
}

/**
 * The demo's drawing primitives in every demo format, against a naive pixel-by-pixel reference
 * (storePixel per pixel; YUYV per pair, clipped to the pitch): rectangles clipped at every edge
 * (negative and past-the-end coordinates), YUYV edges widened to whole pairs, 24-bit RGB888
 * with an odd width (pitch = 3 * width), odd-width YUYV (never written past the pitch), the
 * slow paths (memory not 4-byte aligned, a non-zero surface offset) giving the same bytes,
 * circles, and copyFrom restoring exactly one rectangle.
 */
import { describe, expect, it } from 'vitest';
import type { PixelFormat } from '../../../src/abi/fourcc.js';
import { DEMO_FORMATS } from '../../../src/demo/demo-program.js';
import { createSurface, Painter, type Rect, type Surface, unionRect } from '../../../src/demo/draw.js';
import { storePixel } from '../../../src/present/pixels.js';
import { rgbAt, shown } from './helpers.js';

const isYuv = (f: PixelFormat): boolean => f.layout.kind === 'yuv422';

/** The reference: sets pixel (x, y) (YUYV: its pair), never past the row's pitch. */
function naivePixel(s: Surface, x: number, y: number, value: number): void {
  const row = s.offset + y * s.pitch;
  if (isYuv(s.format)) {
    const p = (x & ~1) * 2;
    for (let k = 0; k < 4 && p + k < s.pitch; k++) s.bytes[row + p + k] = (value >>> (8 * k)) & 0xff;
    return;
  }
  const cpp = s.format.bpp / 8;
  storePixel(s.bytes, row + x * cpp, value, cpp);
}

function naiveRect(s: Surface, x: number, y: number, w: number, h: number, value: number): void {
  for (let yy = Math.max(0, y); yy < Math.min(s.height, y + h); yy++) {
    for (let xx = Math.max(0, x); xx < Math.min(s.width, x + w); xx++) naivePixel(s, xx, yy, value);
  }
}

/** A surface inside a larger buffer filled with a sentinel byte (to catch stray writes). */
function padded(width: number, height: number, format: PixelFormat, opts: { misalign?: number; offset?: number } = {}): { s: Surface; whole: Uint8Array } {
  const base = createSurface(width, height, format);
  const misalign = opts.misalign ?? 0;
  const offset = opts.offset ?? 0;
  const whole = new Uint8Array(misalign + offset + base.bytes.length + 16).fill(0xa5);
  const bytes = whole.subarray(misalign);
  bytes.fill(0, offset, offset + base.bytes.length);
  return { s: { ...base, bytes, offset }, whole };
}

const cases = DEMO_FORMATS.map((f) => [f.name, f] as const);

describe.each(cases)('%s', (_name, format) => {
  const colour = (s: Surface): number => new Painter(s).color(200, 40, 90);

  it('fillRect clips at every edge and returns the rectangle it wrote (YUYV: widened to whole pairs)', () => {
    const rects: [number, number, number, number][] = [
      [3, 2, 5, 4], [-4, -3, 9, 6], [10, 6, 40, 40], [-10, 0, 100, 1], [0, 0, 0, 5], [20, 20, 3, 3], [11, 1, 1, 1], [5, -9, 2, 9],
    ];
    for (const [x, y, w, h] of rects) {
      const { s, whole } = padded(13, 9, format);
      const ref = padded(13, 9, format);
      const v = colour(s);
      const r = new Painter(s).fillRect(x, y, w, h, v);
      naiveRect(ref.s, x, y, w, h, v);
      expect(whole, `fillRect(${x}, ${y}, ${w}, ${h})`).toEqual(ref.whole);
      const x0 = Math.max(0, x);
      const x1 = Math.min(13, x + w);
      const y0 = Math.max(0, y);
      const y1 = Math.min(9, y + h);
      if (x1 <= x0 || y1 <= y0) {
        expect(r).toBeUndefined();
        continue;
      }
      const rx0 = isYuv(format) ? x0 & ~1 : x0;
      const rx1 = isYuv(format) ? Math.min(13, (x1 + 1) & ~1) : x1;
      expect(r).toEqual({ x: rx0, y: y0, w: rx1 - rx0, h: y1 - y0 });
      expect(rgbAt(s, x0, y0)).toEqual(shown(format, [200, 40, 90]));
    }
  });

  it('odd widths: every pixel of a full-width fill is the colour and nothing past the buffer is written', () => {
    for (const width of [1, 7, 33]) {
      const { s, whole } = padded(width, 3, format);
      expect(s.pitch).toBe(Math.ceil((width * format.bpp) / 8));
      new Painter(s).fillRect(0, 0, width, 3, colour(s));
      const size = s.pitch * s.height;
      expect([...whole.subarray(size)].every((b) => b === 0xa5), `width ${width}: sentinel`).toBe(true);
      // (An odd YUYV width leaves its last pixel half a pair: the Painter writes its V byte into
      // the next row, and a display reads that pixel with V 128.)
      const lastX = isYuv(format) && width % 2 === 1 ? width - 2 : width - 1;
      for (let x = 0; x <= lastX; x++) expect(rgbAt(s, x, 1)).toEqual(shown(format, [200, 40, 90]));
    }
  });

  it('memory not 4-byte aligned and a non-zero offset draw the same pixels', () => {
    const draw = (s: Surface): void => {
      const p = new Painter(s);
      const v = colour(s);
      p.fillRect(1, 1, 17, 5, v);
      p.fillRect(-2, 4, 9, 9, p.color(0, 255, 0));
      p.fillCircle(10, 7, 4, p.color(255, 255, 255));
      p.drawText(2, 2, 'A1', { scale: 2, fg: p.color(255, 0, 0), bg: p.color(0, 0, 0) });
    };
    const aligned = padded(21, 11, format);
    draw(aligned.s);
    for (const [misalign, offset] of [[1, 0], [2, 0], [3, 5], [0, 6]] as const) {
      const other = padded(21, 11, format, { misalign, offset });
      draw(other.s);
      const size = aligned.s.pitch * aligned.s.height;
      expect(other.s.bytes.subarray(offset, offset + size), `misalign ${misalign}, offset ${offset}`).toEqual(aligned.s.bytes.subarray(0, size));
      expect([...other.whole.subarray(0, misalign)].every((b) => b === 0xa5)).toBe(true);
      expect([...other.s.bytes.subarray(offset + size)].every((b) => b === 0xa5)).toBe(true);
    }
  });

  it('fillCircle: a disc of radius r (centre, axis ends in, r + 1 out), clipped, and its rectangle covers it', () => {
    const { s } = padded(40, 30, format);
    const ref = padded(40, 30, format);
    const p = new Painter(s);
    const v = p.color(0, 255, 255);
    const r = p.fillCircle(20, 15, 8, v);
    const inDisc = (x: number, y: number): boolean => (x - 20) ** 2 + (y - 15) ** 2 <= 8.5 ** 2;
    for (let y = 0; y < 30; y++) for (let x = 0; x < 40; x++) if (inDisc(x, y)) naivePixel(ref.s, x, y, v);
    expect(s.bytes).toEqual(ref.s.bytes);
    const cyan = shown(format, [0, 255, 255]);
    for (const [x, y] of [[20, 15], [12, 15], [28, 15], [20, 7], [20, 23]] as const) expect(rgbAt(s, x, y)).toEqual(cyan);
    expect(rgbAt(s, 20, 24)).not.toEqual(cyan);
    expect(r).toEqual({ x: 12, y: 7, w: isYuv(format) ? 18 : 17, h: 17 });

    const clipped = padded(10, 10, format);
    const cp = new Painter(clipped.s);
    const rc = cp.fillCircle(0, 9, 5, v);
    expect(rc).toEqual({ x: 0, y: 4, w: 6, h: 6 });
    expect(cp.fillCircle(-20, -20, 5, v)).toBeUndefined();
    expect([...clipped.whole.subarray(clipped.s.pitch * 10)].every((b) => b === 0xa5)).toBe(true);
  });

  it('copyFrom restores exactly one rectangle (YUYV: whole pairs) and refuses another layout', () => {
    const bg = createSurface(16, 8, format);
    const pb = new Painter(bg);
    pb.fillRect(0, 0, 16, 8, pb.color(10, 20, 30));
    pb.fillRect(4, 2, 6, 3, pb.color(250, 250, 250));
    const { s } = padded(16, 8, format);
    const p = new Painter(s);
    p.fillRect(0, 0, 16, 8, p.color(255, 0, 0));
    const rect: Rect = { x: 3, y: 1, w: 5, h: 4 };
    p.copyFrom(bg, rect);
    const got = p.clip(rect.x, rect.y, rect.w, rect.h)!;
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 16; x++) {
        const inside = x >= got.x && x < got.x + got.w && y >= got.y && y < got.y + got.h;
        expect(rgbAt(s, x, y), `(${x}, ${y})`).toEqual(inside ? rgbAt(bg, x, y) : shown(format, [255, 0, 0]));
      }
    }
    const other = DEMO_FORMATS.find((f) => f.bpp !== format.bpp)!;
    expect(() => p.copyFrom(createSurface(16, 8, other), rect)).toThrow(RangeError);
  });
});

describe('unionRect', () => {
  it('bounds both; undefined is the identity', () => {
    expect(unionRect(undefined, undefined)).toBeUndefined();
    expect(unionRect({ x: 1, y: 2, w: 3, h: 4 }, undefined)).toEqual({ x: 1, y: 2, w: 3, h: 4 });
    expect(unionRect({ x: 1, y: 2, w: 3, h: 4 }, { x: 10, y: 0, w: 1, h: 1 })).toEqual({ x: 1, y: 0, w: 10, h: 6 });
  });
});

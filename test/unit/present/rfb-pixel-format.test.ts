/**
 * RFB pixel formats (src/present/rfb/pixel-format.ts) and the conversion of framebuffer pixels
 * to client pixel values (src/present/rfb/client-pixels.ts).
 *
 * Covered: the 16-byte PIXEL_FORMAT round trip (big-endian maxima, zero padding, at an offset);
 * what checkPixelFormat refuses (bpp 0/1/24/64, colour map, a max of 0, a channel past the pixel)
 * and accepts (10- and 16-bit channels in 32 bits); the native format announced for every format
 * vdispl knows; rgbaToClient for every 8-bit channel value against the rule (drop low bits for a
 * 2^n - 1 max of n <= 8 bits, round(v * max / 255) otherwise); passThroughMask; the ZRLE CPIXEL
 * size; PixelWriter's bytes for 1/2/3/4-byte pixels in both byte orders (3-byte CPIXELs from the
 * low or the high three bytes); and ClientPixels for every framebuffer format x a set of client
 * formats, pixel by pixel, against an independent expectation (toRgba then the rule, or the
 * framebuffer value masked when the client has exactly the framebuffer's channels).
 */
import { describe, expect, it } from 'vitest';
import { type PixelFormat, PIXEL_FORMATS, pixelFormatByName } from '../../../src/abi/fourcc.js';
import { packColor, storePixel, toRgba } from '../../../src/present/pixels.js';
import { ClientPixels } from '../../../src/present/rfb/client-pixels.js';
import {
  checkPixelFormat,
  cpixelBytes,
  decodePixelFormat,
  describePixelFormat,
  encodePixelFormat,
  nativePixelFormat,
  passThroughMask,
  PixelWriter,
  RFB_XRGB8888,
  type RfbPixelFormat,
  rgbaToClient,
} from '../../../src/present/rfb/pixel-format.js';
import type { Raster } from '../../../src/present/tiles.js';

const fmt = (name: string): PixelFormat => pixelFormatByName(name)!;

function pf(bitsPerPixel: 8 | 16 | 32, depth: number, bigEndian: boolean, r: [number, number], g: [number, number], b: [number, number]): RfbPixelFormat {
  return { bitsPerPixel, depth, bigEndian, trueColour: true, redMax: r[0], redShift: r[1], greenMax: g[0], greenShift: g[1], blueMax: b[0], blueShift: b[1] };
}

const CLIENT_FORMATS: Record<string, RfbPixelFormat> = {
  '32LE r16 g8 b0': pf(32, 24, false, [255, 16], [255, 8], [255, 0]),
  '32BE r0 g8 b16': pf(32, 24, true, [255, 0], [255, 8], [255, 16]),
  '32BE r24 g16 b8': pf(32, 24, true, [255, 24], [255, 16], [255, 8]),
  '16LE 565': pf(16, 16, false, [31, 11], [63, 5], [31, 0]),
  '16BE 565': pf(16, 16, true, [31, 11], [63, 5], [31, 0]),
  '16LE 555': pf(16, 15, false, [31, 10], [31, 5], [31, 0]),
  '16LE 444': pf(16, 12, false, [15, 8], [15, 4], [15, 0]),
  '8 BGR233': pf(8, 8, false, [7, 0], [7, 3], [3, 6]),
  '32LE 10-bit': pf(32, 30, false, [1023, 20], [1023, 10], [1023, 0]),
  '32LE odd maxima': pf(32, 24, false, [100, 16], [1000, 4], [5, 0]),
};

/** A channel's 8-bit value as the client's: the rule from the module's comment, written out. */
function scale(v: number, max: number): number {
  for (let bits = 1; bits <= 8; bits++) if (max === (1 << bits) - 1) return v >> (8 - bits);
  return Math.round((v * max) / 255);
}

/** The client value of a framebuffer pixel: `raw` (its packed value) and `rgb` (toRgba's). */
function expectedValue(format: PixelFormat, client: RfbPixelFormat, raw: number, rgb: readonly [number, number, number]): number {
  const l = format.layout;
  if (l.kind === 'rgb' && format.bpp === client.bitsPerPixel) {
    const same = (c: { shift: number; bits: number }, max: number, shift: number): boolean => c.shift === shift && max === 2 ** c.bits - 1;
    if (same(l.r, client.redMax, client.redShift) && same(l.g, client.greenMax, client.greenShift) && same(l.b, client.blueMax, client.blueShift)) {
      const mask = (client.redMax << client.redShift) | (client.greenMax << client.greenShift) | (client.blueMax << client.blueShift);
      return (raw & mask) >>> 0;
    }
  }
  return ((scale(rgb[0], client.redMax) << client.redShift) | (scale(rgb[1], client.greenMax) << client.greenShift) | (scale(rgb[2], client.blueMax) << client.blueShift)) >>> 0;
}

describe('PIXEL_FORMAT bytes', () => {
  it('encodes the 16 bytes exactly (maxima big-endian, padding zero) and decodes them back', () => {
    const p = pf(32, 30, true, [1023, 20], [1023, 10], [1023, 0]);
    const b = encodePixelFormat(p);
    expect([...b]).toEqual([32, 30, 1, 1, 0x03, 0xff, 0x03, 0xff, 0x03, 0xff, 20, 10, 0, 0, 0, 0]);
    expect(decodePixelFormat(b)).toEqual(p);
  });

  it('writes and reads at an offset of a larger buffer (and a subarray), leaving the rest alone', () => {
    const big = new Uint8Array(40).fill(0xee);
    encodePixelFormat(CLIENT_FORMATS['16BE 565']!, big, 7);
    expect(big[6]).toBe(0xee);
    expect(big[23]).toBe(0xee);
    expect(decodePixelFormat(big, 7)).toEqual(CLIENT_FORMATS['16BE 565']);
    expect(decodePixelFormat(big.subarray(3), 4)).toEqual(CLIENT_FORMATS['16BE 565']);
  });

  it('every client format of these tests round-trips', () => {
    for (const [name, p] of Object.entries(CLIENT_FORMATS)) expect(decodePixelFormat(encodePixelFormat(p)), name).toEqual(p);
  });

  it('ignores non-zero padding and reads any non-zero big-endian / true-colour byte as true', () => {
    const b = encodePixelFormat(RFB_XRGB8888);
    b[2] = 7;
    b[13] = 1;
    b[14] = 2;
    b[15] = 3;
    expect(decodePixelFormat(b)).toEqual({ ...RFB_XRGB8888, bigEndian: true });
  });

  it.each([
    ['bpp 24', { ...RFB_XRGB8888, bitsPerPixel: 24 as 32 }, /24 bits per pixel/],
    ['bpp 0', { ...RFB_XRGB8888, bitsPerPixel: 0 as 32 }, /0 bits per pixel/],
    ['bpp 1', { ...RFB_XRGB8888, bitsPerPixel: 1 as 32 }, /1 bits per pixel/],
    ['bpp 64', { ...RFB_XRGB8888, bitsPerPixel: 64 as 32 }, /64 bits per pixel/],
    ['colour map', { ...RFB_XRGB8888, trueColour: false }, /colour-map/],
    ['red max 0', { ...RFB_XRGB8888, redMax: 0 }, /red max 0/],
    ['blue max 0', { ...RFB_XRGB8888, blueMax: 0 }, /blue max 0/],
    ['red past 16 bits', pf(16, 16, false, [31, 12], [63, 5], [31, 0]), /red max 31 at shift 12 does not fit in 16 bits/],
    ['green past 8 bits', pf(8, 8, false, [7, 0], [7, 6], [3, 6]), /green/],
    ['blue 9 bits at 24 of 32', pf(32, 24, false, [255, 16], [255, 8], [511, 24]), /blue max 511 at shift 24/],
    ['shift 255', pf(32, 24, false, [255, 255], [255, 8], [255, 0]), /does not fit/],
    ['16-bit max in 16 bpp at shift 1', pf(16, 16, false, [65535, 1], [1, 0], [1, 0]), /does not fit/],
  ])('refuses %s with a RangeError saying why (check and decode)', (_name, p, why) => {
    expect(() => checkPixelFormat(p)).toThrow(RangeError);
    expect(() => checkPixelFormat(p)).toThrow(why);
    expect(() => decodePixelFormat(encodePixelFormat(p))).toThrow(why);
  });

  it('accepts 10-bit and 16-bit channels in 32 bits, and a channel ending exactly at the top bit', () => {
    expect(() => checkPixelFormat(CLIENT_FORMATS['32LE 10-bit']!)).not.toThrow();
    expect(() => checkPixelFormat(pf(32, 32, false, [65535, 16], [255, 8], [255, 0]))).not.toThrow();
    expect(() => checkPixelFormat(pf(8, 8, false, [1, 7], [1, 0], [1, 1]))).not.toThrow();
  });

  it('describes formats briefly', () => {
    expect(describePixelFormat(RFB_XRGB8888)).toBe('32bpp depth 24 LE r8@16 g8@8 b8@0');
    expect(describePixelFormat(CLIENT_FORMATS['16BE 565']!)).toBe('16bpp depth 16 BE r5@11 g6@5 b5@0');
  });
});

describe('nativePixelFormat', () => {
  it('announces the framebuffer channels for RGB formats of at most 8-bit channels in 8/16/32 bits', () => {
    expect(nativePixelFormat(fmt('RGB565'))).toEqual(pf(16, 16, false, [31, 11], [63, 5], [31, 0]));
    expect(nativePixelFormat(fmt('XRGB1555'))).toEqual(pf(16, 15, false, [31, 10], [31, 5], [31, 0]));
    expect(nativePixelFormat(fmt('ARGB1555'))).toEqual(pf(16, 15, false, [31, 10], [31, 5], [31, 0]));
    expect(nativePixelFormat(fmt('ARGB4444'))).toEqual(pf(16, 12, false, [15, 8], [15, 4], [15, 0]));
    expect(nativePixelFormat(fmt('XBGR4444'))).toEqual(pf(16, 12, false, [15, 0], [15, 4], [15, 8]));
    expect(nativePixelFormat(fmt('BGR565'))).toEqual(pf(16, 16, false, [31, 0], [63, 5], [31, 11]));
    expect(nativePixelFormat(fmt('XRGB8888'))).toEqual(RFB_XRGB8888);
    expect(nativePixelFormat(fmt('ARGB8888'))).toEqual(RFB_XRGB8888);
    expect(nativePixelFormat(fmt('RGBX8888'))).toEqual(pf(32, 24, false, [255, 24], [255, 16], [255, 8]));
  });

  it('announces XRGB8888 for 24-bit RGB, YUYV, 10-bit channels and no format', () => {
    for (const n of ['RGB888', 'BGR888', 'YUYV', 'XRGB2101010', 'ABGR2101010']) expect(nativePixelFormat(fmt(n)), n).toEqual(RFB_XRGB8888);
    expect(nativePixelFormat(undefined)).toEqual(RFB_XRGB8888);
  });

  it('every announced format is valid, and its depth is the sum of its channel bits', () => {
    for (const f of PIXEL_FORMATS) {
      const p = nativePixelFormat(f);
      expect(() => checkPixelFormat(p), f.name).not.toThrow();
      const bits = (m: number): number => Math.log2(m + 1);
      expect(p.depth, f.name).toBe(bits(p.redMax) + bits(p.greenMax) + bits(p.blueMax));
    }
  });
});

describe('rgbaToClient', () => {
  it.each(Object.entries(CLIENT_FORMATS))('maps every 8-bit value of each channel by the rule (%s)', (_name, p) => {
    const f = rgbaToClient(p);
    for (let v = 0; v < 256; v++) {
      expect(f(v), `red ${v}`).toBe((scale(v, p.redMax) << p.redShift) >>> 0);
      expect(f(v << 8), `green ${v}`).toBe((scale(v, p.greenMax) << p.greenShift) >>> 0);
      expect(f(v << 16), `blue ${v}`).toBe((scale(v, p.blueMax) << p.blueShift) >>> 0);
      // Alpha (byte 3) is ignored.
      expect(f((0xff000000 | v) >>> 0), `alpha with red ${v}`).toBe((scale(v, p.redMax) << p.redShift) >>> 0);
    }
    const white = f(0xffffffff);
    expect(white).toBe(((p.redMax << p.redShift) | (p.greenMax << p.greenShift) | (p.blueMax << p.blueShift)) >>> 0);
  });

  it('gives unsigned values for a channel at the top of 32 bits', () => {
    const f = rgbaToClient(CLIENT_FORMATS['32BE r24 g16 b8']!);
    expect(f(0xff)).toBe(0xff000000);
    const g = rgbaToClient(pf(32, 32, false, [65535, 16], [255, 8], [255, 0]));
    expect(g(0xff)).toBe(0xffff0000);
    expect(g(0x80)).toBe((Math.round((0x80 * 65535) / 255) << 16) >>> 0);
  });
});

describe('passThroughMask', () => {
  it('is the channel mask when the client has exactly the framebuffer channels', () => {
    expect(passThroughMask(fmt('RGB565'), nativePixelFormat(fmt('RGB565')))).toBe(0xffff);
    expect(passThroughMask(fmt('RGB565'), CLIENT_FORMATS['16BE 565']!)).toBe(0xffff);
    expect(passThroughMask(fmt('ARGB4444'), nativePixelFormat(fmt('ARGB4444')))).toBe(0x0fff);
    expect(passThroughMask(fmt('XRGB1555'), CLIENT_FORMATS['16LE 555']!)).toBe(0x7fff);
    expect(passThroughMask(fmt('XRGB8888'), RFB_XRGB8888)).toBe(0xffffff);
    expect(passThroughMask(fmt('ARGB8888'), RFB_XRGB8888)).toBe(0xffffff);
    expect(passThroughMask(fmt('XRGB2101010'), CLIENT_FORMATS['32LE 10-bit']!)).toBe(0x3fffffff);
  });

  it('is undefined otherwise (other bpp, shifts or maxima; 24-bit; YUYV)', () => {
    expect(passThroughMask(fmt('RGB565'), CLIENT_FORMATS['16LE 555']!)).toBeUndefined();
    expect(passThroughMask(fmt('RGB565'), RFB_XRGB8888)).toBeUndefined();
    expect(passThroughMask(fmt('BGR565'), CLIENT_FORMATS['16LE 565']!)).toBeUndefined();
    expect(passThroughMask(fmt('XRGB8888'), CLIENT_FORMATS['32BE r0 g8 b16']!)).toBeUndefined();
    expect(passThroughMask(fmt('XRGB8888'), CLIENT_FORMATS['32LE 10-bit']!)).toBeUndefined();
    expect(passThroughMask(fmt('RGB888'), RFB_XRGB8888)).toBeUndefined();
    expect(passThroughMask(fmt('YUYV'), RFB_XRGB8888)).toBeUndefined();
  });
});

describe('CPIXEL size', () => {
  it('is 3 for 32-bit true colour of depth <= 24 with its colour bits in the low or the high three bytes', () => {
    expect(cpixelBytes(RFB_XRGB8888)).toBe(3);
    expect(cpixelBytes(CLIENT_FORMATS['32BE r0 g8 b16']!)).toBe(3);
    expect(cpixelBytes(CLIENT_FORMATS['32BE r24 g16 b8']!)).toBe(3);
    expect(cpixelBytes(pf(32, 24, false, [255, 8], [255, 16], [255, 0]))).toBe(3);
  });

  it('is the pixel size otherwise', () => {
    expect(cpixelBytes({ ...RFB_XRGB8888, depth: 32 })).toBe(4);
    expect(cpixelBytes(CLIENT_FORMATS['32LE 10-bit']!)).toBe(4);
    // Colour bits in both the lowest and the highest byte.
    expect(cpixelBytes(pf(32, 24, false, [255, 20], [255, 8], [15, 0]))).toBe(4);
    expect(cpixelBytes(CLIENT_FORMATS['16LE 565']!)).toBe(2);
    expect(cpixelBytes(CLIENT_FORMATS['8 BGR233']!)).toBe(1);
  });
});

describe('PixelWriter', () => {
  const v32 = 0x11223344;
  it.each([
    ['8', CLIENT_FORMATS['8 BGR233']!, false, 0xa5, [0xa5]],
    ['16 LE', CLIENT_FORMATS['16LE 565']!, false, 0xbeef, [0xef, 0xbe]],
    ['16 BE', CLIENT_FORMATS['16BE 565']!, false, 0xbeef, [0xbe, 0xef]],
    ['32 LE', RFB_XRGB8888, false, v32, [0x44, 0x33, 0x22, 0x11]],
    ['32 BE', { ...RFB_XRGB8888, bigEndian: true }, false, v32, [0x11, 0x22, 0x33, 0x44]],
    ['CPIXEL low three LE', RFB_XRGB8888, true, 0x00223344, [0x44, 0x33, 0x22]],
    ['CPIXEL low three BE', CLIENT_FORMATS['32BE r0 g8 b16']!, true, 0x00223344, [0x22, 0x33, 0x44]],
    ['CPIXEL high three BE', CLIENT_FORMATS['32BE r24 g16 b8']!, true, 0x11223300, [0x11, 0x22, 0x33]],
    ['CPIXEL high three LE', pf(32, 24, false, [255, 24], [255, 16], [255, 8]), true, 0x11223300, [0x33, 0x22, 0x11]],
    ['CPIXEL of a 4-byte format', CLIENT_FORMATS['32LE 10-bit']!, true, 0x3ff00001, [0x01, 0x00, 0xf0, 0x3f]],
    ['CPIXEL of 16 bits', CLIENT_FORMATS['16BE 565']!, true, 0x1234, [0x12, 0x34]],
  ])('%s: writes the exact bytes', (_name, p, cpixel, v, bytes) => {
    const w = new PixelWriter(p, cpixel);
    expect(w.cpp).toBe(bytes.length);
    const out = new Uint8Array(bytes.length + 2).fill(0xcc);
    expect(w.put(out, 1, v)).toBe(1 + bytes.length);
    expect([...out]).toEqual([0xcc, ...bytes, 0xcc]);
    expect([...w.bytes(Uint32Array.of(v, v))]).toEqual([...bytes, ...bytes]);
  });

  it('bytes() of a subarray view (the 32-bit LE fast path) writes only that view', () => {
    const values = Uint32Array.of(1, 0x01020304, 0xa0b0c0d0, 7);
    const w = new PixelWriter(RFB_XRGB8888);
    expect([...w.bytes(values.subarray(1, 3))]).toEqual([4, 3, 2, 1, 0xd0, 0xc0, 0xb0, 0xa0]);
  });
});

// ------------------------------------------------------------------------------------------------
// ClientPixels

const hash = (k: number): number => Math.imul(k + 1, 2654435761) >>> 24;

interface TestRaster extends Raster {
  /** toRgba of each pixel. */
  readonly rgb: (x: number, y: number) => [number, number, number];
  /** The packed value of each pixel (RGB formats). */
  readonly raw: (x: number, y: number) => number;
}

/** A raster with flat runs in the top rows and noise below (every channel value shows up), row padding 0xa5. */
function testRaster(format: PixelFormat, width: number, height: number): TestRaster {
  const rowBytes = Math.ceil((width * format.bpp) / 8);
  const pitch = rowBytes + 6;
  const data = new Uint8Array(pitch * height).fill(0xa5);
  if (format.layout.kind === 'yuv422') {
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x += 2) {
        const word = y < 4 ? packColor(format, (x * 9) & 0xff, y * 60, 200) : (hash(y * 1000 + x) | (hash(y * 1000 + x + 1) << 8) | (hash(y * 7 + x) << 16) | (hash(y * 11 + x) << 24)) >>> 0;
        storePixel(data, y * pitch + x * 2, word, x + 1 < width ? 4 : 2);
      }
  } else {
    const cpp = format.bpp / 8;
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const k = y * width + x;
        const v = y < 4 ? packColor(format, (x >> 2) * 40, y * 60, 255 - x) : (hash(k) | (hash(k + 99991) << 8) | (hash(k + 7) << 16) | (hash(k + 3) << 24)) >>> 0;
        storePixel(data, y * pitch + x * cpp, v, cpp);
      }
  }
  const rgba = toRgba({ bytes: data, offset: 0, pitch, width, height, format }) as Uint8Array;
  const cpp = format.bpp / 8;
  return {
    format,
    width,
    height,
    pitch,
    data,
    rgb: (x, y) => {
      const i = (y * width + x) * 4;
      return [rgba[i]!, rgba[i + 1]!, rgba[i + 2]!];
    },
    raw: (x, y) => {
      let v = 0;
      for (let i = cpp - 1; i >= 0; i--) v = v * 256 + data[y * pitch + x * cpp + i]!;
      return v >>> 0;
    },
  };
}

describe('ClientPixels', () => {
  const clients = { ...CLIENT_FORMATS, 'XRGB8888 (native)': RFB_XRGB8888 };
  for (const format of PIXEL_FORMATS) {
    it(`converts ${format.name} exactly to every client format (whole raster and an inner rectangle)`, () => {
      const r = testRaster(format, 37, 9);
      const formats = { ...clients, native: nativePixelFormat(format) };
      for (const [name, p] of Object.entries(formats)) {
        const cp = new ClientPixels(format, p);
        for (const rect of [
          { x: 0, y: 0, w: 37, h: 9 },
          { x: 3, y: 2, w: 31, h: 6 },
          { x: 36, y: 8, w: 1, h: 1 },
        ]) {
          const got = cp.read(r, rect);
          expect(got.length).toBe(rect.w * rect.h);
          let bad = 0;
          let first = '';
          for (let y = 0; y < rect.h; y++)
            for (let x = 0; x < rect.w; x++) {
              const px = rect.x + x;
              const py = rect.y + y;
              const want = expectedValue(format, p, r.raw(px, py), r.rgb(px, py));
              if (got[y * rect.w + x] !== want) {
                if (bad++ === 0) first = `(${px}, ${py}): got 0x${got[y * rect.w + x]!.toString(16)}, want 0x${want.toString(16)}`;
              }
            }
          expect(bad, `${format.name} -> ${name}, rect ${JSON.stringify(rect)}: first ${first}`).toBe(0);
        }
      }
    });
  }

  it('keeps 10-bit channels for a client with the framebuffer channels (XRGB2101010 -> 10-bit client)', () => {
    const f = fmt('XRGB2101010');
    const data = new Uint8Array(8);
    storePixel(data, 0, (0x3 << 30) | (1023 << 20) | (513 << 10) | 1, 4);
    storePixel(data, 4, (0 << 30) | (1 << 20) | (2 << 10) | 3, 4);
    const got = new ClientPixels(f, CLIENT_FORMATS['32LE 10-bit']!).read({ format: f, width: 2, height: 1, pitch: 8, data }, { x: 0, y: 0, w: 2, h: 1 });
    expect([...got]).toEqual([((1023 << 20) | (513 << 10) | 1) >>> 0, (1 << 20) | (2 << 10) | 3]);
  });

  it('writes into a given output array', () => {
    const r = testRaster(fmt('RGB565'), 8, 8);
    const out = new Uint32Array(64).fill(0xdeadbeef);
    const got = new ClientPixels(r.format, RFB_XRGB8888).read(r, { x: 0, y: 0, w: 4, h: 4 }, out);
    expect(got).toBe(out);
    expect(out[16]).toBe(0xdeadbeef);
    expect(out[15]).toBe(expectedValue(r.format, RFB_XRGB8888, r.raw(3, 3), r.rgb(3, 3)));
  });
});

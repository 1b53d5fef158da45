/**
 * Example-based tests: DRM fourcc codes, the pixel-format table and the dumb-buffer size rules.
 *
 * Bad inputs tried: fourcc strings of the wrong length, with non-printable or non-ASCII
 * characters; dumbLayout with zero, negative, non-integer, NaN, infinite and > u32 sizes, and
 * with sizes whose stride or total overflows a u32 (65536x65536x32, 4294967295x1x32) or that no
 * longer fit once page-aligned (the boundary at 2^32 - 4096).
 *
 * Expectations come from xen-pv-display-reference.md §1.8 (Linux xen-front's plane_formats)
 * and drm_fourcc.h.
 */
import { describe, expect, it } from 'vitest';
import { AbiError } from '../../../src/abi/bytes.js';
import {
  DRM_FORMAT_XRGB8888,
  dumbLayout,
  fourccCode,
  fourccString,
  PIXEL_FORMATS,
  pixelFormatByFourcc,
  pixelFormatByName,
  type RgbLayout,
  XEN_FRONT_FORMATS,
} from '../../../src/abi/fourcc.js';

const XEN_FRONT: [name: string, code: string, fourcc: number, bpp: number][] = [
  ['RGB565', 'RG16', 0x36314752, 16],
  ['RGB888', 'RG24', 0x34324752, 24],
  ['XRGB8888', 'XR24', 0x34325258, 32],
  ['ARGB8888', 'AR24', 0x34325241, 32],
  ['XRGB4444', 'XR12', 0x32315258, 16],
  ['ARGB4444', 'AR12', 0x32315241, 16],
  ['XRGB1555', 'XR15', 0x35315258, 16],
  ['ARGB1555', 'AR15', 0x35315241, 16],
  ['YUYV', 'YUYV', 0x56595559, 16],
];

describe('fourcc codes', () => {
  it('fourccCode and fourccString round trip', () => {
    expect(fourccCode('XR24')).toBe(0x34325258);
    expect(fourccString(0x34325258)).toBe('XR24');
    expect(DRM_FORMAT_XRGB8888).toBe(0x34325258);
    for (const code of ['RG16', 'AR30', '    ', '~~~~', 'a b!', 'YUYV']) {
      const v = fourccCode(code);
      expect(Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff).toBe(true);
      expect(fourccString(v)).toBe(code);
    }
    // top byte >= 0x80 is not printable, but the value must still be unsigned
    expect(fourccString(0xffffffff)).toBe('\xff\xff\xff\xff');
    expect(fourccCode('~~~~')).toBe(0x7e7e7e7e);
    for (const f of PIXEL_FORMATS) {
      expect(fourccString(f.fourcc)).toBe(f.code);
      expect(fourccCode(f.code)).toBe(f.fourcc);
    }
  });

  it('fourccCode rejects anything but four printable ASCII characters', () => {
    for (const bad of ['', 'XR2', 'XR244', 'XR2\0', '\tXR2', 'XR2\u00e9', 'XR2\u{1f600}', 'XR\x7f4']) {
      expect(() => fourccCode(bad), JSON.stringify(bad)).toThrow(AbiError);
    }
  });
});

describe('pixel formats', () => {
  it('XEN_FRONT_FORMATS are exactly Linux xen-front plane_formats, in order', () => {
    expect(XEN_FRONT_FORMATS.map((f) => [f.name, f.code, f.fourcc, f.bpp])).toEqual(XEN_FRONT);
  });

  it('every format is found by fourcc and by name, codes and names are unique', () => {
    expect(new Set(PIXEL_FORMATS.map((f) => f.fourcc)).size).toBe(PIXEL_FORMATS.length);
    expect(new Set(PIXEL_FORMATS.map((f) => f.name)).size).toBe(PIXEL_FORMATS.length);
    for (const f of PIXEL_FORMATS) {
      expect(pixelFormatByFourcc(f.fourcc)).toBe(f);
      expect(pixelFormatByName(f.name)).toBe(f);
      expect(pixelFormatByName(`drm_format_${f.name.toLowerCase()}`)).toBe(f);
    }
    expect(pixelFormatByFourcc(0)).toBeUndefined();
    expect(pixelFormatByFourcc(fourccCode('C8  '))).toBeUndefined();
    expect(pixelFormatByName('NOPE')).toBeUndefined();
  });

  it('RGB channels do not overlap and cover exactly bpp bits', () => {
    for (const f of PIXEL_FORMATS) {
      if (f.layout.kind !== 'rgb') continue;
      const l: RgbLayout = f.layout;
      const channels = [l.r, l.g, l.b, l.a, l.x].filter((c) => c !== undefined);
      const bits = new Array<number>(f.bpp).fill(0);
      for (const c of channels) {
        expect(c.bits, f.name).toBeGreaterThan(0);
        expect(c.shift + c.bits, f.name).toBeLessThanOrEqual(f.bpp);
        for (let b = c.shift; b < c.shift + c.bits; b++) bits[b] = bits[b]! + 1;
      }
      expect(
        bits.every((n) => n === 1),
        `${f.name}: channel bits ${bits.join('')}`,
      ).toBe(true);
      expect(f.alpha, f.name).toBe(l.a !== undefined);
      expect(l.a === undefined || l.x === undefined, f.name).toBe(true);
    }
  });

  it('YUYV packs Y0 U Y1 V bytes into one 32-bit word for two pixels', () => {
    const yuyv = pixelFormatByName('YUYV')!;
    expect(yuyv.layout).toEqual({ kind: 'yuv422', y0: 0, u: 8, y1: 16, v: 24 });
    expect(yuyv.bpp * 2).toBe(32);
  });
});

describe('dumbLayout', () => {
  it('pitch = ceil(width * bpp / 8), size = pitch * height', () => {
    const cases: [number, number, number, number, number][] = [
      [1920, 1080, 32, 7680, 8294400],
      [1023, 1, 24, 3069, 3069],
      [3, 3, 16, 6, 18],
      [1, 1, 1, 1, 1],
      [3, 1, 12, 5, 5],
      [7, 2, 1, 1, 2],
      [1024, 768, 16, 2048, 1572864],
      [16384, 16384, 32, 65536, 1073741824],
    ];
    for (const [w, h, bpp, pitch, size] of cases) {
      expect(dumbLayout(w, h, bpp), `${w}x${h}x${bpp}`).toEqual({ ok: true, value: { pitch, size } });
    }
  });

  it('accepts the largest size that still fits when page-aligned and refuses one byte more', () => {
    expect(dumbLayout(0xffff_f000, 1, 8)).toEqual({
      ok: true,
      value: { pitch: 0xffff_f000, size: 0xffff_f000 },
    });
    expect(dumbLayout(0xffff_f001, 1, 8).ok).toBe(false);
    expect(dumbLayout(1, 0xffff_f001, 8).ok).toBe(false);
  });

  it('returns errors, never wrapped values and never exceptions', () => {
    const bad: [number, number, number][] = [
      [0, 1, 32],
      [1, 0, 32],
      [1, 1, 0],
      [-1, 1, 32],
      [1, -1, 32],
      [1, 1, -32],
      [1.5, 1, 32],
      [1, 1.5, 32],
      [1, 1, 31.5],
      [Number.NaN, 1, 32],
      [1, Number.POSITIVE_INFINITY, 32],
      [1, 1, Number.NEGATIVE_INFINITY],
      [2 ** 32, 1, 8],
      [1, 2 ** 32, 8],
      [1, 1, 2 ** 32],
      [65536, 65536, 32],
      [4294967295, 1, 32],
      [0x4000_0000, 4, 8],
      [0x1_0000, 0x1_0000, 8],
      [0x8000_0000, 1, 16],
    ];
    for (const [w, h, bpp] of bad) {
      let r: ReturnType<typeof dumbLayout> | undefined;
      expect(() => {
        r = dumbLayout(w, h, bpp);
      }, `${w}x${h}x${bpp}`).not.toThrow();
      expect(r?.ok, `${w}x${h}x${bpp}`).toBe(false);
      if (r && !r.ok) {
        expect(r.error).toBeInstanceOf(AbiError);
        expect(r.error.code).toBe('range');
      }
    }
  });

  it('every result fits a u32 and agrees with the formula (sampled grid)', () => {
    const widths = [1, 2, 3, 7, 640, 1023, 1920, 4096, 65535, 65536, 0x7fff_ffff];
    const heights = [1, 2, 3, 480, 1080, 65535, 65536];
    for (const w of widths) {
      for (const h of heights) {
        for (const f of XEN_FRONT_FORMATS) {
          const r = dumbLayout(w, h, f.bpp);
          const pitch = Math.ceil((w * f.bpp) / 8);
          const fits = Math.ceil(f.bpp / 8) * w * h <= 0xffff_ffff && pitch * h <= 0xffff_ffff - 4095;
          expect(r.ok, `${w}x${h}x${f.bpp}`).toBe(fits);
          if (r.ok) {
            expect(r.value).toEqual({ pitch, size: pitch * h });
            expect(r.value.size).toBeLessThanOrEqual(0xffff_ffff);
          }
        }
      }
    }
  });
});

/**
 * Pixel conversion against hand-computed values (not against itself): channel widening by bit
 * replication, channel positions of every xen-front format, alpha ignored, BT.601 limited-range
 * YUYV, and packColor/storePixel writing what toRgba reads back.
 */
import { describe, expect, it } from 'vitest';
import { pixelFormatByName } from '../../../src/abi/fourcc.js';
import { packColor, storePixel, toRgba, widen, yuvToRgb } from '../../../src/present/pixels.js';

function one(name: string, bytes: number[]): number[] {
  const format = pixelFormatByName(name)!;
  const width = name === 'YUYV' ? 2 : 1;
  return Array.from(toRgba({ bytes: Uint8Array.from(bytes), offset: 0, pitch: bytes.length, width, height: 1, format })).slice(0, 4);
}

describe('pixels', () => {
  it('widens by bit replication', () => {
    expect([widen(0, 5), widen(31, 5), widen(0b10000, 5), widen(63, 6), widen(0b100000, 6), widen(15, 4), widen(8, 4), widen(1, 1)]).toEqual([0, 255, 0b10000100, 255, 0b10000010, 255, 0x88, 255]);
  });

  it.each([
    ['RGB565', [0x00, 0xf8], [255, 0, 0, 255]],
    ['RGB565', [0xe0, 0x07], [0, 255, 0, 255]],
    ['RGB565', [0x1f, 0x00], [0, 0, 255, 255]],
    ['RGB565', [0x10, 0x84], [0x84, 0x82, 0x84, 255]], // r=16 g=32 b=16
    ['RGB888', [0x01, 0x02, 0x03], [0x03, 0x02, 0x01, 255]], // B, G, R in memory
    ['XRGB8888', [0x10, 0x20, 0x30, 0x99], [0x30, 0x20, 0x10, 255]],
    ['ARGB8888', [0x10, 0x20, 0x30, 0x00], [0x30, 0x20, 0x10, 255]], // alpha ignored
    ['XRGB4444', [0x00, 0x0f], [255, 0, 0, 255]],
    ['ARGB4444', [0x5a, 0x03], [0x33, 0x55, 0xaa, 255]],
    ['XRGB1555', [0x00, 0x7c], [255, 0, 0, 255]],
    ['ARGB1555', [0x1f, 0x80], [0, 0, 255, 255]],
  ])('%s %j -> %j', (name, bytes, rgba) => {
    expect(one(name, bytes)).toEqual(rgba);
  });

  it('YUYV at an odd width: the last pixel reads only its Y0 and U (the row is width * 2 bytes), V counts as 128, whatever follows the row', () => {
    const yuyv = pixelFormatByName('YUYV')!;
    // Pixel 2: Y0 200, U 60, V absent -> c 184, d -68, e 0: R (298*184+128)>>8 = 214,
    // G (298*184+100*68+128)>>8 = 241, B (298*184-516*68+128)>>8 = 77.
    for (const after of [[0, 0], [7, 255], [255, 7]]) {
      const bytes = Uint8Array.from([16, 128, 16, 128, 200, 60, ...after]);
      expect(Array.from(toRgba({ bytes, offset: 0, pitch: 6, width: 3, height: 1, format: yuyv }, 2, 0, 1, 1))).toEqual([214, 241, 77, 255]);
    }
  });

  it('YUYV: BT.601 limited range, two pixels per word', () => {
    // Y0 U Y1 V
    expect(Array.from(toRgba({ bytes: Uint8Array.from([235, 128, 16, 128]), offset: 0, pitch: 4, width: 2, height: 1, format: pixelFormatByName('YUYV')! }))).toEqual([255, 255, 255, 255, 0, 0, 0, 255]);
    // Pure red in BT.601 limited range: Y 81, Cb 90, Cr 240 (65.481 + 16 rounded down).
    expect(yuvToRgb(81, 90, 240)).toEqual([255, 0, 0]);
  });

  it('packColor + storePixel write what toRgba reads, for channel-exact colours', () => {
    for (const name of ['RGB565', 'RGB888', 'XRGB8888', 'ARGB8888', 'XRGB4444', 'ARGB4444', 'XRGB1555', 'ARGB1555']) {
      const f = pixelFormatByName(name)!;
      const cpp = f.bpp / 8;
      const bytes = new Uint8Array(cpp);
      storePixel(bytes, 0, packColor(f, 255, 0, 255), cpp);
      expect(one(name, Array.from(bytes)), name).toEqual([255, 0, 255, 255]);
    }
  });
});

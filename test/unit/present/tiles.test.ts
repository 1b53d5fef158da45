/** Tile damage and encoding: exact round trips for every format, RLE bounds, damage only where pixels changed. */
import { describe, expect, it } from 'vitest';
import { dumbLayout, XEN_FRONT_FORMATS } from '../../../src/abi/fourcc.js';
import { toRgba } from '../../../src/present/pixels.js';
import { changedTiles, copyTiles, ENC_RAW, ENC_RLE, encodeTile, type Raster, rle, TILE, unrle } from '../../../src/present/tiles.js';

function raster(formatIndex: number, w: number, h: number, fill: (i: number) => number): Raster {
  const format = XEN_FRONT_FORMATS[formatIndex]!;
  const lay = dumbLayout(w, h, format.bpp);
  if (!lay.ok) throw new Error(lay.error.message);
  const data = new Uint8Array(lay.value.size);
  for (let i = 0; i < data.length; i++) data[i] = fill(i);
  return { format, width: w, height: h, pitch: lay.value.pitch, data };
}

describe('tiles', () => {
  it('RLE round-trips and gives up past its limit', () => {
    const px = Uint32Array.from({ length: 4096 }, (_, i) => (i < 3000 ? 0xff00ff00 : i));
    const z = rle(px, 4096 * 4)!;
    expect(unrle(z, 4096)).toEqual(px);
    expect(rle(Uint32Array.from({ length: 4096 }, (_, i) => i), 1000)).toBeUndefined();
    expect(unrle(rle(new Uint32Array(70_000).fill(7), 1 << 20)!, 70_000)).toEqual(new Uint32Array(70_000).fill(7));
  });

  for (const [i, f] of XEN_FRONT_FORMATS.entries()) {
    it(`${f.name}: every encoded tile decodes to exactly toRgba of its rectangle (flat and noisy content, odd size)`, () => {
      for (const fill of [(k: number) => (k >> 9) & 0xff, (k: number) => (k * 2654435761) >>> 24]) {
        const r = raster(i, 131, 70, fill);
        for (const t of changedTiles(r, undefined)) {
          const e = encodeTile(r, t);
          const expected = toRgba({ bytes: r.data, offset: 0, pitch: r.pitch, width: r.width, height: r.height, format: r.format }, t.x, t.y, t.w, t.h);
          const got = e.encoding === ENC_RLE ? new Uint8Array(unrle(e.data, t.w * t.h).buffer) : e.data;
          expect(got).toEqual(expected);
        }
      }
    });
  }

  it('flat content is run-length encoded, noise is sent raw', () => {
    const flat = raster(2, 64, 64, () => 0x42);
    const noise = raster(2, 64, 64, (k) => (k * 2654435761) >>> 24);
    expect(encodeTile(flat, { x: 0, y: 0, w: 64, h: 64 }).encoding).toBe(ENC_RLE);
    expect(encodeTile(noise, { x: 0, y: 0, w: 64, h: 64 }).encoding).toBe(ENC_RAW);
  });

  it('pixels differing only in bits a display ignores (X, A) make one run, not one per value', () => {
    for (const [i, f] of XEN_FRONT_FORMATS.entries()) {
      if (f.layout.kind !== 'rgb' || (!f.layout.x && !f.layout.a)) continue;
      const pad = (f.layout.x ?? f.layout.a)!;
      const r = raster(i, 64, 64, () => 0);
      const cpp = f.bpp / 8;
      for (let p = 0, k = 0; p + cpp <= r.data.length; p += cpp, k++) {
        const v = (0x5 << 0) | ((k % 3) << pad.shift); // same colour, padding 0, 1, 2, 0, ...
        for (let b = 0; b < cpp; b++) r.data[p + b] = (v >>> (8 * b)) & 0xff;
      }
      const e = encodeTile(r, { x: 0, y: 0, w: 64, h: 64 });
      expect(e.encoding, f.name).toBe(ENC_RLE);
      expect(e.data.length, f.name).toBe(6);
      expect(new Uint8Array(unrle(e.data, 4096).buffer)).toEqual(toRgba({ bytes: r.data, offset: 0, pitch: r.pitch, width: 64, height: 64, format: f }));
    }
  });

  it('unaligned rows (odd byte offset or pitch) decode exactly too', () => {
    for (const [i, f] of XEN_FRONT_FORMATS.entries()) {
      const base = raster(i, 70, 9, (k) => (k * 2654435761) >>> 24);
      const shifted = new Uint8Array(base.data.length + 1);
      shifted.set(base.data, 1);
      const r: Raster = { ...base, data: shifted.subarray(1) };
      for (const t of changedTiles(r, undefined)) {
        const e = encodeTile(r, t);
        const got = e.encoding === ENC_RLE ? new Uint8Array(unrle(e.data, t.w * t.h).buffer) : e.data;
        expect(got, f.name).toEqual(toRgba({ bytes: base.data, offset: 0, pitch: base.pitch, width: 70, height: 9, format: f }, t.x, t.y, t.w, t.h));
      }
    }
  });

  it('a framebuffer narrower than its pitch: only pixel bytes are compared, the padding after the last row is never read', () => {
    const r = raster(2, 100, 70, (k) => k & 0xff);
    const pitch = 128 * 4; // the buffer's pitch, wider than 100 pixels
    const wide = new Uint8Array(pitch * 70);
    for (let y = 0; y < 70; y++) wide.set(r.data.subarray(y * r.pitch, y * r.pitch + 400), y * pitch);
    const view: Raster = { ...r, pitch, data: wide.subarray(0, pitch * 69 + 400) };
    const shadow = wide.slice();
    expect(changedTiles(view, shadow)).toEqual([]);
    wide[pitch * 69 + 399] = wide[pitch * 69 + 399]! ^ 1; // last pixel byte of the last row
    wide[pitch * 3 + 450] = 7; // padding: not a pixel
    expect(changedTiles(view, shadow)).toEqual([{ x: 64, y: 64, w: 36, h: 6 }]);
  });

  it('damage: only tiles whose bytes changed, then none after copying them', () => {
    const r = raster(0, 300, 200, (k) => k & 0xff);
    const prev = r.data.slice();
    expect(changedTiles(r, prev)).toEqual([]);
    const flip = (at: number, bits: number): void => {
      r.data[at] = r.data[at]! ^ bits;
    };
    flip(130 * r.pitch + 70 * 2, 1); // pixel (70, 130) in RGB565
    flip(5 * r.pitch + 299 * 2 + 1, 0x80); // pixel (299, 5)
    const rects = changedTiles(r, prev);
    expect(rects).toEqual([
      { x: 4 * TILE, y: 0, w: 300 - 4 * TILE, h: TILE },
      { x: TILE, y: 2 * TILE, w: TILE, h: TILE },
    ]);
    copyTiles(r, prev, rects);
    expect(changedTiles(r, prev)).toEqual([]);
  });
});

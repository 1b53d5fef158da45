/**
 * The backend's EDID (src/back/edid.ts): the fixed EDID 1.4 base block fields (header, "XEN"
 * vendor id, "VM" product code, serial, 2020 week 1, digital 8 bpc DisplayPort, gamma 2.2, sRGB,
 * no established/standard timings, name descriptor), the checksum of every block, the detailed
 * timing descriptor (exact mode when it fits the 18-byte DTD; otherwise a fallback in the DTD and
 * the exact mode in a DisplayID 1.3 type I timing), timing sanity (positive porches, pixel clock at
 * least 10 MHz, refresh close to the request), the parse round trip for fixed sizes and random
 * ones, the parser on bad input, and RangeError on bad options. edid-decode's verdict on the same
 * sizes is in test/interop/edid-decode.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { XENDISPL_EDID_BLOCK_SIZE } from '../../../src/abi/displif-constants.js';
import { buildEdid, edidChecksumOk, parseEdidPreferredMode } from '../../../src/back/edid.js';

const B = XENDISPL_EDID_BLOCK_SIZE;

/** [width, height, blocks expected]. */
const SIZES: readonly (readonly [number, number, number])[] = [
  [1, 1, 1],
  [640, 480, 1],
  [1024, 768, 1],
  [1366, 768, 1],
  [1920, 1080, 1],
  [3840, 2160, 1],
  [4095, 2047, 1],
  [4096, 2160, 2],
  [8192, 8192, 2],
  [1, 8192, 2],
  [8192, 1, 2],
  [4095, 4095, 2], // fits the DTD's 12-bit fields, but its pixel clock does not fit 16 bits
  [333, 777, 1],
  [1023, 1, 1],
  [7, 4093, 1],
  [5001, 3, 2],
];

interface Dtd {
  clock10kHz: number;
  hActive: number;
  hBlank: number;
  hFront: number;
  hSync: number;
  vActive: number;
  vBlank: number;
  vFront: number;
  vSync: number;
  hMm: number;
  vMm: number;
  flags: number;
}

function at(b: Uint8Array, i: number): number {
  const v = b[i];
  if (v === undefined) throw new Error(`byte ${i} out of range (length ${b.length})`);
  return v;
}

function le16(b: Uint8Array, o: number): number {
  return at(b, o) | (at(b, o + 1) << 8);
}

function decodeDtd(b: Uint8Array, o: number): Dtd {
  return {
    clock10kHz: le16(b, o),
    hActive: at(b, o + 2) | ((at(b, o + 4) >> 4) << 8),
    hBlank: at(b, o + 3) | ((at(b, o + 4) & 0xf) << 8),
    vActive: at(b, o + 5) | ((at(b, o + 7) >> 4) << 8),
    vBlank: at(b, o + 6) | ((at(b, o + 7) & 0xf) << 8),
    hFront: at(b, o + 8) | ((at(b, o + 11) >> 6) << 8),
    hSync: at(b, o + 9) | (((at(b, o + 11) >> 4) & 3) << 8),
    vFront: (at(b, o + 10) >> 4) | (((at(b, o + 11) >> 2) & 3) << 4),
    vSync: (at(b, o + 10) & 0xf) | ((at(b, o + 11) & 3) << 4),
    hMm: at(b, o + 12) | ((at(b, o + 14) >> 4) << 8),
    vMm: at(b, o + 13) | ((at(b, o + 14) & 0xf) << 8),
    flags: at(b, o + 17),
  };
}

function refreshOf(clock10kHz: number, hTotal: number, vTotal: number): number {
  return (clock10kHz * 10_000) / (hTotal * vTotal);
}

/** The DisplayID section of extension block 1: its data blocks as [tag, payload offset in the EDID, length]. */
function displayIdBlocks(edid: Uint8Array): [number, number, number][] {
  const s = B + 1;
  const len = at(edid, s + 1);
  const out: [number, number, number][] = [];
  for (let o = s + 4; o < s + 4 + len; ) {
    const n = at(edid, o + 2);
    out.push([at(edid, o), o + 3, n]);
    o += 3 + n;
  }
  return out;
}

function sumMod256(b: Uint8Array): number {
  return b.reduce((a, v) => a + v, 0) & 0xff;
}

/** Recomputes the DisplayID section checksum of block 1, then the block checksum. */
function resealDisplayId(edid: Uint8Array): void {
  const end = B + 1 + 4 + at(edid, B + 2);
  edid[end] = 0;
  edid[end] = (256 - sumMod256(edid.subarray(B + 1, end + 1))) & 0xff;
  reseal(edid, 1);
}

/** Recomputes the last byte of block `i` so that its checksum holds again. */
function reseal(edid: Uint8Array, i: number): void {
  const block = edid.subarray(i * B, (i + 1) * B);
  block[B - 1] = 0;
  block[B - 1] = (256 - sumMod256(block)) & 0xff;
}

describe('buildEdid: the base block', () => {
  const e = buildEdid({ width: 1920, height: 1080 });

  it('is one 128-byte block with the fixed header, EDID 1.4 and a valid checksum', () => {
    expect(e.length).toBe(B);
    expect([...e.subarray(0, 8)]).toEqual([0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00]);
    expect([at(e, 18), at(e, 19)]).toEqual([1, 4]);
    expect(at(e, 126)).toBe(0);
    expect(sumMod256(e)).toBe(0);
    expect(edidChecksumOk(e)).toBe(true);
  });

  it('encodes the vendor "XEN" as three big-endian 5-bit letters', () => {
    expect([at(e, 8), at(e, 9)]).toEqual([0x60, 0xae]);
    const id = (at(e, 8) << 8) | at(e, 9);
    expect(id >> 15).toBe(0);
    const letters = [(id >> 10) & 31, (id >> 5) & 31, id & 31].map((c) => String.fromCharCode(0x40 + c));
    expect(letters.join('')).toBe('XEN');
  });

  it('has product code "VM", serial 0x20200505 (little-endian), week 1 of 2020', () => {
    expect(String.fromCharCode(at(e, 10), at(e, 11))).toBe('VM');
    expect(le16(e, 10)).toBe(0x4d56);
    expect(new DataView(e.buffer, e.byteOffset).getUint32(12, true)).toBe(0x20200505);
    expect(at(e, 16)).toBe(1);
    expect(1990 + at(e, 17)).toBe(2020);
  });

  it('is a digital 8 bpc DisplayPort display, no size, gamma 2.2, sRGB, preferred timing native', () => {
    expect(at(e, 20)).toBe(0xa5);
    expect([at(e, 21), at(e, 22)]).toEqual([0, 0]);
    expect(at(e, 23)).toBe(120);
    expect(at(e, 24)).toBe(0x06);
    // The sRGB primaries and D65 white point as every sRGB monitor stores them.
    expect([...e.subarray(25, 35)]).toEqual([0xee, 0x91, 0xa3, 0x54, 0x4c, 0x99, 0x26, 0x0f, 0x50, 0x54]);
  });

  it('has no established timings and every standard timing slot unused (0x01 0x01)', () => {
    expect([...e.subarray(35, 38)]).toEqual([0, 0, 0]);
    expect([...e.subarray(38, 54)]).toEqual(new Array<number>(16).fill(1));
  });

  it('has a DTD, range limits, the monitor name and a dummy descriptor', () => {
    expect(le16(e, 54)).toBeGreaterThan(0);
    expect([...e.subarray(72, 76)]).toEqual([0, 0, 0, 0xfd]);
    expect([...e.subarray(90, 95)]).toEqual([0, 0, 0, 0xfc, 0]);
    expect(Buffer.from(e.subarray(95, 108)).toString('latin1')).toBe('pv-display\n  ');
    expect([...e.subarray(108, 112)]).toEqual([0, 0, 0, 0x10]);
    expect([...e.subarray(112, 126)]).toEqual(new Array<number>(14).fill(0));
  });

  it('range limits cover the mode: 59-60 Hz, 66-67 kHz, 140 MHz, no timing formula', () => {
    expect([...e.subarray(76, 83)]).toEqual([0, 59, 60, 66, 67, 14, 0x01]);
  });

  it('the DTD is 1920x1080 with CVT-RB porches, no image size, digital separate sync +h -v', () => {
    const d = decodeDtd(e, 54);
    expect(d).toMatchObject({ hActive: 1920, vActive: 1080, hBlank: 160, hFront: 48, hSync: 32, vFront: 3, vSync: 5 });
    expect(d.vBlank).toBe(31);
    expect([d.hMm, d.vMm]).toEqual([0, 0]);
    expect(d.flags).toBe(0x1a);
    expect(refreshOf(d.clock10kHz, 2080, 1111)).toBeCloseTo(60, 2);
  });

  it('takes a name, serial and refresh rate', () => {
    const f = buildEdid({ width: 800, height: 600, name: 'ABCDEFGHIJKLM', serial: 0xfedcba98, refreshHz: 75 });
    expect(Buffer.from(f.subarray(95, 108)).toString('latin1')).toBe('ABCDEFGHIJKLM');
    expect(new DataView(f.buffer, f.byteOffset).getUint32(12, true)).toBe(0xfedcba98);
    const d = decodeDtd(f, 54);
    expect(refreshOf(d.clock10kHz, d.hActive + d.hBlank, d.vActive + d.vBlank)).toBeCloseTo(75, 1);
    expect(edidChecksumOk(f)).toBe(true);
    const g = buildEdid({ width: 800, height: 600, name: 'x' });
    expect(Buffer.from(g.subarray(95, 108)).toString('latin1')).toBe('x\n           ');
  });

  it('is deterministic', () => {
    expect(buildEdid({ width: 1366, height: 768 })).toEqual(buildEdid({ width: 1366, height: 768, refreshHz: 60 }));
  });
});

describe('buildEdid: every size', () => {
  it.each(SIZES)('%ix%i: %i block(s), every checksum, sane timings, parses back', (w, h, blocks) => {
    const e = buildEdid({ width: w, height: h });
    expect(e.length).toBe(blocks * B);
    expect(at(e, 126)).toBe(blocks - 1);
    for (let i = 0; i < blocks; i++) expect(edidChecksumOk(e.subarray(i * B, (i + 1) * B)), `block ${i}`).toBe(true);

    const d = decodeDtd(e, 54);
    // Valid as a DTD: clock >= 10 MHz (edid-decode's floor), non-zero porches and syncs.
    expect(d.clock10kHz).toBeGreaterThanOrEqual(1000);
    expect(d.hFront).toBeGreaterThan(0);
    expect(d.hSync).toBeGreaterThan(0);
    expect(d.hBlank - d.hFront - d.hSync).toBeGreaterThan(0);
    expect(d.vFront).toBeGreaterThan(0);
    expect(d.vSync).toBeGreaterThan(0);
    expect(d.vBlank - d.vFront - d.vSync).toBeGreaterThanOrEqual(6);
    expect(refreshOf(d.clock10kHz, d.hActive + d.hBlank, d.vActive + d.vBlank)).toBeCloseTo(60, 1);

    if (blocks === 1) {
      expect([d.hActive, d.vActive]).toEqual([w, h]);
    } else {
      // The fallback: the mode divided by an integer factor k >= 2.
      const scaled = (k: number): [number, number] => [Math.max(1, Math.floor(w / k)), Math.max(1, Math.floor(h / k))];
      const k = [2, 3, 4, 5, 6].find((f) => scaled(f)[0] === d.hActive && scaled(f)[1] === d.vActive);
      expect(k, `fallback ${d.hActive}x${d.vActive}`).toBeDefined();
      // The exact mode: DisplayID 1.3 type I timing, preferred.
      expect([at(e, B), at(e, B + 1)]).toEqual([0x70, 0x13]);
      expect(at(e, B + 3)).toBe(3); // standalone display
      const len = at(e, B + 2);
      expect(sumMod256(e.subarray(B + 1, B + 1 + 5 + len))).toBe(0);
      expect([...e.subarray(B + 1 + 5 + len, 2 * B - 1)].every((v) => v === 0)).toBe(true);
      const dbs = displayIdBlocks(e);
      expect(dbs.map(([tag]) => tag)).toEqual([0x00, 0x01, 0x0f, 0x03]);
      const [, p] = dbs[0] ?? [0, 0, 0];
      expect(Buffer.from(e.subarray(p, p + 3)).toString('latin1')).toBe('XEN');
      const [, x, n] = dbs[3] ?? [0, 0, 0];
      expect(n).toBe(20);
      expect(at(e, x + 3) & 0x80).toBe(0x80);
      expect([le16(e, x + 4) + 1, le16(e, x + 12) + 1]).toEqual([w, h]);
      const clock = (at(e, x) | (at(e, x + 1) << 8) | (at(e, x + 2) << 16)) + 1;
      const hTotal = w + le16(e, x + 6) + 1;
      const vTotal = h + le16(e, x + 14) + 1;
      expect(refreshOf(clock, hTotal, vTotal)).toBeCloseTo(60, 1);
    }
    expect(parseEdidPreferredMode(e)).toEqual({ width: w, height: h });
  });

  it('round-trips random sizes and refresh rates (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8192 }),
        fc.integer({ min: 1, max: 8192 }),
        fc.double({ min: 1, max: 240, noNaN: true }),
        (w, h, r) => {
          const e = buildEdid({ width: w, height: h, refreshHz: r });
          expect(e.length % B).toBe(0);
          expect(at(e, 126)).toBe(e.length / B - 1);
          for (let i = 0; i < e.length / B; i++) expect(edidChecksumOk(e.subarray(i * B, (i + 1) * B))).toBe(true);
          const d = decodeDtd(e, 54);
          expect(d.clock10kHz).toBeGreaterThanOrEqual(1000);
          expect(d.hBlank - d.hFront - d.hSync).toBeGreaterThan(0);
          expect(d.vBlank - d.vFront - d.vSync).toBeGreaterThan(0);
          const hz = refreshOf(d.clock10kHz, d.hActive + d.hBlank, d.vActive + d.vBlank);
          expect(Math.abs(hz - r) / r).toBeLessThan(0.01);
          expect(parseEdidPreferredMode(e)).toEqual({ width: w, height: h });
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('buildEdid: bad options throw RangeError', () => {
  const bad = [0, -1, -8192, 1.5, 8193, 65536, Number.NaN, Infinity, -Infinity];
  it.each(bad)('width %d', (v) => {
    expect(() => buildEdid({ width: v, height: 480 })).toThrow(RangeError);
    expect(() => buildEdid({ width: v, height: 480 })).toThrow(
      `EDID width must be an integer from 1 to 8192, got ${String(v)}`,
    );
  });
  it.each(bad)('height %d', (v) => {
    expect(() => buildEdid({ width: 640, height: v })).toThrow(RangeError);
    expect(() => buildEdid({ width: 640, height: v })).toThrow(
      `EDID height must be an integer from 1 to 8192, got ${String(v)}`,
    );
  });
  it.each([0, 0.5, -60, 241, 1000, Number.NaN, Infinity])('refresh %d Hz', (v) => {
    expect(() => buildEdid({ width: 640, height: 480, refreshHz: v })).toThrow(RangeError);
    expect(() => buildEdid({ width: 640, height: 480, refreshHz: v })).toThrow(/refresh rate must be from 1 to 240 Hz/);
  });
  it.each(['', 'ABCDEFGHIJKLMN', 'café', 'tab\there', 'line\n', 'trailing '])('name %j', (v) => {
    expect(() => buildEdid({ width: 640, height: 480, name: v })).toThrow(RangeError);
    expect(() => buildEdid({ width: 640, height: 480, name: v })).toThrow(/monitor name must be 1 to 13 printable ASCII/);
  });
  it.each([-1, 2 ** 32, 1.5, Number.NaN])('serial %d', (v) => {
    expect(() => buildEdid({ width: 640, height: 480, serial: v })).toThrow(RangeError);
    expect(() => buildEdid({ width: 640, height: 480, serial: v })).toThrow(/serial must be an integer from 0 to 0xffffffff/);
  });
});

describe('edidChecksumOk', () => {
  it('is false for a wrong length or a changed byte', () => {
    const e = buildEdid({ width: 1024, height: 768 });
    expect(edidChecksumOk(e)).toBe(true);
    expect(edidChecksumOk(e.subarray(0, 127))).toBe(false);
    expect(edidChecksumOk(new Uint8Array(256))).toBe(false);
    expect(edidChecksumOk(new Uint8Array(128))).toBe(true);
    const f = e.slice();
    f[100] = (at(f, 100) + 1) & 0xff;
    expect(edidChecksumOk(f)).toBe(false);
  });
});

describe('parseEdidPreferredMode on other input', () => {
  it('is undefined for short input, a wrong header or a bad base checksum', () => {
    const e = buildEdid({ width: 1024, height: 768 });
    expect(parseEdidPreferredMode(new Uint8Array(0))).toBeUndefined();
    expect(parseEdidPreferredMode(e.subarray(0, 127))).toBeUndefined();
    expect(parseEdidPreferredMode(new Uint8Array(128))).toBeUndefined();
    const badHeader = e.slice();
    badHeader[7] = 0xff;
    reseal(badHeader, 0);
    expect(parseEdidPreferredMode(badHeader)).toBeUndefined();
    const badSum = e.slice();
    badSum[127] = (at(badSum, 127) + 1) & 0xff;
    expect(parseEdidPreferredMode(badSum)).toBeUndefined();
  });

  it('is undefined when no descriptor is a timing', () => {
    const e = buildEdid({ width: 1024, height: 768 });
    e.fill(0, 54, 72);
    e[57] = 0x10;
    reseal(e, 0);
    expect(parseEdidPreferredMode(e)).toBeUndefined();
  });

  it('reads the DTD when the DisplayID block is missing, truncated or corrupt', () => {
    const e = buildEdid({ width: 8192, height: 4320 });
    const fallback = { width: 2730, height: 1440 }; // 4096 does not fit a DTD: divided by 3
    expect(parseEdidPreferredMode(e)).toEqual({ width: 8192, height: 4320 });
    expect(parseEdidPreferredMode(e.subarray(0, B))).toEqual(fallback);
    expect(parseEdidPreferredMode(e.subarray(0, B + 100))).toEqual(fallback);
    const corrupt = e.slice();
    corrupt[B + 40] = (at(corrupt, B + 40) + 1) & 0xff;
    expect(parseEdidPreferredMode(corrupt)).toEqual(fallback);
  });

  it('reads a type VII timing too, and prefers the timing flagged preferred', () => {
    const e = buildEdid({ width: 5000, height: 3000 });
    const dbs = displayIdBlocks(e);
    const [, x] = dbs[3] ?? [0, 0, 0];
    e[x - 3] = 0x22; // type VII: same layout for what the parser reads
    resealDisplayId(e);
    expect(parseEdidPreferredMode(e)).toEqual({ width: 5000, height: 3000 });
    // Not flagged preferred: still the first (only) timing.
    e[x + 3] = at(e, x + 3) & 0x7f;
    resealDisplayId(e);
    expect(parseEdidPreferredMode(e)).toEqual({ width: 5000, height: 3000 });
  });

  it('ignores a DisplayID section whose own checksum is wrong', () => {
    const e = buildEdid({ width: 5000, height: 3000 });
    const end = B + 1 + 4 + at(e, B + 2);
    e[end] = (at(e, end) + 1) & 0xff;
    reseal(e, 1);
    expect(edidChecksumOk(e.subarray(B, 2 * B))).toBe(true);
    expect(parseEdidPreferredMode(e)).toEqual({ width: 2500, height: 1500 });
  });
});

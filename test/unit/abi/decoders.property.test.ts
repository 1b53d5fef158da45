/**
 * Property tests: every ABI decoder against hostile bytes.
 *
 * Bad inputs tried, for decodeReq, decodeResp, decodeEvt, decodeEventPageHeader,
 * decodeSringHeader, decodeGrantEntry, decodePageDirectory, decodeXsHeader, decodeXsMessage and
 * every ABI_KINDS[k].decode / .packetSize:
 * - random bytes of random length (0..200; 0..5000 for pgdir and xsmsg), including empty input;
 * - valid packets truncated at every possible length, and valid packets followed by extra bytes;
 * - displif packets whose operation/type byte is every known code and random unknown codes;
 * - xenstore headers announcing payloads that are absent, partial, complete, exactly 4096 bytes
 *   and beyond XENSTORE_PAYLOAD_MAX (up to 0xffffffff);
 * - views that are subarrays at a non-zero byteOffset of a larger buffer, with canary bytes right
 *   before and after the view (decoding must not depend on them, nor write anywhere).
 *
 * Properties: no decoder throws; the result is {ok:false, error: AbiError 'short'} exactly when
 * the view is shorter than what the structure needs; bytes after a fixed-size structure are
 * ignored; the decoded value does not change when the canaries change and equals decoding a copy
 * of just the view's bytes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AbiError, type Decoded } from '../../../src/abi/bytes.js';
import { decodeEventPageHeader, decodeEvt, decodeReq, decodeResp } from '../../../src/abi/displif-packets.js';
import { decodeGrantEntry } from '../../../src/abi/grant-table.js';
import { ABI_KIND_NAMES, ABI_KINDS, type AbiKindName } from '../../../src/abi/json.js';
import { decodePageDirectory } from '../../../src/abi/page-directory.js';
import { decodeSringHeader } from '../../../src/abi/ring-layout.js';
import { decodeXsHeader, decodeXsMessage } from '../../../src/abi/xs-wire.js';

const NUM_RUNS = 150;
const XS_MAX = 4096;

// ---------------------------------------------------------------------------------------------
// Inputs

const byteArb = fc.integer({ min: 0, max: 255 });

/** 64-byte-ish displif packets: random bytes with the discriminant byte (offset 2) biased. */
function displifBytes(maxLength: number, knownCodes: readonly number[]): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(
      fc.uint8Array({ minLength: 0, maxLength }),
      fc.oneof(fc.constantFrom(...knownCodes), byteArb),
      fc.boolean(),
    )
    .map(([b, code, setCode]) => {
      if (setCode && b.length > 2) b[2] = code;
      return b;
    });
}

/** A valid xenstore message (len <= 4096) truncated or extended, or a header announcing too much. */
function xsBytes(maxLength: number): fc.Arbitrary<Uint8Array> {
  const len = fc.oneof(
    fc.integer({ min: 0, max: 64 }),
    fc.integer({ min: 0, max: XS_MAX }),
    fc.constantFrom(XS_MAX - 1, XS_MAX, XS_MAX + 1, 0xffff_ffff, 0x8000_0000),
    fc.integer({ min: XS_MAX + 1, max: 0xffff_ffff }),
  );
  return fc
    .record({
      type: fc.integer({ min: 0, max: 0xffff_ffff }),
      reqId: fc.integer({ min: 0, max: 0xffff_ffff }),
      txId: fc.integer({ min: 0, max: 0xffff_ffff }),
      len,
      // total length relative to 16 + len: negative truncates, positive appends
      delta: fc.oneof(fc.integer({ min: -20, max: 20 }), fc.integer({ min: -5000, max: 5000 })),
      fill: byteArb,
    })
    .map(({ type, reqId, txId, len, delta, fill }) => {
      const wanted = Math.max(0, Math.min(maxLength, 16 + Math.min(len, maxLength) + delta));
      const b = new Uint8Array(wanted).fill(fill);
      const full = new Uint8Array(16);
      const v = new DataView(full.buffer);
      v.setUint32(0, type, true);
      v.setUint32(4, reqId, true);
      v.setUint32(8, txId, true);
      v.setUint32(12, len, true);
      b.set(full.subarray(0, Math.min(16, wanted)));
      return b;
    });
}

/** Random bytes, or a valid-looking packet cut at a random length / extended with junk. */
function contentArb(maxLength: number, structured: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.uint8Array({ minLength: 0, maxLength }),
    structured,
    structured.chain((b) => fc.nat(b.length).map((n) => b.slice(0, n))),
  );
}

interface Placed {
  /** The view handed to the decoder: a subarray of `backing`. */
  readonly view: Uint8Array;
  readonly backing: Uint8Array;
  readonly pre: number;
}

/** Places `content` at byteOffset `pre` of a larger buffer with canaries on both sides. */
function placedArb(content: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Placed> {
  return fc
    .record({
      content,
      pre: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 24 })),
      post: fc.integer({ min: 1, max: 40 }),
      canary: byteArb,
    })
    .map(({ content, pre, post, canary }) => {
      const backing = new Uint8Array(pre + content.length + post).fill(canary);
      backing.set(content, pre);
      return { view: backing.subarray(pre, pre + content.length), backing, pre };
    });
}

/** Flips every canary byte (before and after the view). */
function flipCanaries(p: Placed): void {
  for (let i = 0; i < p.backing.length; i++) {
    if (i < p.pre || i >= p.pre + p.view.length) p.backing[i] = p.backing[i]! ^ 0xff;
  }
}

/** Fast, exact comparison key for a decode result (typed arrays as hex, bigints tagged, errors by code+message). */
function canon(r: unknown): string {
  return JSON.stringify(r, (_k, v: unknown) => {
    if (typeof v === 'bigint') return `${v}n`;
    if (ArrayBuffer.isView(v)) {
      return `${v.constructor.name}:${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}`;
    }
    if (v instanceof AbiError) return { AbiError: v.code, message: v.message };
    return v;
  });
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

// ---------------------------------------------------------------------------------------------
// Decoders under test

interface DecoderCase {
  readonly name: string;
  readonly decode: (b: Uint8Array) => Decoded<unknown>;
  readonly maxLength: number;
  readonly structured: fc.Arbitrary<Uint8Array>;
  /** What the decoder must answer for these view bytes (computed independently). */
  readonly expect: (b: Uint8Array) => 'ok' | 'short' | 'too-large';
  /** For fixed-size structures: the size, so trailing bytes must be ignored. */
  readonly fixedSize?: number;
}

const REQ_OPS = [0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16];
const EVT_TYPES = [0x00];

function fixed(size: number) {
  return (b: Uint8Array): 'ok' | 'short' => (b.length < size ? 'short' : 'ok');
}

/** xsmsg: short without a whole header; too-large when len > 4096; short when the payload is cut. */
function xsMessageExpect(b: Uint8Array): 'ok' | 'short' | 'too-large' {
  if (b.length < 16) return 'short';
  const len = new DataView(b.buffer, b.byteOffset, 16).getUint32(12, true);
  if (len > XS_MAX) return 'too-large';
  return b.length < 16 + len ? 'short' : 'ok';
}

function xsPacketSizeExpect(b: Uint8Array): 'ok' | 'short' | 'too-large' {
  if (b.length < 16) return 'short';
  const len = new DataView(b.buffer, b.byteOffset, 16).getUint32(12, true);
  return len > XS_MAX ? 'too-large' : 'ok';
}

const BASE_CASES: Record<
  AbiKindName,
  Omit<DecoderCase, 'name' | 'decode'> & { fnName: string; fn: (b: Uint8Array) => Decoded<unknown> }
> = {
  req: {
    fnName: 'decodeReq',
    fn: decodeReq,
    maxLength: 200,
    structured: displifBytes(80, REQ_OPS),
    expect: fixed(64),
    fixedSize: 64,
  },
  resp: {
    fnName: 'decodeResp',
    fn: decodeResp,
    maxLength: 200,
    structured: displifBytes(80, REQ_OPS),
    expect: fixed(64),
    fixedSize: 64,
  },
  evt: {
    fnName: 'decodeEvt',
    fn: decodeEvt,
    maxLength: 200,
    structured: displifBytes(80, EVT_TYPES),
    expect: fixed(64),
    fixedSize: 64,
  },
  evtpage: {
    fnName: 'decodeEventPageHeader',
    fn: decodeEventPageHeader,
    maxLength: 200,
    structured: fc.uint8Array({ minLength: 64, maxLength: 80 }),
    expect: fixed(64),
    fixedSize: 64,
  },
  sring: {
    fnName: 'decodeSringHeader',
    fn: decodeSringHeader,
    maxLength: 200,
    structured: fc.uint8Array({ minLength: 64, maxLength: 80 }),
    expect: fixed(64),
    fixedSize: 64,
  },
  gntentry: {
    fnName: 'decodeGrantEntry',
    fn: decodeGrantEntry,
    maxLength: 200,
    structured: fc.uint8Array({ minLength: 8, maxLength: 16 }),
    expect: fixed(8),
    fixedSize: 8,
  },
  xsmsg: {
    fnName: 'decodeXsMessage',
    fn: (b) => decodeXsMessage(b),
    maxLength: 5000,
    structured: xsBytes(5000),
    expect: xsMessageExpect,
  },
  pgdir: {
    fnName: 'decodePageDirectory',
    fn: decodePageDirectory,
    maxLength: 5000,
    structured: fc.uint8Array({ minLength: 4090, maxLength: 4200 }),
    expect: fixed(4096),
    fixedSize: 4096,
  },
};

const CASES: DecoderCase[] = [];
for (const kind of ABI_KIND_NAMES) {
  const base = BASE_CASES[kind];
  CASES.push({ ...base, name: base.fnName, decode: base.fn });
  CASES.push({ ...base, name: `ABI_KINDS.${kind}.decode`, decode: (b) => ABI_KINDS[kind].decode(b) });
  CASES.push({
    ...base,
    name: `ABI_KINDS.${kind}.packetSize`,
    decode: (b) => ABI_KINDS[kind].packetSize(b),
    // A fixed-size kind knows its size without reading a byte; xsmsg needs the 16-byte header.
    expect: kind === 'xsmsg' ? xsPacketSizeExpect : () => 'ok',
  });
}
// decodeXsHeader has no kind of its own.
CASES.push({
  name: 'decodeXsHeader',
  decode: decodeXsHeader,
  maxLength: 200,
  structured: xsBytes(64),
  expect: fixed(16),
  fixedSize: 16,
});

// ---------------------------------------------------------------------------------------------

describe('ABI decoders on arbitrary bytes', () => {
  for (const c of CASES) {
    it(`${c.name}: never throws, 'short' exactly when too short, reads only its view`, () => {
      fc.assert(
        fc.property(placedArb(contentArb(c.maxLength, c.structured)), (p) => {
          const before = p.backing.slice();
          const expected = c.expect(p.view);

          const r1 = c.decode(p.view);
          // The decoder never writes: not into the view, not around it.
          expect(sameBytes(p.backing, before)).toBe(true);

          if (expected === 'ok') {
            expect(r1.ok).toBe(true);
          } else {
            expect(r1.ok).toBe(false);
            if (!r1.ok) {
              expect(r1.error).toBeInstanceOf(AbiError);
              expect(r1.error.code).toBe(expected);
            }
          }

          // Changing the canaries does not change the answer...
          flipCanaries(p);
          const key = canon(r1);
          expect(canon(c.decode(p.view))).toBe(key);
          // ...and neither does decoding a copy that owns exactly the view's bytes.
          const copy = p.view.slice();
          expect(canon(c.decode(copy))).toBe(key);

          // A fixed-size structure ignores what follows it.
          if (c.fixedSize !== undefined && r1.ok) {
            expect(canon(c.decode(p.view.slice(0, c.fixedSize)))).toBe(key);
          }
        }),
        { numRuns: c.maxLength > 1000 ? 80 : NUM_RUNS },
      );
    });
  }

  it('every decoder answers short on the empty view and on a view at the very end of a buffer', () => {
    const backing = new Uint8Array(8192).fill(0x5a);
    const atEnd = backing.subarray(backing.length);
    for (const c of CASES) {
      const expected = c.expect(atEnd);
      for (const b of [new Uint8Array(0), atEnd]) {
        const r = c.decode(b);
        expect(r.ok, c.name).toBe(expected === 'ok');
        if (!r.ok) expect(r.error.code, c.name).toBe(expected);
      }
    }
  });

  it('structures truncated by exactly one byte are short', () => {
    for (const c of CASES) {
      if (c.fixedSize === undefined) continue;
      const backing = new Uint8Array(c.fixedSize + 7).fill(0xff);
      const r = c.decode(backing.subarray(7, 7 + c.fixedSize - 1));
      if (c.name.endsWith('.packetSize')) {
        expect(r.ok, c.name).toBe(true);
      } else {
        expect(r.ok, c.name).toBe(false);
        if (!r.ok) expect(r.error.code, c.name).toBe('short');
      }
    }
  });

  it('xsmsg: a header announcing len bytes needs exactly 16 + len bytes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: XS_MAX }), fc.integer({ min: 0, max: 31 }), (len, pre) => {
        const backing = new Uint8Array(pre + 16 + len + 8).fill(0xcc);
        new DataView(backing.buffer, pre).setUint32(12, len, true);
        const full = backing.subarray(pre, pre + 16 + len);
        const cut = backing.subarray(pre, pre + 16 + len - 1);
        const ok = decodeXsMessage(full);
        expect(ok.ok).toBe(true);
        if (ok.ok) {
          expect(ok.value.size).toBe(16 + len);
          expect(ok.value.message.payload).toEqual(new Uint8Array(len).fill(0xcc));
        }
        const short = decodeXsMessage(cut);
        expect(short.ok).toBe(false);
        if (!short.ok) expect(short.error.code).toBe('short');
        // packetSize needs only the header: a cut payload still has a size, a cut header has none.
        const size = ABI_KINDS.xsmsg.packetSize(cut);
        if (len > 0) expect(size).toEqual({ ok: true, value: 16 + len });
        else expect(size.ok).toBe(false);
      }),
      { numRuns: 60 },
    );
  });

  it('xsmsg: the decoded payload is a copy, not a view of the input', () => {
    const bytes = new Uint8Array([1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3, 0, 0, 0, 0x61, 0x62, 0x63, 0xee]);
    const r = decodeXsMessage(bytes.subarray(0, 19));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    bytes.fill(0);
    expect(Array.from(r.value.message.payload)).toEqual([0x61, 0x62, 0x63]);
    expect(r.value.message).toMatchObject({ type: 1, req_id: 2, tx_id: 3 });
  });
});

/**
 * Property tests: encode/decode round trips of every ABI structure, typed and JSON, checked
 * against an independent byte-level reference built from the layout tables of
 * xen-pv-display-reference.md §1.4, §2, §3, §5.1 (not from the codec's own field tables).
 *
 * Bad inputs tried:
 * - typed encoders: negative, non-integer, NaN, ±Infinity, > u8/u16/u32, non-number values
 *   (strings, bigint, null, objects), u64 < 0 or > 2^64-1 and u64 given as a number, s32 outside
 *   [INT32_MIN, INT32_MAX], unknown-operation `op` unions of the wrong length or type, page
 *   directories with more than 1023 grant references, xenstore payloads beyond 4096 bytes,
 *   output buffers too small or offsets negative / non-integer / past the end;
 * - JSON encoders (ABI_KINDS[k].encode): non-objects, arrays, null, unknown keys (including keys
 *   of other operations and `__proto__`), missing required keys, wrong JSON types for every
 *   field (string, boolean, null, array, object), non-integer and out-of-range numbers,
 *   u64 decimal strings beyond 2^64-1 / with signs / hex, `op` hex of the wrong length,
 *   payload arrays that are empty or hold non-strings or characters above U+00FF,
 *   a `len` that disagrees with the payload, and arbitrary fc.jsonValue() documents.
 * - decoders fed random 64-byte packets with non-zero reserved bytes.
 *
 * Properties: encode -> decode gives the same values with reserved_nonzero false; decode -> encode
 * gives the same bytes when reserved_nonzero is false (and the bytes with reserved bytes zeroed
 * otherwise); encoders write exactly their structure's bytes (all of them, reserved = 0) and
 * nothing around it; encoders throw AbiError 'range' on out-of-range values; JSON encoders only
 * ever throw AbiError.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AbiError, S32_MAX, S32_MIN, U64_MAX } from '../../../src/abi/bytes.js';
import {
  type DisplEvt,
  type DisplReq,
  type DisplResp,
  decodeEventPageHeader,
  decodeEvt,
  decodeReq,
  decodeResp,
  encodeEventPageHeader,
  encodeEvt,
  encodeReq,
  encodeResp,
} from '../../../src/abi/displif-packets.js';
import { decodeGrantEntry, encodeGrantEntry, type GrantEntryV1 } from '../../../src/abi/grant-table.js';
import { ABI_KIND_NAMES, ABI_KINDS, type AbiKindName, type JsonObject } from '../../../src/abi/json.js';
import { decodePageDirectory, encodePageDirectory } from '../../../src/abi/page-directory.js';
import { decodeSringHeader, encodeSringHeader, type SringHeader } from '../../../src/abi/ring-layout.js';
import {
  decodeXsHeader,
  decodeXsMessage,
  encodeXsHeader,
  encodeXsMessage,
  type XsHeader,
} from '../../../src/abi/xs-wire.js';

const RUNS = 200;

// ---------------------------------------------------------------------------------------------
// Independent reference layouts (xen-pv-display-reference.md)

type T = 'u8' | 'u16' | 'u32' | 's32' | 'u64';
type Field = readonly [name: string, offset: number, type: T];
const SIZE: Record<T, number> = { u8: 1, u16: 2, u32: 4, s32: 4, u64: 8 };

const REQ_HEADER: Field[] = [
  ['id', 0, 'u16'],
  ['operation', 2, 'u8'],
];
const REQ_OPS: Record<number, Field[]> = {
  16: [
    ['dbuf_cookie', 8, 'u64'],
    ['width', 16, 'u32'],
    ['height', 20, 'u32'],
    ['bpp', 24, 'u32'],
    ['buffer_sz', 28, 'u32'],
    ['flags', 32, 'u32'],
    ['gref_directory', 36, 'u32'],
    ['data_ofs', 40, 'u32'],
  ],
  17: [['dbuf_cookie', 8, 'u64']],
  18: [
    ['dbuf_cookie', 8, 'u64'],
    ['fb_cookie', 16, 'u64'],
    ['width', 24, 'u32'],
    ['height', 28, 'u32'],
    ['pixel_format', 32, 'u32'],
  ],
  19: [['fb_cookie', 8, 'u64']],
  20: [
    ['fb_cookie', 8, 'u64'],
    ['x', 16, 'u32'],
    ['y', 20, 'u32'],
    ['width', 24, 'u32'],
    ['height', 28, 'u32'],
    ['bpp', 32, 'u32'],
  ],
  21: [['fb_cookie', 8, 'u64']],
  22: [
    ['buffer_sz', 8, 'u32'],
    ['gref_directory', 12, 'u32'],
  ],
};
const RESP_HEADER: Field[] = [
  ['id', 0, 'u16'],
  ['operation', 2, 'u8'],
  ['status', 4, 's32'],
];
const RESP_GET_EDID: Field[] = [['edid_sz', 8, 'u32']];
const EVT_HEADER: Field[] = [
  ['id', 0, 'u16'],
  ['type', 2, 'u8'],
];
const EVT_PG_FLIP: Field[] = [['fb_cookie', 8, 'u64']];
const EVTPAGE: Field[] = [
  ['in_cons', 0, 'u32'],
  ['in_prod', 4, 'u32'],
];
const SRING: Field[] = [
  ['req_prod', 0, 'u32'],
  ['req_event', 4, 'u32'],
  ['rsp_prod', 8, 'u32'],
  ['rsp_event', 12, 'u32'],
];
const GNTENTRY: Field[] = [
  ['flags', 0, 'u16'],
  ['domid', 2, 'u16'],
  ['frame', 4, 'u32'],
];
const XSHEADER: Field[] = [
  ['type', 0, 'u32'],
  ['req_id', 4, 'u32'],
  ['tx_id', 8, 'u32'],
  ['len', 12, 'u32'],
];
/** The 56-byte op union, for unknown operations/types. */
const UNION: readonly [number, number] = [8, 64];

function refWrite(view: DataView, fields: readonly Field[], obj: Record<string, unknown>): void {
  for (const [name, off, t] of fields) {
    const v = obj[name];
    if (t === 'u64') view.setBigUint64(off, v as bigint, true);
    else if (t === 'u32') view.setUint32(off, v as number, true);
    else if (t === 's32') view.setInt32(off, v as number, true);
    else if (t === 'u16') view.setUint16(off, v as number, true);
    else view.setUint8(off, v as number);
  }
}

/** Reference encoding: the listed fields (and optionally the raw union) in `size` zero bytes. */
function refEncode(
  size: number,
  fields: readonly Field[],
  obj: Record<string, unknown>,
  union?: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(size);
  refWrite(new DataView(out.buffer), fields, obj);
  if (union) out.set(union, UNION[0]);
  return out;
}

/** Mask of bytes the fields (and the union) cover; everything else is reserved. */
function refMask(size: number, fields: readonly Field[], union = false): Uint8Array {
  const m = new Uint8Array(size);
  for (const [, off, t] of fields) m.fill(1, off, off + SIZE[t]);
  if (union) m.fill(1, UNION[0], UNION[1]);
  return m;
}

function reqLayout(op: number): { fields: Field[]; union: boolean } {
  const p = REQ_OPS[op];
  return p ? { fields: [...REQ_HEADER, ...p], union: false } : { fields: REQ_HEADER, union: true };
}
function respLayout(op: number): Field[] {
  return op === 0x16 ? [...RESP_HEADER, ...RESP_GET_EDID] : RESP_HEADER;
}
function evtLayout(type: number): { fields: Field[]; union: boolean } {
  return type === 0
    ? { fields: [...EVT_HEADER, ...EVT_PG_FLIP], union: false }
    : { fields: EVT_HEADER, union: true };
}

// ---------------------------------------------------------------------------------------------
// Value arbitraries

const u8 = fc.oneof(fc.constantFrom(0, 1, 0x7f, 0x80, 0xff), fc.integer({ min: 0, max: 0xff }));
const u16 = fc.oneof(fc.constantFrom(0, 1, 0x7fff, 0x8000, 0xffff), fc.integer({ min: 0, max: 0xffff }));
const u32 = fc.oneof(
  fc.constantFrom(0, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff),
  fc.integer({ min: 0, max: 0xffff_ffff }),
);
const s32 = fc.oneof(
  fc.constantFrom(S32_MIN, S32_MIN + 1, -1, 0, 1, S32_MAX),
  fc.integer({ min: S32_MIN, max: S32_MAX }),
);
const u64 = fc.oneof(
  fc.constantFrom(0n, 1n, 0x7fff_ffff_ffff_ffffn, 0x8000_0000_0000_0000n, U64_MAX - 1n, U64_MAX),
  fc.bigInt({ min: 0n, max: U64_MAX }),
  fc.bigInt({ min: 0x8000_0000_0000_0000n, max: U64_MAX }),
);
const ARB: Record<T, fc.Arbitrary<number | bigint>> = { u8, u16, u32, s32, u64 };

function recordOf(fields: readonly Field[]): fc.Arbitrary<Record<string, number | bigint>> {
  const model: Record<string, fc.Arbitrary<number | bigint>> = {};
  for (const [name, , t] of fields) model[name] = ARB[t];
  return fc.record(model);
}

const KNOWN_OPS = [0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16];
const unknownOp = fc.integer({ min: 0, max: 0xff }).filter((op) => !KNOWN_OPS.includes(op));
const union56 = fc.uint8Array({ minLength: 56, maxLength: 56 });

const knownReqArb: fc.Arbitrary<DisplReq> = fc
  .constantFrom(...KNOWN_OPS)
  .chain((op) =>
    recordOf([...REQ_HEADER.filter(([n]) => n !== 'operation'), ...REQ_OPS[op]!]).map((r) => ({
      ...r,
      operation: op,
    })),
  )
  .map((r) => r as unknown as DisplReq);
const unknownReqArb: fc.Arbitrary<DisplReq> = fc
  .record({ operation: unknownOp, id: u16, op: union56 })
  .map((r) => ({ unknown: true as const, ...r }));
const reqArb = fc.oneof(knownReqArb, unknownReqArb);

const respArb: fc.Arbitrary<DisplResp> = fc.oneof(
  fc.record({ id: u16, operation: fc.constant(0x16), status: s32, edid_sz: u32 }),
  fc.record({ id: u16, operation: u8.filter((o) => o !== 0x16), status: s32 }),
);
const evtArb: fc.Arbitrary<DisplEvt> = fc.oneof(
  fc.record({ id: u16, type: fc.constant(0 as const), fb_cookie: u64 }),
  fc
    .record({ id: u16, type: fc.integer({ min: 1, max: 0xff }), op: union56 })
    .map((r) => ({ unknown: true as const, ...r })),
);
const evtPageArb = fc.record({ in_cons: u32, in_prod: u32 });
const sringArb: fc.Arbitrary<SringHeader> = fc.record({
  req_prod: u32,
  req_event: u32,
  rsp_prod: u32,
  rsp_event: u32,
});
const gntArb: fc.Arbitrary<GrantEntryV1> = fc.record({ flags: u16, domid: u16, frame: u32 });
const xsHeaderArb: fc.Arbitrary<XsHeader> = fc.record({ type: u32, req_id: u32, tx_id: u32, len: u32 });
const xsPayload = fc.oneof(
  { weight: 5, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 4000, maxLength: 4096 }) },
);
const xsMsgArb = fc.record({ type: u32, req_id: u32, tx_id: u32, payload: xsPayload });
const pgdirArb = fc.record({
  gref_dir_next_page: u32,
  gref: fc.oneof(fc.array(u32, { maxLength: 40 }), fc.array(u32, { minLength: 1000, maxLength: 1023 })),
});

// ---------------------------------------------------------------------------------------------
// Helpers

function expectAbiError(fn: () => unknown, codes: readonly string[]): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, 'expected an AbiError to be thrown').toBeInstanceOf(AbiError);
  expect(codes).toContain((thrown as AbiError).code);
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** Encodes into a 0xAA-filled buffer at `off`; checks the bytes around are untouched; returns the 64 bytes. */
function encodeInto(
  size: number,
  off: number,
  enc: (out: Uint8Array, offset: number) => Uint8Array,
): Uint8Array {
  const out = new Uint8Array(off + size + 16).fill(0xaa);
  expect(enc(out, off)).toBe(out);
  const around = [...out.subarray(0, off), ...out.subarray(off + size)];
  expect(around.every((b) => b === 0xaa)).toBe(true);
  return out.slice(off, off + size);
}

const offsetArb = fc.integer({ min: 0, max: 13 });

// ---------------------------------------------------------------------------------------------

describe('typed encode -> decode', () => {
  it('requests (every operation 0x10..0x16 and unknown ones): same values, reference bytes, reserved = 0', () => {
    fc.assert(
      fc.property(reqArb, offsetArb, (req, off) => {
        const { fields, union } = reqLayout(req.operation);
        const ref = refEncode(64, fields, req as never, union ? (req as { op: Uint8Array }).op : undefined);
        const bytes = encodeReq(req);
        expect(hex(bytes)).toBe(hex(ref));
        expect(hex(encodeInto(64, off, (o, at) => encodeReq(req, o, at)))).toBe(hex(ref));
        const d = decodeReq(bytes);
        expect(d.ok).toBe(true);
        if (d.ok) expect(d.value).toEqual({ ...req, reserved_nonzero: false });
      }),
      { numRuns: RUNS },
    );
  });

  it('responses (s32 status incl. INT32_MIN, GET_EDID edid_sz)', () => {
    fc.assert(
      fc.property(respArb, offsetArb, (resp, off) => {
        const ref = refEncode(64, respLayout(resp.operation), resp as never);
        expect(hex(encodeResp(resp))).toBe(hex(ref));
        expect(hex(encodeInto(64, off, (o, at) => encodeResp(resp, o, at)))).toBe(hex(ref));
        const d = decodeResp(ref);
        expect(d.ok).toBe(true);
        if (d.ok) expect(d.value).toEqual({ ...resp, reserved_nonzero: false });
      }),
      { numRuns: RUNS },
    );
  });

  it('events (PG_FLIP and unknown types)', () => {
    fc.assert(
      fc.property(evtArb, offsetArb, (evt, off) => {
        const { fields, union } = evtLayout(evt.type);
        const ref = refEncode(64, fields, evt as never, union ? (evt as { op: Uint8Array }).op : undefined);
        expect(hex(encodeEvt(evt))).toBe(hex(ref));
        expect(hex(encodeInto(64, off, (o, at) => encodeEvt(evt, o, at)))).toBe(hex(ref));
        const d = decodeEvt(ref);
        expect(d.ok).toBe(true);
        if (d.ok) expect(d.value).toEqual({ ...evt, reserved_nonzero: false });
      }),
      { numRuns: RUNS },
    );
  });

  it('event page header, sring header, grant entry, xsd_sockmsg header', () => {
    fc.assert(
      fc.property(evtPageArb, sringArb, gntArb, xsHeaderArb, offsetArb, (ep, sr, ge, xh, off) => {
        const epRef = refEncode(64, EVTPAGE, ep);
        expect(hex(encodeInto(64, off, (o, at) => encodeEventPageHeader(ep, o, at)))).toBe(hex(epRef));
        expect(decodeEventPageHeader(encodeEventPageHeader(ep))).toEqual({
          ok: true,
          value: { ...ep, reserved_nonzero: false },
        });

        const srRef = refEncode(64, SRING, sr as never);
        expect(hex(encodeInto(64, off, (o, at) => encodeSringHeader(sr, o, at)))).toBe(hex(srRef));
        expect(decodeSringHeader(encodeSringHeader(sr))).toEqual({
          ok: true,
          value: { ...sr, reserved_nonzero: false },
        });

        const geRef = refEncode(8, GNTENTRY, ge as never);
        expect(hex(encodeInto(8, off, (o, at) => encodeGrantEntry(ge, o, at)))).toBe(hex(geRef));
        expect(decodeGrantEntry(encodeGrantEntry(ge))).toEqual({ ok: true, value: ge });

        const xhRef = refEncode(16, XSHEADER, xh as never);
        expect(hex(encodeInto(16, off, (o, at) => encodeXsHeader(xh, o, at)))).toBe(hex(xhRef));
        expect(decodeXsHeader(encodeXsHeader(xh))).toEqual({ ok: true, value: xh });
      }),
      { numRuns: RUNS },
    );
  });

  it('page directories (0..1023 grant references, the rest zero)', () => {
    fc.assert(
      fc.property(pgdirArb, offsetArb, (pd, off) => {
        const ref = new Uint8Array(4096);
        const v = new DataView(ref.buffer);
        v.setUint32(0, pd.gref_dir_next_page, true);
        for (const [i, g] of pd.gref.entries()) v.setUint32(4 + 4 * i, g, true);
        const bytes = encodeInto(4096, off, (o, at) => encodePageDirectory(pd, o, at));
        expect(hex(bytes)).toBe(hex(ref));
        const d = decodePageDirectory(bytes);
        expect(d.ok).toBe(true);
        if (!d.ok) return;
        expect(d.value.gref_dir_next_page).toBe(pd.gref_dir_next_page);
        expect(d.value.gref.length).toBe(1023);
        const want = new Uint32Array(1023);
        want.set(pd.gref);
        expect(hex(new Uint8Array(d.value.gref.buffer))).toBe(hex(new Uint8Array(want.buffer)));
      }),
      { numRuns: 60 },
    );
  });

  it('xenstore messages (payload 0..4096)', () => {
    fc.assert(
      fc.property(xsMsgArb, (m) => {
        const bytes = encodeXsMessage(m);
        const ref = new Uint8Array(16 + m.payload.length);
        refWrite(new DataView(ref.buffer), XSHEADER, { ...m, len: m.payload.length });
        ref.set(m.payload, 16);
        expect(hex(bytes)).toBe(hex(ref));
        const d = decodeXsMessage(bytes);
        expect(d.ok).toBe(true);
        if (!d.ok) return;
        expect(d.value.size).toBe(bytes.length);
        expect(d.value.message).toEqual(m);
      }),
      { numRuns: 60 },
    );
  });
});

// ---------------------------------------------------------------------------------------------

/** 64 random bytes; the discriminant biased towards known codes; reserved bytes zeroed half the time. */
function packetBytes(
  codes: readonly number[],
  layout: (code: number) => { fields: Field[]; union: boolean },
) {
  return fc
    .tuple(
      fc.uint8Array({ minLength: 64, maxLength: 64 }),
      fc.oneof(fc.constantFrom(...codes), u8),
      fc.boolean(),
    )
    .map(([b, code, clean]) => {
      b[2] = code;
      if (clean) {
        const l = layout(code);
        const m = refMask(64, l.fields, l.union);
        for (let i = 0; i < 64; i++) if (m[i] === 0) b[i] = 0;
      }
      return b;
    });
}

function checkDecodeEncode(
  bytes: Uint8Array,
  mask: Uint8Array,
  decoded: { reserved_nonzero: boolean },
  reencoded: Uint8Array,
): void {
  let dirty = false;
  const cleaned = bytes.slice();
  for (let i = 0; i < bytes.length; i++) {
    if (mask[i] === 0 && bytes[i] !== 0) {
      dirty = true;
      cleaned[i] = 0;
    }
  }
  expect(decoded.reserved_nonzero).toBe(dirty);
  // Same bytes when nothing reserved was set; otherwise the same bytes with reserved bytes cleared.
  expect(hex(reencoded)).toBe(hex(cleaned));
}

describe('decode -> encode', () => {
  it('requests', () => {
    fc.assert(
      fc.property(packetBytes(KNOWN_OPS, reqLayout), (bytes) => {
        const d = decodeReq(bytes);
        expect(d.ok).toBe(true);
        if (!d.ok) return;
        const l = reqLayout(bytes[2]!);
        checkDecodeEncode(bytes, refMask(64, l.fields, l.union), d.value, encodeReq(d.value));
      }),
      { numRuns: RUNS },
    );
  });

  it('responses', () => {
    fc.assert(
      fc.property(
        packetBytes([0x16, 0x10, 0x15], (op) => ({ fields: respLayout(op), union: false })),
        (bytes) => {
          const d = decodeResp(bytes);
          expect(d.ok).toBe(true);
          if (!d.ok) return;
          checkDecodeEncode(bytes, refMask(64, respLayout(bytes[2]!)), d.value, encodeResp(d.value));
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('events', () => {
    fc.assert(
      fc.property(packetBytes([0], evtLayout), (bytes) => {
        const d = decodeEvt(bytes);
        expect(d.ok).toBe(true);
        if (!d.ok) return;
        const l = evtLayout(bytes[2]!);
        checkDecodeEncode(bytes, refMask(64, l.fields, l.union), d.value, encodeEvt(d.value));
      }),
      { numRuns: RUNS },
    );
  });

  it('event page and sring headers', () => {
    fc.assert(
      fc.property(
        packetBytes([0], () => ({ fields: EVTPAGE, union: false })),
        (bytes) => {
          const e = decodeEventPageHeader(bytes);
          expect(e.ok).toBe(true);
          if (e.ok) checkDecodeEncode(bytes, refMask(64, EVTPAGE), e.value, encodeEventPageHeader(e.value));
          const s = decodeSringHeader(bytes);
          expect(s.ok).toBe(true);
          if (s.ok) checkDecodeEncode(bytes, refMask(64, SRING), s.value, encodeSringHeader(s.value));
        },
      ),
      { numRuns: RUNS },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Range errors of the typed encoders

const badNumber = (t: Exclude<T, 'u64'>): fc.Arbitrary<unknown> => {
  const max = { u8: 0xff, u16: 0xffff, u32: 0xffff_ffff, s32: S32_MAX }[t];
  const min = t === 's32' ? S32_MIN : 0;
  return fc.oneof(
    fc.integer({ min: Number.MIN_SAFE_INTEGER, max: min - 1 }),
    fc.integer({ min: max + 1, max: Number.MAX_SAFE_INTEGER }),
    fc.constantFrom(
      min - 1,
      max + 1,
      0.5,
      -0.5,
      max + 0.5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      2 ** 64,
    ),
    fc.double({ noInteger: true, noNaN: true }),
    fc.constantFrom('1', '0', null, true, 1n, [1], { v: 1 }),
  );
};
const badU64: fc.Arbitrary<unknown> = fc.oneof(
  fc.bigInt({ min: -(2n ** 80n), max: -1n }),
  fc.bigInt({ min: U64_MAX + 1n, max: 2n ** 80n }),
  fc.constantFrom(-1n, U64_MAX + 1n, 2n ** 64n, 1, 0, '1', null, true, 1.5),
);
const badFor = (t: T): fc.Arbitrary<unknown> => (t === 'u64' ? badU64 : badNumber(t));

/** A valid packet and one of its fields replaced by a bad value. */
function withBadField<P extends object>(arb: fc.Arbitrary<P>, fieldsOf: (p: P) => readonly Field[]) {
  return arb.chain((p) => {
    const fields = fieldsOf(p);
    return fc.nat(fields.length - 1).chain((i) => {
      const [name, , t] = fields[i]!;
      return badFor(t).map((bad) => ({ packet: { ...p, [name]: bad }, field: name, bad }));
    });
  });
}

describe('typed encoders reject out-of-range values with AbiError "range"', () => {
  it('requests', () => {
    fc.assert(
      fc.property(
        withBadField(reqArb, (r) => reqLayout(r.operation).fields),
        ({ packet }) => {
          expectAbiError(() => encodeReq(packet), ['range']);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('responses, events, event page, sring, grant entry, xs header', () => {
    fc.assert(
      fc.property(
        withBadField(respArb, (r) => respLayout(r.operation)),
        withBadField(evtArb, (e) => evtLayout(e.type).fields),
        withBadField(evtPageArb, () => EVTPAGE),
        withBadField(sringArb, () => SRING),
        withBadField(gntArb, () => GNTENTRY),
        withBadField(xsHeaderArb, () => XSHEADER),
        (resp, evt, ep, sr, ge, xh) => {
          expectAbiError(() => encodeResp(resp.packet), ['range']);
          expectAbiError(() => encodeEvt(evt.packet), ['range']);
          expectAbiError(() => encodeEventPageHeader(ep.packet), ['range']);
          expectAbiError(() => encodeSringHeader(sr.packet), ['range']);
          expectAbiError(() => encodeGrantEntry(ge.packet), ['range']);
          expectAbiError(() => encodeXsHeader(xh.packet), ['range']);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('s32 status: INT32_MIN and INT32_MAX are accepted, one beyond is not', () => {
    for (const status of [S32_MIN, S32_MAX]) {
      const d = decodeResp(encodeResp({ id: 1, operation: 0x10, status }));
      expect(d.ok && d.value.status).toBe(status);
    }
    for (const status of [S32_MIN - 1, S32_MAX + 1, 0xffff_ffff]) {
      expectAbiError(() => encodeResp({ id: 1, operation: 0x10, status }), ['range']);
    }
  });

  it('unknown operations need a 56-byte Uint8Array op', () => {
    fc.assert(
      fc.property(
        unknownOp,
        fc.oneof(
          fc.uint8Array({ maxLength: 55 }),
          fc.uint8Array({ minLength: 57, maxLength: 100 }),
          fc.constantFrom<unknown>('00', [0, 1], null, 5, new Uint16Array(28)),
        ),
        (operation, op) => {
          expectAbiError(() => encodeReq({ unknown: true, operation, id: 0, op } as never), ['range']);
          expectAbiError(
            () => encodeEvt({ unknown: true, type: operation === 0 ? 1 : operation, id: 0, op } as never),
            ['range'],
          );
        },
      ),
      { numRuns: 100 },
    );
  });

  it('page directories: > 1023 references or a bad reference', () => {
    expectAbiError(
      () => encodePageDirectory({ gref_dir_next_page: 0, gref: new Array(1024).fill(1) }),
      ['range'],
    );
    fc.assert(
      fc.property(fc.nat(1022), badNumber('u32'), fc.boolean(), (i, bad, inNext) => {
        const gref = new Array<unknown>(i + 1).fill(7);
        if (inNext) {
          expectAbiError(
            () => encodePageDirectory({ gref_dir_next_page: bad as number, gref: gref as number[] }),
            ['range'],
          );
        } else {
          gref[i] = bad;
          expectAbiError(
            () => encodePageDirectory({ gref_dir_next_page: 0, gref: gref as number[] }),
            ['range'],
          );
        }
      }),
      { numRuns: 100 },
    );
  });

  it('xenstore messages: payload > 4096 is too-large; header fields out of range', () => {
    expectAbiError(
      () => encodeXsMessage({ type: 1, req_id: 0, tx_id: 0, payload: new Uint8Array(4097) }),
      ['too-large'],
    );
    expect(encodeXsMessage({ type: 1, req_id: 0, tx_id: 0, payload: new Uint8Array(4096) }).length).toBe(
      4112,
    );
    fc.assert(
      fc.property(
        withBadField(xsMsgArb, () => XSHEADER.slice(0, 3)),
        ({ packet }) => {
          expectAbiError(() => encodeXsMessage(packet), ['range']);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('output buffers that are too small, or offsets out of the buffer, are rejected without writing', () => {
    const req: DisplReq = { operation: 0x15, id: 1, fb_cookie: 5n };
    const cases: [number, number][] = [
      [63, 0],
      [64, 1],
      [100, 37],
      [100, -1],
      [100, 0.5],
      [100, Number.NaN],
      [0, 0],
    ];
    for (const [len, off] of cases) {
      const out = new Uint8Array(len).fill(0xaa);
      expectAbiError(() => encodeReq(req, out, off), ['short']);
      expect(out.every((b) => b === 0xaa)).toBe(true);
      expectAbiError(() => encodeGrantEntry({ flags: 0, domid: 0, frame: 0 }, new Uint8Array(7)), ['short']);
      expectAbiError(
        () => encodePageDirectory({ gref_dir_next_page: 0, gref: [] }, new Uint8Array(4095)),
        ['short'],
      );
    }
  });
});

// ---------------------------------------------------------------------------------------------
// JSON (ABI_KINDS)

function u64Json(v: bigint): string {
  return v.toString();
}

/** Typed value -> the JSON the CLI prints (C field names, u64 as decimal strings). */
function toJson(obj: object): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(obj)) {
    if (k === 'unknown') continue;
    if (typeof v === 'bigint') out[k] = u64Json(v);
    else if (v instanceof Uint8Array) out[k] = hex(v);
    else out[k] = v as number;
  }
  return out;
}

/** JSON arbitraries per kind: the same documents `decode` prints. */
const JSON_ARBS: Record<AbiKindName, fc.Arbitrary<JsonObject>> = {
  req: reqArb.map(toJson),
  resp: respArb.map(toJson),
  evt: evtArb.map(toJson),
  evtpage: evtPageArb.map(toJson),
  sring: sringArb.map(toJson),
  gntentry: gntArb.map(toJson),
  xsmsg: fc
    .record({
      type: u32,
      req_id: u32,
      tx_id: u32,
      // latin1 strings without NUL: one JSON string per NUL-separated part
      payload: fc.array(
        fc.string({
          unit: fc.integer({ min: 1, max: 255 }).map((c) => String.fromCharCode(c)),
          maxLength: 20,
        }),
        {
          minLength: 1,
          maxLength: 6,
        },
      ),
    })
    .map((m) => ({ ...m, len: m.payload.join('\0').length })),
  pgdir: fc.record({ gref_dir_next_page: u32, gref: fc.array(u32, { minLength: 1023, maxLength: 1023 }) }),
};
/** The same with short page directories, for the mutation tests (readable counterexamples). */
const JSON_ARBS_SMALL: Record<AbiKindName, fc.Arbitrary<JsonObject>> = {
  ...JSON_ARBS,
  pgdir: fc.record({ gref_dir_next_page: u32, gref: fc.array(u32, { maxLength: 8 }) }),
};

/** Fields each JSON kind accepts, and their C types (for wrong-type / range mutations). */
function jsonFields(kind: AbiKindName, json: JsonObject): Field[] {
  switch (kind) {
    case 'req':
      return reqLayout(json.operation as number).fields;
    case 'resp':
      return respLayout(json.operation as number);
    case 'evt':
      return evtLayout(json.type as number).fields;
    case 'evtpage':
      return EVTPAGE;
    case 'sring':
      return SRING;
    case 'gntentry':
      return GNTENTRY;
    case 'xsmsg':
      return XSHEADER.slice(0, 3);
    case 'pgdir':
      return [['gref_dir_next_page', 0, 'u32']];
  }
}

function expectOnlyAbiErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    expect(e, `threw ${String(e)}`).toBeInstanceOf(AbiError);
  }
}

describe('JSON encode/decode (ABI_KINDS)', () => {
  for (const kind of ABI_KIND_NAMES) {
    it(`${kind}: JSON -> encode -> decode gives the same JSON, and decode -> encode the same bytes`, () => {
      fc.assert(
        fc.property(JSON_ARBS[kind], (json) => {
          const k = ABI_KINDS[kind];
          // through JSON text, as the CLI does
          const bytes = k.encode(JSON.parse(JSON.stringify(json)));
          const size = k.packetSize(bytes);
          expect(size).toEqual({ ok: true, value: bytes.length });
          const d = k.decode(bytes);
          expect(d.ok).toBe(true);
          if (!d.ok) return;
          expect(d.value).toEqual(json);
          const again = k.encode(JSON.parse(JSON.stringify(d.value)));
          expect(hex(again)).toBe(hex(bytes));
        }),
        { numRuns: kind === 'pgdir' ? 40 : RUNS },
      );
    });
  }

  it('u64 fields accept decimal strings over the full range and safe non-negative integers', () => {
    fc.assert(
      fc.property(u64, fc.nat({ max: Number.MAX_SAFE_INTEGER }), (big, small) => {
        const a = ABI_KINDS.req.encode({ id: 0, operation: 0x15, fb_cookie: big.toString() });
        expect(decodeReq(a)).toMatchObject({ ok: true, value: { fb_cookie: big } });
        const b = ABI_KINDS.evt.encode({ id: 0, type: 0, fb_cookie: small });
        expect(decodeEvt(b)).toMatchObject({ ok: true, value: { fb_cookie: BigInt(small) } });
      }),
      { numRuns: RUNS },
    );
  });

  it('random 64-byte packets: decode -> JSON -> encode gives the same bytes unless reserved bytes were set', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<AbiKindName>('req', 'resp', 'evt', 'evtpage', 'sring'),
        packetBytes([...KNOWN_OPS, 0], reqLayout),
        (kind, bytes) => {
          const k = ABI_KINDS[kind];
          const d = k.decode(bytes);
          expect(d.ok).toBe(true);
          if (!d.ok) return;
          const masks: Record<string, Uint8Array> = {
            req: (() => {
              const l = reqLayout(bytes[2]!);
              return refMask(64, l.fields, l.union);
            })(),
            resp: refMask(64, respLayout(bytes[2]!)),
            evt: (() => {
              const l = evtLayout(bytes[2]!);
              return refMask(64, l.fields, l.union);
            })(),
            evtpage: refMask(64, EVTPAGE),
            sring: refMask(64, SRING),
          };
          const reserved = d.value.reserved_nonzero === true;
          expect('reserved_nonzero' in d.value).toBe(reserved);
          checkDecodeEncode(
            bytes,
            masks[kind]!,
            { reserved_nonzero: reserved },
            k.encode(JSON.parse(JSON.stringify(d.value))),
          );
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('unknown keys are rejected with AbiError', () => {
    const foreign = fc.oneof(
      fc.constantFrom(
        '__proto__',
        'constructor',
        'toString',
        'op',
        'fb_cookie',
        'dbuf_cookie',
        'width',
        'edid_sz',
        'len',
        'gref',
        'x',
        'Id',
        'id ',
      ),
      fc.string({ minLength: 1, maxLength: 12 }),
    );
    fc.assert(
      fc.property(
        fc
          .constantFrom(...ABI_KIND_NAMES)
          .chain((kind) => fc.tuple(fc.constant(kind), JSON_ARBS_SMALL[kind])),
        foreign,
        ([kind, json], key) => {
          const allowed = [
            ...jsonFields(kind, json).map(([n]) => n),
            ...(kind === 'xsmsg' ? ['len', 'payload'] : []),
            ...(kind === 'pgdir' ? ['gref'] : []),
            ...('op' in json ? ['op'] : []),
            'reserved_nonzero',
          ];
          fc.pre(!allowed.includes(key));
          const bad = JSON.parse(`{${JSON.stringify(key)}: 1, ${JSON.stringify(json).slice(1)}`) as unknown;
          expectAbiError(() => ABI_KINDS[kind].encode(bad), ['malformed', 'range']);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('wrong JSON types and out-of-range numbers in any field are rejected with AbiError', () => {
    const wrongType = fc.constantFrom<unknown>('1', '', 'abc', true, false, null, [], [1], {}, { v: 1 });
    const outOfRange = (t: T): fc.Arbitrary<unknown> =>
      t === 'u64'
        ? fc.constantFrom<unknown>(
            -1,
            1.5,
            2 ** 64,
            '-1',
            '+1',
            '0x10',
            '1e3',
            ' 1',
            '',
            '18446744073709551616',
            '99999999999999999999',
            '184467440737095516150',
          )
        : fc.oneof(badNumber(t).filter((v) => typeof v === 'number'));
    fc.assert(
      fc.property(
        fc.constantFrom(...ABI_KIND_NAMES).chain((kind) =>
          JSON_ARBS_SMALL[kind].chain((json) => {
            const fields = jsonFields(kind, json);
            return fc.nat(fields.length - 1).chain((i) => {
              const [name, , t] = fields[i]!;
              // pgdir + null is left to its own test below (a known bug), so that this property
              // keeps checking every other kind and value.
              // ('1' is a valid u64: decimal strings are how JSON carries them.)
              const wrong = wrongType.filter(
                (v) => !(kind === 'pgdir' && v === null) && !(t === 'u64' && v === '1'),
              );
              return fc
                .oneof(wrong, outOfRange(t))
                .map((bad) => ({ kind, json: { ...json, [name]: bad } }));
            });
          }),
        ),
        ({ kind, json }) => {
          expectAbiError(() => ABI_KINDS[kind].encode(json), ['range', 'malformed']);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('pgdir: gref must be an array of at most 1023 u32 numbers', () => {
    const bad = [
      { gref: 'abc' },
      { gref: {} },
      { gref: [1, '2'] },
      { gref: [-1] },
      { gref: [1.5] },
      { gref: [2 ** 32] },
      { gref: [null] },
      { gref: new Array(1024).fill(1) },
      { gref_dir_next_page: '1' },
      { gref_dir_next_page: -1 },
      { gref_dir_next_page: [] },
    ];
    for (const json of bad) expectAbiError(() => ABI_KINDS.pgdir.encode(json), ['range', 'malformed']);
  });

  it('pgdir: null is a wrong type, as it is for every other kind', () => {
    // Every other kind rejects a null field value (e.g. sring {"req_prod": null} -> AbiError
    // 'range'); pgdir's encoder reads its fields with `?? default`, so null passes as 0 / [].
    expectAbiError(() => ABI_KINDS.sring.encode({ req_prod: null }), ['range']);
    expectAbiError(() => ABI_KINDS.pgdir.encode({ gref_dir_next_page: null }), ['range', 'malformed']);
    expectAbiError(() => ABI_KINDS.pgdir.encode({ gref: null }), ['range', 'malformed']);
  });

  it('xsmsg: payload must be a non-empty array of byte strings whose length matches len', () => {
    const bad: unknown[] = [
      { type: 1 },
      { payload: ['a'] },
      { type: 1, payload: 'abc' },
      { type: 1, payload: [] },
      { type: 1, payload: [1] },
      { type: 1, payload: ['ok', null] },
      { type: 1, payload: ['\u0100'] },
      { type: 1, payload: ['\u{1f600}'] },
      { type: 1, payload: ['abc'], len: 4 },
      { type: 1, payload: ['abc'], len: '3' },
      { type: 1, payload: ['a', 'b'], len: 2 },
      { type: 1, payload: ['x'.repeat(4097)] },
    ];
    for (const json of bad)
      expectAbiError(() => ABI_KINDS.xsmsg.encode(json), ['range', 'malformed', 'too-large']);
    expect(ABI_KINDS.xsmsg.encode({ type: 1, payload: ['a', 'b'], len: 3 }).length).toBe(19);
    expect(ABI_KINDS.xsmsg.encode({ type: 1, payload: ['x'.repeat(4096)] }).length).toBe(4112);
  });

  it('req/evt op: 112 hex digits for unknown operations only', () => {
    const op = '00'.repeat(56);
    expect(ABI_KINDS.req.encode({ id: 1, operation: 0x99, op: 'ab'.repeat(56) }).length).toBe(64);
    for (const bad of ['00'.repeat(55), '00'.repeat(57), `${'00'.repeat(55)}0g`, 5, null, ['00']]) {
      expectAbiError(() => ABI_KINDS.req.encode({ id: 1, operation: 0x99, op: bad }), ['range']);
      expectAbiError(() => ABI_KINDS.evt.encode({ id: 1, type: 7, op: bad }), ['range']);
    }
    // a known operation has no raw union
    expectAbiError(() => ABI_KINDS.req.encode({ id: 1, operation: 0x15, op }), ['malformed']);
    expectAbiError(() => ABI_KINDS.evt.encode({ id: 1, type: 0, op }), ['malformed']);
  });

  it('non-objects and missing header keys are rejected with AbiError', () => {
    const notObjects: unknown[] = [null, undefined, 1, 'req', true, [], [{ id: 1 }]];
    for (const kind of ABI_KIND_NAMES) {
      for (const v of notObjects) expectAbiError(() => ABI_KINDS[kind].encode(v), ['malformed']);
    }
    expectAbiError(() => ABI_KINDS.req.encode({ operation: 0x15 }), ['malformed']);
    expectAbiError(() => ABI_KINDS.req.encode({ id: 1 }), ['malformed']);
    expectAbiError(() => ABI_KINDS.resp.encode({ id: 1, operation: 0x15 }), ['malformed']);
    expectAbiError(() => ABI_KINDS.evt.encode({ id: 1 }), ['malformed']);
  });

  it('arbitrary JSON documents: encode returns bytes or throws AbiError, never anything else', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ABI_KIND_NAMES),
        fc.oneof(
          fc.jsonValue(),
          fc.dictionary(
            fc.constantFrom(
              'id',
              'operation',
              'type',
              'status',
              'op',
              'fb_cookie',
              'payload',
              'len',
              'gref',
              'gref_dir_next_page',
              'in_cons',
              'flags',
            ),
            fc.jsonValue({ maxDepth: 2 }),
          ),
        ),
        (kind, json) => {
          expectOnlyAbiErrors(() => ABI_KINDS[kind].encode(json));
        },
      ),
      { numRuns: 300 },
    );
  });
});

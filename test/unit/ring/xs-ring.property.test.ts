/**
 * Property tests: XsRingPage, the two 1024-byte byte rings of struct xenstore_domain_interface.
 *
 * Bad inputs tried: random writes and reads of chunks of 0..1500 bytes (more than the ring
 * holds) on both streams, interleaved, starting at arbitrary u32 indices (including just below
 * 2^32, so indices wrap and data wraps around the end of the ring); corrupted indices where
 * prod - cons is 1025 .. 0xffffffff (consumer ahead of producer, or producer too far ahead);
 * pages at misaligned or out-of-range offsets. The page sits in a larger buffer whose bytes
 * around it are canaries.
 *
 * Properties: the byte stream read equals the byte stream written, per stream, exactly;
 * write returns min(len, 1024 - outstanding), read min(len, outstanding); readable + writable =
 * 1024 and outstanding never exceeds 1024; an operation changes only its own stream's data
 * bytes and its own index; corrupted indices give an error result and touch no memory
 * (neither the page nor the read destination).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AbiError } from '../../../src/abi/bytes.js';
import { idxSub } from '../../../src/ring/shared-ring.js';
import { XsRingPage, type XsStream } from '../../../src/ring/xs-ring.js';

const RING = 1024;
const PAGE_OFF = 64;
const IFACE = 2076;
const CANARY = 0xee;
const IDX = { req_cons: 2048, req_prod: 2052, rsp_cons: 2056, rsp_prod: 2060 } as const;

const startArb = fc.oneof(
  fc.constantFrom(0, 1, 1023, 1024, 0x7fff_ffff, 0xffff_ffff, 0xffff_fc00, 0xffff_fe00, 0xffff_ff00 + 17),
  fc.integer({ min: 0xffff_f000, max: 0xffff_ffff }),
  fc.integer({ min: 0, max: 0xffff_ffff }),
);

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(what);
}

function setup(reqStart: number, rspStart: number) {
  const backing = new Uint8Array(PAGE_OFF + 4096 + 64).fill(CANARY);
  backing.fill(0, PAGE_OFF, PAGE_OFF + IFACE);
  const ring = new XsRingPage(backing, PAGE_OFF);
  ring.set('req_cons', reqStart);
  ring.set('req_prod', reqStart);
  ring.set('rsp_cons', rspStart);
  ring.set('rsp_prod', rspStart);
  ring.set('server_features', 3);
  ring.set('connection', 0);
  ring.set('error', 0);
  return { backing, ring };
}

/** Byte ranges (absolute, in `backing`) an operation on `s` may change. */
function allowed(s: XsStream, op: 'write' | 'read'): [number, number][] {
  const data: [number, number] =
    s === 'req' ? [PAGE_OFF, PAGE_OFF + RING] : [PAGE_OFF + RING, PAGE_OFF + 2 * RING];
  const idx = PAGE_OFF + IDX[`${s}_${op === 'write' ? 'prod' : 'cons'}`];
  return op === 'write' ? [data, [idx, idx + 4]] : [[idx, idx + 4]];
}

function changedOnlyIn(before: Uint8Array, after: Uint8Array, ranges: [number, number][]): boolean {
  for (let i = 0; i < before.length; i++) {
    if (before[i] !== after[i] && !ranges.some(([a, b]) => i >= a && i < b)) return false;
  }
  return true;
}

type Op = { t: 'write'; s: XsStream; data: Uint8Array } | { t: 'read'; s: XsStream; len: number };
const streamArb = fc.constantFrom<XsStream>('req', 'rsp');
const lenArb = fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 1500 }));
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    t: fc.constant('write' as const),
    s: streamArb,
    data: lenArb.chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
  }),
  fc.record({ t: fc.constant('read' as const), s: streamArb, len: lenArb }),
);

describe('XsRingPage', () => {
  it('preserves both byte streams exactly across wrap-around at arbitrary u32 starts', () => {
    fc.assert(
      fc.property(
        startArb,
        startArb,
        fc.array(opArb, { minLength: 1, maxLength: 50 }),
        (reqStart, rspStart, ops) => {
          const { backing, ring } = setup(reqStart, rspStart);
          const start = { req: reqStart, rsp: rspStart };
          // model: bytes written but not yet read, and totals
          const queue: Record<XsStream, number[]> = { req: [], rsp: [] };
          const written = { req: 0, rsp: 0 };
          const read = { req: 0, rsp: 0 };

          for (const op of ops) {
            const before = backing.slice();
            const q = queue[op.s];
            if (op.t === 'write') {
              const r = ring.write(op.s, op.data);
              const want = Math.min(op.data.length, RING - q.length);
              check(r.ok && r.value === want, `write returned ${JSON.stringify(r)} instead of ${want}`);
              for (let i = 0; i < want; i++) q.push(op.data[i]!);
              written[op.s] += want;
              check(
                changedOnlyIn(before, backing, allowed(op.s, 'write')),
                'write touched bytes outside its stream',
              );
            } else {
              const dst = new Uint8Array(op.len).fill(0x5a);
              const r = ring.read(op.s, dst);
              const want = Math.min(op.len, q.length);
              check(r.ok && r.value === want, `read returned ${JSON.stringify(r)} instead of ${want}`);
              const expected = q.splice(0, want);
              for (let i = 0; i < want; i++)
                check(dst[i] === expected[i], `byte ${read[op.s] + i} of ${op.s} differs`);
              for (let i = want; i < op.len; i++)
                check(dst[i] === 0x5a, 'read wrote past the bytes it returned');
              read[op.s] += want;
              check(
                changedOnlyIn(before, backing, allowed(op.s, 'read')),
                'read touched bytes other than its index',
              );
            }
            for (const s of ['req', 'rsp'] as const) {
              const prod = ring.get(`${s}_prod`);
              const cons = ring.get(`${s}_cons`);
              check(
                prod === (start[s] + written[s]) >>> 0 && cons === (start[s] + read[s]) >>> 0,
                `${s} indices`,
              );
              check(idxSub(prod, cons) <= RING, `${s}: more than 1024 bytes outstanding`);
              const rd = ring.readable(s);
              const wr = ring.writable(s);
              check(
                rd.ok && wr.ok && rd.value === queue[s].length && rd.value + wr.value === RING,
                `${s} readable/writable`,
              );
            }
          }
          expect(ring.get('server_features')).toBe(3);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('corrupted indices (prod - cons > 1024) give an error and touch no memory', () => {
    fc.assert(
      fc.property(
        streamArb,
        startArb,
        fc.oneof(
          fc.constantFrom(1025, 2048, 0x8000_0000, 0xffff_ffff),
          fc.integer({ min: RING + 1, max: 0xffff_ffff }),
        ),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        (s, cons, dist, data) => {
          const { backing, ring } = setup(0, 0);
          ring.set(`${s}_cons`, cons);
          ring.set(`${s}_prod`, cons + dist);
          const before = backing.slice();
          const dst = new Uint8Array(64).fill(0x5a);
          for (const r of [ring.write(s, data), ring.read(s, dst), ring.readable(s), ring.writable(s)]) {
            expect(r.ok).toBe(false);
            if (!r.ok) {
              expect(r.error).toBeInstanceOf(AbiError);
              expect(r.error.code).toBe('malformed');
            }
          }
          expect(Buffer.compare(backing, before)).toBe(0);
          expect(dst.every((b) => b === 0x5a)).toBe(true);
          // the other stream is unaffected
          const other: XsStream = s === 'req' ? 'rsp' : 'req';
          expect(ring.write(other, data)).toEqual({ ok: true, value: data.length });
        },
      ),
      { numRuns: 200 },
    );
  });

  it('exactly 1024 outstanding is full, not corrupt', () => {
    fc.assert(
      fc.property(streamArb, startArb, (s, cons) => {
        const { ring } = setup(0, 0);
        ring.set(`${s}_cons`, cons);
        ring.set(`${s}_prod`, cons + RING);
        expect(ring.readable(s)).toEqual({ ok: true, value: RING });
        expect(ring.writable(s)).toEqual({ ok: true, value: 0 });
        expect(ring.write(s, new Uint8Array(5))).toEqual({ ok: true, value: 0 });
        expect(ring.get(`${s}_prod`)).toBe((cons + RING) >>> 0);
        const dst = new Uint8Array(RING + 10);
        expect(ring.read(s, dst)).toEqual({ ok: true, value: RING });
        expect(ring.get(`${s}_cons`)).toBe((cons + RING) >>> 0);
      }),
      { numRuns: 100 },
    );
  });

  it('rejects pages that do not fit or are misaligned', () => {
    const buf = new Uint8Array(4096);
    const cases: [Uint8Array, number, string][] = [
      [buf, 4096 - IFACE + 1, 'short'],
      [buf, -4, 'short'],
      [buf, 0.5, 'short'],
      [buf, 2, 'range'],
      [buf.subarray(1), 0, 'range'],
      [new Uint8Array(IFACE - 1), 0, 'short'],
    ];
    for (const [view, off, code] of cases) {
      let thrown: unknown;
      try {
        new XsRingPage(view, off);
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(AbiError);
      expect((thrown as AbiError).code).toBe(code);
    }
    expect(() => new XsRingPage(new Uint8Array(IFACE), 0)).not.toThrow();
  });
});

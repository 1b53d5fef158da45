/**
 * Property tests: XsStreamParser reassembling xenstore messages from a byte stream.
 *
 * Bad inputs tried: messages split at every kind of chunk boundary (1-byte chunks, all in one
 * chunk, random cuts, empty chunks, cuts inside headers and payloads), chunks that are
 * subarrays at non-zero offsets of a larger buffer that is scribbled over after each push,
 * headers announcing len > 4096 (4097 .. 0xffffffff) after valid messages and followed by more
 * bytes, pushes after the error, and parsers built with a small custom maxPayload.
 *
 * Properties: the messages come out exactly and in order (and agree with decodeXsMessage);
 * payloads are copies; `pending` never exceeds 16 + maxPayload and is 0 between messages; a
 * too-large header gives AbiError 'too-large' and every later push returns that error.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AbiError } from '../../../src/abi/bytes.js';
import {
  decodeXsMessage,
  encodeXsMessage,
  type XsMessage,
  XsStreamParser,
} from '../../../src/abi/xs-wire.js';

const MAX = 4096;
const u32 = fc.oneof(
  fc.constantFrom(0, 1, 0x7fff_ffff, 0xffff_ffff),
  fc.integer({ min: 0, max: 0xffff_ffff }),
);

function messageArb(maxPayload = MAX): fc.Arbitrary<XsMessage> {
  const payload =
    maxPayload >= 4000
      ? fc.oneof(
          { weight: 10, arbitrary: fc.uint8Array({ maxLength: 48 }) },
          { weight: 1, arbitrary: fc.uint8Array({ minLength: maxPayload - 8, maxLength: maxPayload }) },
          { weight: 1, arbitrary: fc.uint8Array({ minLength: maxPayload, maxLength: maxPayload }) },
        )
      : fc.uint8Array({ maxLength: maxPayload });
  return fc.record({ type: u32, req_id: u32, tx_id: u32, payload });
}

type ChunkPlan =
  | { kind: 'one' }
  | { kind: 'bytes' }
  | { kind: 'cuts'; cuts: number[] }
  | { kind: 'sizes'; sizes: number[] };

const chunkPlanArb: fc.Arbitrary<ChunkPlan> = fc.oneof(
  fc.constant({ kind: 'one' as const }),
  fc.constant({ kind: 'bytes' as const }),
  fc.array(fc.nat(), { maxLength: 40 }).map((cuts) => ({ kind: 'cuts' as const, cuts })),
  fc
    .array(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 10 })
    .filter((sizes) => sizes.some((n) => n > 0))
    .map((sizes) => ({ kind: 'sizes' as const, sizes })),
);

/** Chunk boundaries [start, end) over `len` bytes; may include empty chunks. */
function chunkBounds(len: number, plan: ChunkPlan): [number, number][] {
  const out: [number, number][] = [];
  if (plan.kind === 'one') {
    out.push([0, len]);
  } else if (plan.kind === 'bytes') {
    for (let i = 0; i < len; i++) out.push([i, i + 1]);
  } else if (plan.kind === 'cuts') {
    const cuts = [...new Set(plan.cuts.map((c) => c % (len + 1)))].sort((a, b) => a - b);
    let prev = 0;
    for (const c of [...cuts, len]) {
      out.push([prev, c]);
      prev = c;
    }
  } else {
    let pos = 0;
    for (let i = 0; pos < len; i++) {
      const n = plan.sizes[i % plan.sizes.length]!;
      out.push([pos, Math.min(len, pos + n)]);
      pos += n;
    }
  }
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function sameMessage(a: XsMessage, b: XsMessage): boolean {
  return (
    a.type === b.type &&
    a.req_id === b.req_id &&
    a.tx_id === b.tx_id &&
    Buffer.compare(a.payload, b.payload) === 0
  );
}

/** A cheap assertion for hot loops (one vitest expect per pushed byte is too slow). */
function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(what);
}

/** Feeds `stream` through chunks that are subarrays of a larger buffer, scribbled over after each push. */
function feed(
  parser: XsStreamParser,
  stream: Uint8Array,
  plan: ChunkPlan,
  pre: number,
  onPush: (r: ReturnType<XsStreamParser['push']>, end: number) => void,
): void {
  const backing = new Uint8Array(pre + stream.length + 8).fill(0xa5);
  backing.set(stream, pre);
  for (const [s, e] of chunkBounds(stream.length, plan)) {
    const r = parser.push(backing.subarray(pre + s, pre + e));
    // The parser must have copied what it needs: destroy the chunk.
    backing.fill(0x5a, pre + s, pre + e);
    check(parser.pending <= 16 + parser.maxPayload, `pending ${parser.pending} > 16 + ${parser.maxPayload}`);
    onPush(r, e);
  }
}

describe('XsStreamParser', () => {
  it('yields exactly the messages, in order, whatever the chunk boundaries', () => {
    fc.assert(
      fc.property(
        fc.array(messageArb(), { maxLength: 6 }),
        chunkPlanArb,
        fc.integer({ min: 0, max: 9 }),
        (msgs, plan, pre) => {
          const encoded = msgs.map((m) => encodeXsMessage(m));
          const stream = concat(encoded);
          const parser = new XsStreamParser();
          const got: XsMessage[] = [];
          // end offset of each message in the stream
          const ends: number[] = [];
          encoded.reduce((o, e) => {
            ends.push(o + e.length);
            return o + e.length;
          }, 0);
          let done = 0; // messages whose last byte has been pushed
          feed(parser, stream, plan, pre, (r, end) => {
            check(r.error === undefined, `push failed: ${r.error?.message}`);
            got.push(...r.messages);
            while (done < ends.length && ends[done]! <= end) done++;
            // every message whose last byte has been pushed has come out; no more
            check(got.length === done, `${got.length} messages out after byte ${end}, expected ${done}`);
            // pending = bytes since the last complete message
            const lastEnd = done > 0 ? ends[done - 1]! : 0;
            check(
              parser.pending === end - lastEnd,
              `pending ${parser.pending} after byte ${end}, expected ${end - lastEnd}`,
            );
          });
          expect(got.length).toBe(msgs.length);
          for (const [i, m] of got.entries()) expect(sameMessage(m, msgs[i]!)).toBe(true);
          expect(parser.pending).toBe(0);
          expect(parser.failed).toBeUndefined();

          // decodeXsMessage walking the same stream agrees
          let pos = 0;
          for (const m of msgs) {
            const d = decodeXsMessage(stream.subarray(pos));
            expect(d.ok).toBe(true);
            if (!d.ok) return;
            expect(sameMessage(d.value.message, m)).toBe(true);
            pos += d.value.size;
          }
          expect(pos).toBe(stream.length);
        },
      ),
      { numRuns: 120 },
    );
  });

  it('delivered payloads are copies that later pushes do not change', () => {
    const parser = new XsStreamParser();
    const a = encodeXsMessage({ type: 2, req_id: 1, tx_id: 0, payload: new Uint8Array([1, 2, 3]) });
    const b = encodeXsMessage({ type: 2, req_id: 2, tx_id: 0, payload: new Uint8Array([9, 9, 9]) });
    const r1 = parser.push(a);
    expect(r1.error).toBeUndefined();
    a.fill(0);
    parser.push(b);
    expect(Array.from(r1.messages[0]!.payload)).toEqual([1, 2, 3]);
  });

  it('empty pushes are harmless', () => {
    const parser = new XsStreamParser();
    expect(parser.push(new Uint8Array(0))).toEqual({ messages: [] });
    const m = encodeXsMessage({ type: 1, req_id: 7, tx_id: 0, payload: new Uint8Array(0) });
    expect(parser.push(m.subarray(0, 5))).toEqual({ messages: [] });
    expect(parser.push(new Uint8Array(0))).toEqual({ messages: [] });
    const r = parser.push(m.subarray(5));
    expect(r.messages.length).toBe(1);
    expect(parser.pending).toBe(0);
  });

  it('a header announcing more than 4096 bytes is a sticky too-large error; memory stays bounded', () => {
    fc.assert(
      fc.property(
        fc.array(messageArb(), { maxLength: 3 }),
        fc.oneof(
          fc.constantFrom(MAX + 1, MAX + 2, 0x8000_0000, 0xffff_ffff),
          fc.integer({ min: MAX + 1, max: 0xffff_ffff }),
        ),
        u32,
        fc.uint8Array({ maxLength: 5000 }),
        chunkPlanArb,
        fc.integer({ min: 0, max: 9 }),
        (before, badLen, badType, trailing, plan, pre) => {
          const bad = new Uint8Array(16);
          const v = new DataView(bad.buffer);
          v.setUint32(0, badType, true);
          v.setUint32(12, badLen, true);
          const encoded = before.map((m) => encodeXsMessage(m));
          const stream = concat([...encoded, bad, trailing]);
          const badEnd = stream.length - trailing.length; // the 16th header byte is at badEnd - 1
          const ends: number[] = [];
          encoded.reduce((o, e) => {
            ends.push(o + e.length);
            return o + e.length;
          }, 0);

          const parser = new XsStreamParser();
          const got: XsMessage[] = [];
          let firstError: AbiError | undefined;
          feed(parser, stream, plan, pre, (r, end) => {
            if (end < badEnd) {
              check(r.error === undefined, 'push before the bad header failed');
              got.push(...r.messages);
            } else if (firstError === undefined) {
              // the push that completes the bad header still delivers the messages before it
              got.push(...r.messages);
              expect(r.error).toBeInstanceOf(AbiError);
              expect(r.error!.code).toBe('too-large');
              firstError = r.error;
              // every valid message before the bad header has been delivered
              expect(got.length).toBe(ends.length);
            } else {
              check(
                r.error === firstError && r.messages.length === 0,
                'a push after the error did not return the same error',
              );
            }
          });
          expect(firstError).toBeDefined();
          expect(parser.failed).toBe(firstError);
          // delivered messages are a prefix of the valid ones
          for (const [i, m] of got.entries()) expect(sameMessage(m, before[i]!)).toBe(true);
          // later pushes, even of valid messages or nothing, keep failing
          for (const later of [
            new Uint8Array(0),
            encodeXsMessage({ type: 1, req_id: 0, tx_id: 0, payload: new Uint8Array(3) }),
          ]) {
            const r = parser.push(later);
            expect(r.messages).toEqual([]);
            expect(r.error?.code).toBe('too-large');
          }
          expect(parser.pending).toBeLessThanOrEqual(16 + MAX);
        },
      ),
      { numRuns: 120 },
    );
  });

  it('exactly 4096 is accepted, 4097 refused', () => {
    const ok = new XsStreamParser();
    const r = ok.push(
      encodeXsMessage({ type: 2, req_id: 0, tx_id: 0, payload: new Uint8Array(MAX).fill(7) }),
    );
    expect(r.messages[0]!.payload.length).toBe(MAX);
    const bad = new XsStreamParser();
    const h = new Uint8Array(16);
    new DataView(h.buffer).setUint32(12, MAX + 1, true);
    const e = bad.push(h);
    expect(e.error?.code).toBe('too-large');
  });

  it('a custom maxPayload bounds messages and memory the same way', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 64 }),
        fc.array(fc.integer({ min: 0, max: 80 }), { minLength: 1, maxLength: 8 }),
        chunkPlanArb,
        (maxPayload, lens, plan) => {
          const parser = new XsStreamParser(maxPayload);
          const firstBad = lens.findIndex((l) => l > maxPayload);
          const msgs = lens.map((l, i) => ({
            type: i,
            req_id: i,
            tx_id: 0,
            payload: new Uint8Array(l).fill(i),
          }));
          const stream = concat(msgs.map((m) => encodeXsMessage(m, 100)));
          const got: XsMessage[] = [];
          let err: AbiError | undefined;
          feed(parser, stream, plan, 1, (r) => {
            check(parser.pending <= 16 + maxPayload, `pending ${parser.pending}`);
            got.push(...r.messages);
            err ??= r.error;
          });
          if (firstBad < 0) {
            expect(err).toBeUndefined();
            expect(got.length).toBe(msgs.length);
          } else {
            expect(err?.code).toBe('too-large');
            expect(got.length).toBe(firstBad);
          }
          for (const [i, m] of got.entries()) expect(sameMessage(m, msgs[i]!)).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('rejects a maxPayload that is not a u32', () => {
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 32]) {
      expect(() => new XsStreamParser(bad)).toThrow(AbiError);
    }
  });
});

/**
 * Property tests: the displif event page (EventPage / EventProducer / EventConsumer).
 *
 * Bad inputs tried: random interleavings of put and consume (with max 0..70) starting at
 * arbitrary u32 indices, including 0, 0xffffffc0, 0xffffffff and others just below 2^32, so
 * in_prod/in_cons wrap during the run; a backend publishing a bogus in_prod (far ahead, behind,
 * equal) to the consumer; a frontend publishing a bogus in_cons (ahead of in_prod, far behind)
 * to the producer; pages at misaligned or out-of-range offsets. The page sits in a larger
 * buffer whose bytes around it are canaries.
 *
 * Properties: events come out in order and intact, across the 2^32 wrap too; put returns -1
 * (and writes nothing) exactly when 63 events are pending or when slot in_prod % 63 still holds
 * an unconsumed event (across the wrap 2^32 = 4 mod 63, so indices fewer than 63 apart can share
 * a slot; the producer waits rather than overwrite), otherwise the slot index in_prod % 63 at
 * byte offset 64 + 64 * slot; consume returns min(available, max, 63); a bogus in_prod makes
 * the consumer consume at most 63 and read only event slots; a bogus in_cons makes the producer
 * report full rather than write, and never outside the page.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AbiError } from '../../../src/abi/bytes.js';
import { EventConsumer, EventPage, EventProducer } from '../../../src/ring/event-page.js';
import { idxSub } from '../../../src/ring/shared-ring.js';

const LEN = 63;
const PAGE_OFF = 256;
const CANARY = 0xee;

const startArb = fc.oneof(
  fc.constantFrom(0, 1, 62, 63, 0x7fff_ffff, 0xffff_ffc0, 0xffff_ffff, 0xffff_fffc, 0xffff_ff80),
  fc.integer({ min: 0xffff_ff00, max: 0xffff_ffff }),
  fc.integer({ min: 0, max: 0xffff_ffff }),
);

/** The model of "full": 63 pending, or the slot of in_prod holds one of [in_cons, in_prod). */
function modelFull(prod: number, cons: number): boolean {
  const pending = idxSub(prod, cons);
  if (pending >= LEN) return true;
  for (let k = 0; k < pending; k++) if (((cons + k) >>> 0) % LEN === prod % LEN) return true;
  return false;
}

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(what);
}

function setup(start: number) {
  const backing = new Uint8Array(PAGE_OFF + 4096 + 256).fill(CANARY);
  backing.fill(0, PAGE_OFF, PAGE_OFF + 4096);
  const ep = new EventPage(backing, PAGE_OFF);
  ep.inCons = start;
  ep.inProd = start;
  return { backing, ep, prod: EventProducer.attach(ep, start), cons: EventConsumer.attach(ep, start) };
}

function canariesIntact(backing: Uint8Array): boolean {
  for (let i = 0; i < PAGE_OFF; i++) if (backing[i] !== CANARY) return false;
  for (let i = PAGE_OFF + 4096; i < backing.length; i++) if (backing[i] !== CANARY) return false;
  return true;
}

/** Event number `seq`: its sequence number, then a pattern. */
function event(seq: number, seed: number): Uint8Array {
  const b = new Uint8Array(64);
  new DataView(b.buffer).setUint32(0, seq, true);
  for (let i = 4; i < 64; i++) b[i] = (seed + seq * 7 + i) & 0xff;
  return b;
}

type Op = { t: 'put'; n: number } | { t: 'consume'; max: number };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.integer({ min: 1, max: 70 }).map((n) => ({ t: 'put' as const, n })),
  fc.integer({ min: 0, max: 70 }).map((max) => ({ t: 'consume' as const, max })),
);

describe('event page: producer and consumer', () => {
  it('random interleavings at arbitrary u32 starts: order, slot index, full at 63 pending or an aliased slot', () => {
    fc.assert(
      fc.property(
        startArb,
        fc.array(opArb, { minLength: 1, maxLength: 60 }),
        fc.nat(255),
        (start, ops, seed) => {
          const { backing, ep, prod, cons } = setup(start);
          const at = (n: number) => (start + n) >>> 0;
          let produced = 0;
          let consumed = 0;
          /** What the model says each slot holds: the sequence number last written there. */
          const slotHolds = new Map<number, number>();

          for (const op of ops) {
            if (op.t === 'put') {
              for (let i = 0; i < op.n; i++) {
                const pending = produced - consumed;
                const full = modelFull(at(produced), at(consumed));
                check(
                  prod.pending === pending && prod.full === full,
                  `pending ${prod.pending} vs ${pending}, full ${full}`,
                );
                let wrote = -1;
                const slot = prod.put((page, offset) => {
                  check(page === ep.page, 'write gets the event page');
                  wrote = offset;
                  page.set(event(produced, seed), offset);
                });
                if (full) {
                  check(slot === -1 && wrote === -1, 'put on a full page must return -1 and write nothing');
                  break;
                }
                check(slot === at(produced) % LEN, `slot ${slot} for in_prod ${at(produced)}`);
                check(wrote === 64 + 64 * slot, `offset ${wrote} for slot ${slot}`);
                slotHolds.set(slot, produced);
                produced++;
                check(ep.inProd === at(produced) && prod.inProd === at(produced), 'in_prod published');
              }
            } else {
              const available = produced - consumed;
              check(cons.available === available, 'available');
              const want = Math.min(available, op.max, LEN);
              const seen: Uint8Array[] = [];
              const n = cons.consume((e) => {
                check(e.length === 64, 'events are 64 bytes');
                seen.push(e.slice());
              }, op.max);
              check(n === want && seen.length === want, `consumed ${n}, expected ${want}`);
              for (let i = 0; i < n; i++) {
                const idx = at(consumed + i);
                const holder = slotHolds.get(idx % LEN);
                check(holder === consumed + i, `event ${consumed + i} was overwritten by ${holder}`);
                check(
                  Buffer.compare(seen[i]!, event(holder!, seed)) === 0,
                  `event ${consumed + i} has the wrong bytes`,
                );
              }
              consumed += n;
              check(ep.inCons === at(consumed) && cons.inCons === at(consumed), 'in_cons published');
            }
          }
          check(canariesIntact(backing), 'bytes outside the event page changed');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('events come out intact and in order while the indices stay below 2^32 (no wrap in the run)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff_ffff - 70 * 60 }),
        fc.array(opArb, { minLength: 1, maxLength: 60 }),
        fc.nat(255),
        (start, ops, seed) => {
          const { ep, prod, cons } = setup(start);
          let produced = 0;
          let consumed = 0;
          for (const op of ops) {
            if (op.t === 'put') {
              for (let i = 0; i < op.n; i++) {
                if (prod.put((page, o) => page.set(event(produced, seed), o)) < 0) break;
                produced++;
              }
            } else {
              cons.consume((e) => {
                check(Buffer.compare(e, event(consumed, seed)) === 0, `event ${consumed} lost or corrupted`);
                consumed++;
              }, op.max);
            }
          }
          check(ep.inCons === (start + consumed) >>> 0, 'in_cons');
        },
      ),
      { numRuns: 200 },
    );
  });

  it('put never overwrites an unconsumed event across the 2^32 wrap (in_prod % 63 aliases there)', () => {
    // 2^32 = 4 (mod 63): index 0xfffffffc and index 0 both map to slot 0 although they are only
    // 4 apart. With 4 events pending before the wrap, the 5th put must wait for the consumer.
    const { prod, cons } = setup(0xffff_fffc);
    for (let seq = 0; seq < 4; seq++) {
      expect(prod.put((page, o) => page.set(event(seq, 0), o))).toBe(seq);
    }
    expect(prod.pending).toBe(4);
    expect(prod.full).toBe(true);
    expect(prod.put((page, o) => page.set(event(4, 0), o))).toBe(-1);
    const got: number[] = [];
    const seqOf = (e: Uint8Array) => new DataView(e.buffer, e.byteOffset).getUint32(0, true);
    cons.consume((e) => got.push(seqOf(e)), 1);
    // slot 0 is free again: the event for index 0 goes there
    expect(prod.put((page, o) => page.set(event(4, 0), o))).toBe(0);
    cons.consume((e) => got.push(seqOf(e)));
    expect(got).toEqual([0, 1, 2, 3, 4]);
  });

  it('bind starts at the page in_cons and publishes in_prod = in_cons', () => {
    fc.assert(
      fc.property(startArb, fc.integer({ min: 0, max: 0xffff_ffff }), (start, junk) => {
        const { ep } = setup(0);
        ep.inCons = start;
        ep.inProd = junk;
        const p = EventProducer.bind(ep);
        expect(p.inProd).toBe(start);
        expect(ep.inProd).toBe(start);
        expect(EventConsumer.bind(ep).inCons).toBe(start);
        expect(p.pending).toBe(0);
      }),
      { numRuns: 100 },
    );
  });
});

describe('event page: misbehaving peers', () => {
  it('a bogus in_prod makes the consumer consume at most 63, reading only event slots', () => {
    fc.assert(
      fc.property(
        startArb,
        fc.oneof(fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: -5, max: 130 })),
        fc.boolean(),
        fc.integer({ min: 0, max: 200 }),
        (start, bogus, relative, max) => {
          const { backing, ep, cons } = setup(start);
          // every slot filled with its own marker (slot + 1), never the canary
          for (let s = 0; s < LEN; s++) ep.page.fill(s + 1, 64 + 64 * s, 64 + 64 * (s + 1));
          const prodIdx = (relative ? start + bogus : bogus) >>> 0;
          ep.inProd = prodIdx;
          const before = backing.slice();
          let idx = start;
          const n = cons.consume((e) => {
            const slot = idx % LEN;
            check(
              e.every((b) => b === slot + 1),
              `event at index ${idx} not read from slot ${slot}`,
            );
            idx = (idx + 1) >>> 0;
          }, max);
          expect(n).toBe(Math.min(idxSub(prodIdx, start), max, LEN));
          expect(n).toBeLessThanOrEqual(LEN);
          expect(ep.inCons).toBe((start + n) >>> 0);
          // the consumer writes only in_cons (bytes 0..3 of the page)
          const after = backing.slice();
          after.set(before.subarray(PAGE_OFF, PAGE_OFF + 4), PAGE_OFF);
          expect(Buffer.compare(after, before)).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a bogus in_cons makes the producer report full instead of writing; it never writes outside the page', () => {
    fc.assert(
      fc.property(
        startArb,
        fc.oneof(fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: -70, max: 5 })),
        fc.boolean(),
        fc.integer({ min: 1, max: 70 }),
        (start, bogus, relative, puts) => {
          const { backing, ep, prod } = setup(start);
          const consIdx = (relative ? start + bogus : bogus) >>> 0;
          ep.inCons = consIdx;
          let p = start;
          for (let i = 0; i < puts; i++) {
            const full = modelFull(p, consIdx);
            const before = backing.slice();
            let called = false;
            const slot = prod.put((page, o) => {
              called = true;
              page.fill(0xab, o, o + 64);
            });
            if (full) {
              // e.g. in_cons ahead of in_prod: (prod - cons) wraps to a huge count -> full
              expect(slot).toBe(-1);
              expect(called).toBe(false);
              expect(Buffer.compare(backing, before)).toBe(0);
              break;
            }
            expect(slot).toBe(p % LEN);
            // only the slot and in_prod changed
            const after = backing.slice();
            after.set(before.subarray(PAGE_OFF + 4, PAGE_OFF + 8), PAGE_OFF + 4);
            after.set(
              before.subarray(PAGE_OFF + 64 + 64 * slot, PAGE_OFF + 128 + 64 * slot),
              PAGE_OFF + 64 + 64 * slot,
            );
            expect(Buffer.compare(after, before)).toBe(0);
            p = (p + 1) >>> 0;
            expect(ep.inProd).toBe(p);
          }
          expect(canariesIntact(backing)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects pages that do not fit or are misaligned', () => {
    const buf = new Uint8Array(8192);
    const cases: [Uint8Array, number, string][] = [
      [buf, 4097, 'short'],
      [buf, -4, 'short'],
      [buf, 0.5, 'short'],
      [buf, 2, 'range'],
      [buf.subarray(3), 0, 'range'],
      [new Uint8Array(4095), 0, 'short'],
    ];
    for (const [view, off, code] of cases) {
      let thrown: unknown;
      try {
        new EventPage(view, off);
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(AbiError);
      expect((thrown as AbiError).code).toBe(code);
    }
  });
});

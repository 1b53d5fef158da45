/**
 * Property tests: FrontRing/BackRing over a SharedRing (4096-byte page, 64-byte entries, 32
 * slots), model-based, at arbitrary u32 start indices including ones just below 2^32 so the
 * free-running indices wrap during the run.
 *
 * Bad inputs tried: random interleavings of produce / push / push-one / final-check / consume /
 * respond on both sides; a misbehaving frontend writing arbitrary values into sring.req_prod
 * (far ahead, behind, equal, just past the limit) at any time, including while the backend has
 * unanswered requests; a misbehaving backend writing arbitrary sring.rsp_prod; ring pages at
 * misaligned or out-of-range offsets. The page sits in a larger buffer whose bytes around it
 * are canaries.
 *
 * Properties: freeRequests stays in [0, 32] and equals the model; requests and responses arrive
 * in order with intact bytes; notify == ((new - event) >>> 0) < ((new - old) >>> 0) and is true
 * exactly when the consumer had armed its event (its last final check returned 0) and something
 * new is pushed, so a final check followed by a push never loses a wakeup; with a hostile
 * req_prod, unconsumedRequests never exceeds nrEnts - (reqCons - rspProdPvt),
 * requestProdOverflow(prod) == (prod - rspProdPvt) > 32, and takeRequest reads only ring slots.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AbiError } from '../../../src/abi/bytes.js';
import { BackRing, FrontRing, idxSub, SharedRing } from '../../../src/ring/shared-ring.js';

const ENTRY = 64;
const NR = 32;
const PAGE_OFF = 64;
const CANARY = 0xee;

const startArb = fc.oneof(
  fc.constantFrom(
    0,
    1,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0xffff_fffe,
    0xffff_ffe0,
    0xffff_ffc0,
    0xffff_ff00,
  ),
  fc.integer({ min: 0xffff_ff00, max: 0xffff_ffff }),
  fc.integer({ min: 0, max: 0xffff_ffff }),
);

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(what);
}

/** A ring page at offset 64 of a canary-filled buffer, with all four indices at `start`. */
function setup(start: number) {
  const backing = new Uint8Array(PAGE_OFF + 4096 + 64).fill(CANARY);
  // garbage in the page too: slots must be written before they are read
  for (let i = 0; i < 4096; i++) backing[PAGE_OFF + i] = (i * 31 + 7) & 0xff;
  const sring = new SharedRing(backing, PAGE_OFF, ENTRY);
  expect(sring.nrEnts).toBe(NR);
  FrontRing.init(sring);
  sring.reqProd = start;
  sring.rspProd = start;
  sring.reqEvent = start + 1;
  sring.rspEvent = start + 1;
  return { backing, sring, front: FrontRing.attach(sring, start), back: BackRing.attach(sring, start) };
}

function canariesIntact(backing: Uint8Array): boolean {
  for (let i = 0; i < PAGE_OFF; i++) if (backing[i] !== CANARY) return false;
  for (let i = PAGE_OFF + 4096; i < backing.length; i++) if (backing[i] !== CANARY) return false;
  return true;
}

/** Content of request/response number `seq` (a 64-byte entry). */
function entry(kind: 1 | 2, seq: number, seed: number): Uint8Array {
  const b = new Uint8Array(ENTRY);
  const v = new DataView(b.buffer);
  v.setUint32(0, seq, true);
  b[4] = kind;
  for (let i = 5; i < ENTRY; i++) b[i] = (seed + seq * 13 + i * kind) & 0xff;
  return b;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

type Op =
  | { t: 'fproduce'; n: number }
  | { t: 'fpush' }
  | { t: 'fpushOne' }
  | { t: 'ffinal' }
  | { t: 'fconsume'; n: number }
  | { t: 'bconsume'; n: number }
  | { t: 'brespond'; n: number }
  | { t: 'bpush' }
  | { t: 'bpushOne' }
  | { t: 'bfinal' };

const count = fc.integer({ min: 1, max: 40 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  count.map((n) => ({ t: 'fproduce' as const, n })),
  fc.constant({ t: 'fpush' as const }),
  fc.constant({ t: 'fpushOne' as const }),
  fc.constant({ t: 'ffinal' as const }),
  count.map((n) => ({ t: 'fconsume' as const, n })),
  count.map((n) => ({ t: 'bconsume' as const, n })),
  count.map((n) => ({ t: 'brespond' as const, n })),
  fc.constant({ t: 'bpush' as const }),
  fc.constant({ t: 'bpushOne' as const }),
  fc.constant({ t: 'bfinal' as const }),
);

describe('shared ring, well-behaved front and back (model-based)', () => {
  it('keeps every invariant over random op sequences at arbitrary u32 starts', () => {
    fc.assert(
      fc.property(
        startArb,
        fc.array(opArb, { minLength: 1, maxLength: 150 }),
        fc.nat(255),
        (start, ops, seed) => {
          const { backing, sring, front, back } = setup(start);
          const at = (n: number) => (start + n) >>> 0;
          // model: counts since `start`
          let reqProduced = 0;
          let reqPushed = 0;
          let reqConsumed = 0;
          let rspProduced = 0;
          let rspPushed = 0;
          let rspConsumed = 0;
          // SHARED_RING_INIT arms both events (index + 1): the first push notifies.
          let reqArmed = true;
          let rspArmed = true;
          const dst = new Uint8Array(ENTRY);

          const produceRequest = (): boolean => {
            if (front.freeRequests === 0) return false; // a well-behaved front stops when full
            check(front.nextRequestOffset === 64 + ENTRY * (at(reqProduced) & (NR - 1)), 'nextRequestOffset');
            sring.page.set(entry(1, reqProduced, seed), front.nextRequestOffset);
            front.reqProdPvt = front.reqProdPvt + 1;
            reqProduced++;
            return true;
          };
          const produceResponse = (): boolean => {
            if (rspProduced === reqConsumed) return false; // one response per consumed request
            check(
              back.nextResponseOffset === 64 + ENTRY * (at(rspProduced) & (NR - 1)),
              'nextResponseOffset',
            );
            sring.page.set(entry(2, rspProduced, seed), back.nextResponseOffset);
            back.rspProdPvt = back.rspProdPvt + 1;
            rspProduced++;
            return true;
          };
          const pushRequests = (): void => {
            const old = sring.reqProd;
            const next = front.reqProdPvt;
            const event = sring.reqEvent;
            const notify = front.pushRequestsAndCheckNotify();
            check(notify === idxSub(next, event) < idxSub(next, old), 'req notify formula');
            const fresh = reqProduced !== reqPushed;
            // armed + something new => wakeup (never lost); not armed => no spurious wakeup
            check(notify === (reqArmed && fresh), `req notify ${notify}, armed ${reqArmed}, fresh ${fresh}`);
            if (fresh) reqArmed = false;
            reqPushed = reqProduced;
          };
          const pushResponses = (): void => {
            const old = sring.rspProd;
            const next = back.rspProdPvt;
            const event = sring.rspEvent;
            const notify = back.pushResponsesAndCheckNotify();
            check(notify === idxSub(next, event) < idxSub(next, old), 'rsp notify formula');
            const fresh = rspProduced !== rspPushed;
            check(notify === (rspArmed && fresh), `rsp notify ${notify}, armed ${rspArmed}, fresh ${fresh}`);
            if (fresh) rspArmed = false;
            rspPushed = rspProduced;
          };

          for (const op of ops) {
            switch (op.t) {
              case 'fproduce':
                for (let i = 0; i < op.n && produceRequest(); i++);
                break;
              case 'fpush':
                pushRequests();
                break;
              case 'fpushOne': {
                // one request at a time: notify exactly when the back had armed its event
                const armed = reqArmed;
                if (!produceRequest()) break;
                const notify = front.pushRequestsAndCheckNotify();
                check(notify === armed, `one-at-a-time req notify ${notify}, back armed ${armed}`);
                reqArmed = false;
                reqPushed = reqProduced;
                break;
              }
              case 'bpushOne': {
                const armed = rspArmed;
                if (!produceResponse()) break;
                const notify = back.pushResponsesAndCheckNotify();
                check(notify === armed, `one-at-a-time rsp notify ${notify}, front armed ${armed}`);
                rspArmed = false;
                rspPushed = rspProduced;
                break;
              }
              case 'bpush':
                pushResponses();
                break;
              case 'bconsume':
                for (let i = 0; i < op.n && back.unconsumedRequests > 0; i++) {
                  check(
                    !back.requestConsOverflow(back.reqCons),
                    'requestConsOverflow with a well-behaved front',
                  );
                  back.takeRequest(dst);
                  check(
                    same(dst, entry(1, reqConsumed, seed)),
                    `request ${reqConsumed} corrupted or out of order`,
                  );
                  reqConsumed++;
                }
                break;
              case 'brespond':
                for (let i = 0; i < op.n && produceResponse(); i++);
                break;
              case 'fconsume':
                for (let i = 0; i < op.n && front.unconsumedResponses > 0; i++) {
                  front.takeResponse(dst);
                  check(
                    same(dst, entry(2, rspConsumed, seed)),
                    `response ${rspConsumed} corrupted or out of order`,
                  );
                  rspConsumed++;
                }
                break;
              case 'bfinal': {
                const w = back.finalCheckForRequests();
                check(
                  w === Math.min(reqPushed - reqConsumed, NR - (reqConsumed - rspProduced)),
                  'finalCheckForRequests',
                );
                reqArmed = w === 0;
                if (w === 0) check(sring.reqEvent === at(reqConsumed + 1), 'req_event = req_cons + 1');
                break;
              }
              case 'ffinal': {
                const w = front.finalCheckForResponses();
                check(w === rspPushed - rspConsumed, 'finalCheckForResponses');
                rspArmed = w === 0;
                if (w === 0) check(sring.rspEvent === at(rspConsumed + 1), 'rsp_event = rsp_cons + 1');
                break;
              }
            }
            // invariants
            const free = front.freeRequests;
            check(
              free >= 0 && free <= NR && free === NR - (reqProduced - rspConsumed),
              `freeRequests ${free}`,
            );
            check(front.full === (free === 0), 'full');
            check(front.reqProdPvt === at(reqProduced) && sring.reqProd === at(reqPushed), 'request indices');
            check(back.reqCons === at(reqConsumed) && back.rspProdPvt === at(rspProduced), 'back indices');
            check(sring.rspProd === at(rspPushed) && front.rspCons === at(rspConsumed), 'response indices');
            check(
              back.unconsumedRequests === Math.min(reqPushed - reqConsumed, NR - (reqConsumed - rspProduced)),
              'unconsumedRequests',
            );
            check(front.unconsumedResponses === rspPushed - rspConsumed, 'unconsumedResponses');
            check(!back.requestProdOverflow(sring.reqProd), 'requestProdOverflow with a well-behaved front');
            check(
              !front.responseProdOverflow(sring.rspProd),
              'responseProdOverflow with a well-behaved back',
            );
          }
          check(canariesIntact(backing), 'bytes outside the ring page changed');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a final check followed by a push never loses a wakeup (any batch size, any start)', () => {
    fc.assert(
      fc.property(
        startArb,
        fc.integer({ min: 0, max: NR }),
        fc.integer({ min: 1, max: NR }),
        (start, warm, batch) => {
          const { sring, front, back } = setup(start);
          const dst = new Uint8Array(ENTRY);
          // warm-up: `warm` requests produced, consumed and answered
          for (let i = 0; i < warm; i++) {
            front.reqProdPvt = front.reqProdPvt + 1;
            front.pushRequests();
            back.takeRequest(dst);
            back.rspProdPvt = back.rspProdPvt + 1;
            back.pushResponses();
            front.takeResponse(dst);
          }
          expect(back.finalCheckForRequests()).toBe(0);
          expect(front.finalCheckForResponses()).toBe(0);
          const n = Math.min(batch, front.freeRequests);
          front.reqProdPvt = front.reqProdPvt + n;
          expect(front.pushRequestsAndCheckNotify()).toBe(true);
          // a second push with nothing new never notifies
          expect(front.pushRequestsAndCheckNotify()).toBe(false);
          for (let i = 0; i < n; i++) back.takeRequest(dst);
          back.rspProdPvt = back.rspProdPvt + n;
          expect(back.pushResponsesAndCheckNotify()).toBe(true);
          expect(sring.rspProd).toBe((start + warm + n) >>> 0);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('shared ring, misbehaving peers', () => {
  it('a hostile req_prod never makes the backend over-consume, and takeRequest reads only slots', () => {
    fc.assert(
      fc.property(
        startArb,
        fc.integer({ min: 0, max: NR }),
        fc.oneof(
          fc.integer({ min: 0, max: 0xffff_ffff }),
          fc.integer({ min: -3, max: NR + 3 }),
          fc.constantFrom(0xffff_ffff, 0x8000_0000, NR + 1, NR),
        ),
        fc.boolean(),
        (start, outstanding, prodRaw, relative) => {
          const backing = new Uint8Array(PAGE_OFF + 4096 + 64).fill(CANARY);
          const sring = new SharedRing(backing, PAGE_OFF, ENTRY);
          // slot s holds bytes s + 1 throughout; header and unused tail zero
          sring.page.fill(0);
          for (let s = 0; s < NR; s++) sring.page.fill(s + 1, 64 + ENTRY * s, 64 + ENTRY * (s + 1));
          const back = BackRing.attach(sring, start);
          back.reqCons = start + outstanding; // `outstanding` consumed, not yet answered
          const prod = (relative ? start + prodRaw : prodRaw) >>> 0;
          sring.reqProd = prod;

          const cons0 = back.reqCons;
          const room = NR - idxSub(cons0, back.rspProdPvt);
          expect(room).toBe(NR - outstanding);
          const unconsumed = back.unconsumedRequests;
          expect(unconsumed).toBeLessThanOrEqual(room);
          expect(unconsumed).toBe(Math.min(idxSub(prod, cons0), room));
          expect(back.requestProdOverflow(prod)).toBe(idxSub(prod, back.rspProdPvt) > NR);

          const dst = new Uint8Array(ENTRY);
          let taken = 0;
          for (let guard = 0; guard < 100 && back.unconsumedRequests > 0; guard++) {
            expect(back.requestConsOverflow(back.reqCons)).toBe(false);
            const idx = back.reqCons;
            const off = sring.slotOffset(idx);
            expect(off).toBeGreaterThanOrEqual(64);
            expect(off + ENTRY).toBeLessThanOrEqual(64 + NR * ENTRY);
            back.takeRequest(dst);
            expect(dst.every((b) => b === (idx & (NR - 1)) + 1)).toBe(true);
            taken++;
          }
          expect(taken).toBe(unconsumed);
          expect(idxSub(back.reqCons, back.rspProdPvt)).toBeLessThanOrEqual(NR);
          if (taken === room) expect(back.requestConsOverflow(back.reqCons)).toBe(true);
          expect(canariesIntact(backing)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a frontend rewriting req_prod between takes never gets more than 32 requests unanswered', () => {
    type Step =
      | { t: 'prod'; v: number; rel: boolean }
      | { t: 'take'; n: number }
      | { t: 'answer'; n: number };
    const stepArb: fc.Arbitrary<Step> = fc.oneof(
      fc.record({
        t: fc.constant('prod' as const),
        v: fc.integer({ min: 0, max: 0xffff_ffff }),
        rel: fc.boolean(),
      }),
      fc.record({ t: fc.constant('take' as const), n: fc.integer({ min: 1, max: 50 }) }),
      fc.record({ t: fc.constant('answer' as const), n: fc.integer({ min: 1, max: 50 }) }),
    );
    fc.assert(
      fc.property(startArb, fc.array(stepArb, { maxLength: 60 }), (start, steps) => {
        const { backing, sring, back } = setup(start);
        const dst = new Uint8Array(ENTRY);
        for (const s of steps) {
          if (s.t === 'prod') {
            sring.reqProd = s.rel ? back.reqCons + (s.v % 70) - 5 : s.v;
          } else if (s.t === 'take') {
            for (let i = 0; i < s.n && back.unconsumedRequests > 0; i++) back.takeRequest(dst);
          } else {
            const n = Math.min(s.n, idxSub(back.reqCons, back.rspProdPvt));
            back.rspProdPvt = back.rspProdPvt + n;
            back.pushResponses();
          }
          const outstanding = idxSub(back.reqCons, back.rspProdPvt);
          check(outstanding <= NR, `backend has ${outstanding} unanswered requests`);
          check(
            back.unconsumedRequests <= NR - outstanding,
            'unconsumedRequests beyond the free response slots',
          );
          check(
            back.requestProdOverflow(sring.reqProd) === idxSub(sring.reqProd, back.rspProdPvt) > NR,
            'requestProdOverflow',
          );
        }
        check(canariesIntact(backing), 'bytes outside the ring page changed');
      }),
      { numRuns: 200 },
    );
  });

  it('a hostile rsp_prod is detected by responseProdOverflow', () => {
    fc.assert(
      fc.property(startArb, fc.integer({ min: 0, max: 0xffff_ffff }), (start, prod) => {
        const { sring, front } = setup(start);
        sring.rspProd = prod;
        expect(front.unconsumedResponses).toBe(idxSub(prod, start));
        expect(front.responseProdOverflow(prod)).toBe(idxSub(prod, start) > NR);
        expect(front.sring.slotOffset(prod)).toBeLessThan(64 + NR * ENTRY);
      }),
      { numRuns: 200 },
    );
  });

  it('rejects ring pages that do not fit or are misaligned', () => {
    const buf = new Uint8Array(8192);
    const cases: [Uint8Array, number, string][] = [
      [buf, 4097, 'short'],
      [buf, -4, 'short'],
      [buf, 1.5, 'short'],
      [buf, 2, 'range'],
      [buf.subarray(1), 0, 'range'],
      [new Uint8Array(4095), 0, 'short'],
    ];
    for (const [view, off, code] of cases) {
      let thrown: unknown;
      try {
        new SharedRing(view, off, ENTRY);
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(AbiError);
      expect((thrown as AbiError).code).toBe(code);
    }
    expect(new SharedRing(buf, 4096, ENTRY).nrEnts).toBe(NR);
  });
});

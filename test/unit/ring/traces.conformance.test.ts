/**
 * Ring traces recorded by running the real ring.h macros (gen/abi-vectors/gen.c) replayed on the
 * TypeScript rings: after every step the page bytes, both ends' private indices, and every
 * notify / work / overflow result must be identical. Scenarios include indices wrapping past
 * 2^32, a peer publishing impossible producer indices, and the 63-slot event page wrapping
 * (where 2^32 mod 63 = 4 breaks the slot sequence).
 */
import { describe, expect, it } from 'vitest';
import { XENDISPL_OP_PG_FLIP } from '../../../src/abi/displif-constants.js';
import {
  decodeEvt,
  decodeReq,
  decodeResp,
  encodeEvt,
  encodeReq,
  encodeResp,
} from '../../../src/abi/displif-packets.js';
import { EventConsumer, EventPage, EventProducer } from '../../../src/ring/event-page.js';
import { BackRing, FrontRing, SharedRing } from '../../../src/ring/shared-ring.js';
import { applyDiff, loadTraces, type TraceStep } from '../../support/abi-fixtures.js';

const ringTraces = loadTraces('ring-traces');
const evtTraces = loadTraces('evtpage-traces');

function num(v: unknown): number {
  return Number(v);
}

describe('shared ring traces from ring.h', () => {
  it('covers the interesting cases', () => {
    const all = ringTraces.scenarios.flatMap((s) => s.steps);
    const count = (pred: (s: TraceStep) => boolean) => all.filter(pred).length;
    expect(count((s) => s.result.notify === true)).toBeGreaterThan(10);
    expect(count((s) => s.result.notify === false)).toBeGreaterThan(10);
    expect(count((s) => typeof s.result.work === 'number' && s.result.work === 0)).toBeGreaterThan(10);
    expect(count((s) => typeof s.result.work === 'number' && (s.result.work) > 0)).toBeGreaterThan(
      10,
    );
    expect(count((s) => s.result.request_prod_overflow === true)).toBeGreaterThan(0);
    expect(count((s) => s.result.response_prod_overflow === true)).toBeGreaterThan(0);
    expect(count((s) => s.result.cons_overflow === true)).toBeGreaterThan(0);
    expect(ringTraces.ring_size).toBe(32);
  });

  describe.each(ringTraces.scenarios.map((s) => [s.name, s] as const))('%s', (_name, scenario) => {
    it('replays step by step with identical pages, indices and results', () => {
      const backing = new SharedArrayBuffer(4096);
      const page = new Uint8Array(backing);
      const expected = new Uint8Array(4096);
      const sring = new SharedRing(page, 0, 64, 4096);
      let front: FrontRing | undefined;
      let back: BackRing | undefined;
      const scratch = new Uint8Array(64);

      scenario.steps.forEach((step, i) => {
        const where = `${scenario.name} step ${i} ${step.op} ${JSON.stringify(step.args)}`;
        const result: Record<string, unknown> = {};
        switch (step.op) {
          case 'front_init':
            front = FrontRing.init(sring);
            break;
          case 'back_init':
            back = BackRing.init(sring);
            break;
          case 'front_attach':
            front = FrontRing.attach(sring, num(step.args.start));
            break;
          case 'back_attach':
            back = BackRing.attach(sring, num(step.args.start));
            break;
          case 'set_shared': {
            const v = num(step.args.value);
            const field = step.args.field;
            if (field === 'req_prod') sring.reqProd = v;
            else if (field === 'req_event') sring.reqEvent = v;
            else if (field === 'rsp_prod') sring.rspProd = v;
            else if (field === 'rsp_event') sring.rspEvent = v;
            else throw new Error(`${where}: unknown field`);
            break;
          }
          case 'front_put_request':
            encodeReq(
              {
                operation: XENDISPL_OP_PG_FLIP,
                id: num(step.args.id),
                fb_cookie: BigInt(step.args.fb_cookie!),
              },
              sring.page,
              front!.nextRequestOffset,
            );
            front!.reqProdPvt++;
            break;
          case 'front_push':
            front!.pushRequests();
            break;
          case 'front_push_check':
            result.notify = front!.pushRequestsAndCheckNotify();
            break;
          case 'front_take_response': {
            const r = decodeResp(front!.takeResponse(scratch));
            if (!r.ok) throw r.error;
            result.id = r.value.id;
            result.status = r.value.status;
            break;
          }
          case 'front_final_check':
            result.work = front!.finalCheckForResponses();
            break;
          case 'front_query':
            result.free_requests = front!.freeRequests;
            result.full = front!.full;
            result.unconsumed_responses = front!.unconsumedResponses;
            result.response_prod_overflow = front!.responseProdOverflow(sring.rspProd);
            break;
          case 'back_take_request':
            result.cons_overflow = back!.requestConsOverflow(back!.reqCons);
            if (!result.cons_overflow) {
              const r = decodeReq(back!.takeRequest(scratch));
              if (!r.ok) throw r.error;
              result.id = r.value.id;
              result.operation = r.value.operation;
            }
            break;
          case 'back_put_response':
            encodeResp(
              { id: num(step.args.id), operation: XENDISPL_OP_PG_FLIP, status: num(step.args.status) },
              sring.page,
              back!.nextResponseOffset,
            );
            back!.rspProdPvt++;
            break;
          case 'back_push':
            back!.pushResponses();
            break;
          case 'back_push_check':
            result.notify = back!.pushResponsesAndCheckNotify();
            break;
          case 'back_final_check':
            result.work = back!.finalCheckForRequests();
            break;
          case 'back_query':
            result.unconsumed_requests = back!.unconsumedRequests;
            result.request_prod_overflow = back!.requestProdOverflow(sring.reqProd);
            result.request_cons_overflow = back!.requestConsOverflow(back!.reqCons);
            break;
          default:
            throw new Error(`${where}: unknown op`);
        }
        expect(result, where).toEqual(step.result);
        applyDiff(expected, step.page);
        expect(Buffer.from(page).equals(Buffer.from(expected)), `${where}: page bytes`).toBe(true);
        if (front && step.front) {
          expect(
            { req_prod_pvt: front.reqProdPvt, rsp_cons: front.rspCons, nr_ents: front.nrEnts },
            where,
          ).toEqual(step.front);
        }
        if (back && step.back) {
          expect(
            { rsp_prod_pvt: back.rspProdPvt, req_cons: back.reqCons, nr_ents: back.nrEnts },
            where,
          ).toEqual(step.back);
        }
        expect(
          {
            req_prod: sring.reqProd,
            req_event: sring.reqEvent,
            rsp_prod: sring.rspProd,
            rsp_event: sring.rspEvent,
          },
          where,
        ).toEqual(step.shared);
      });
    });
  });
});

describe('event page traces from displif.h', () => {
  it('covers full pages and the 2^32 wrap', () => {
    const all = evtTraces.scenarios.flatMap((s) => s.steps);
    expect(all.filter((s) => s.result.full === true).length).toBeGreaterThan(1);
    // 'full' with fewer than 63 pending: the slot of in_prod aliases an unread event at the wrap.
    const aliased = evtTraces.scenarios.flatMap((s) =>
      s.steps.filter((st, i) => {
        const prev = s.steps[i - 1]?.state;
        return (
          st.op === 'produce' && st.result.full === true && prev && (prev.in_prod - prev.in_cons) >>> 0 < 63
        );
      }),
    );
    expect(aliased.length).toBeGreaterThan(0);
    expect(
      evtTraces.scenarios.some((s) =>
        s.steps.some((st) => st.op === 'init' && num(st.args.start) > 0xffff0000),
      ),
    ).toBe(true);
  });

  describe.each(evtTraces.scenarios.map((s) => [s.name, s] as const))('%s', (_name, scenario) => {
    it('replays step by step with identical pages, indices and events', () => {
      const page = new Uint8Array(new SharedArrayBuffer(4096));
      const expected = new Uint8Array(4096);
      const ring = new EventPage(page);
      let producer: EventProducer | undefined;
      let consumer: EventConsumer | undefined;

      scenario.steps.forEach((step, i) => {
        const where = `${scenario.name} step ${i} ${step.op} ${JSON.stringify(step.args)}`;
        const result: Record<string, unknown> = {};
        switch (step.op) {
          case 'init': {
            const start = num(step.args.start);
            ring.inCons = start;
            ring.inProd = start;
            producer = EventProducer.attach(ring, start);
            consumer = EventConsumer.attach(ring, start);
            break;
          }
          case 'produce': {
            const slot = producer!.put((p, o) =>
              encodeEvt({ type: 0, id: num(step.args.id), fb_cookie: BigInt(step.args.fb_cookie!) }, p, o),
            );
            result.full = slot < 0;
            if (slot >= 0) result.slot = slot;
            break;
          }
          case 'consume': {
            const events: [number, string][] = [];
            consumer!.consume((bytes) => {
              const e = decodeEvt(bytes);
              if (!e.ok || 'unknown' in e.value) throw new Error(`${where}: bad event`);
              events.push([e.value.id, e.value.fb_cookie.toString()]);
            }, num(step.args.max));
            result.events = events;
            break;
          }
          default:
            throw new Error(`${where}: unknown op`);
        }
        expect(result, where).toEqual(step.result);
        applyDiff(expected, step.page);
        expect(Buffer.from(page).equals(Buffer.from(expected)), `${where}: page bytes`).toBe(true);
        expect({ in_cons: ring.inCons, in_prod: ring.inProd }, where).toEqual(step.state);
      });
    });
  });
});

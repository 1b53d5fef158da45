/**
 * One end of a displif connector running in its own worker, for the cross-worker ring test.
 * Shared memory layout (one SharedArrayBuffer): page 0 = control ring, page 1 = event page,
 * page 2 = control words (doorbells standing in for event channels, and a stop flag).
 *
 * The doorbell protocol avoids lost wakeups the way a Xen event channel does: read the bell,
 * run RING_FINAL_CHECK_*, and only then wait for the bell to move past the value read.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { decodeEvt, decodeReq, decodeResp, encodeEvt, encodeReq, encodeResp } from '../../../src/abi/displif-packets.js';
import { XENDISPL_OP_PG_FLIP } from '../../../src/abi/displif-constants.js';
import { EventConsumer, EventPage, EventProducer } from '../../../src/ring/event-page.js';
import { BackRing, FrontRing, SharedRing } from '../../../src/ring/shared-ring.js';

export interface PeerData {
  role: 'front' | 'back';
  sab: SharedArrayBuffer;
  requests: number;
  evtStart: number;
}

/** Words of the control page (Int32 indices). */
export const REQ_BELL = 0;
export const RSP_BELL = 1;
export const EVT_BELL = 2;
export const STOP = 3;
export const READY = 4;

const data = workerData as PeerData;
const mem = new Uint8Array(data.sab);
const ctl = new Int32Array(data.sab, 2 * 4096, 1024);
const sring = new SharedRing(mem, 0, 64);
const events = new EventPage(mem, 4096);
const scratch = new Uint8Array(64);

function ring(bell: number): void {
  Atomics.add(ctl, bell, 1);
  Atomics.notify(ctl, bell);
}

function fail(msg: string): never {
  throw new Error(`${data.role}: ${msg}`);
}

function cookieOf(i: number): bigint {
  return (0x8000_0000_0000_0000n | BigInt(i)) ^ 0x5a5an;
}

function runBack(): Record<string, number> {
  // The backend attaches once the frontend has initialised the ring and the event page.
  while (Atomics.load(ctl, READY) === 0) Atomics.wait(ctl, READY, 0, 100);
  const back = BackRing.init(sring);
  const producer = EventProducer.bind(events);
  let handled = 0;
  let notifies = 0;
  let eventsSent = 0;
  let fullWaits = 0;
  for (;;) {
    const seen = Atomics.load(ctl, REQ_BELL);
    while (back.unconsumedRequests > 0) {
      if (back.requestConsOverflow(back.reqCons)) fail('request cons overflow');
      const r = decodeReq(back.takeRequest(scratch));
      if (!r.ok || !('fb_cookie' in r.value)) fail('bad request');
      const { id, fb_cookie } = r.value;
      encodeResp({ id, operation: XENDISPL_OP_PG_FLIP, status: -(id % 40) }, sring.page, back.nextResponseOffset);
      back.rspProdPvt++;
      if (back.pushResponsesAndCheckNotify()) {
        notifies++;
        ring(RSP_BELL);
      }
      // Frame done: wait for room on the event page rather than drop the event.
      while (producer.put((p, o) => encodeEvt({ type: 0, id: eventsSent & 0xffff, fb_cookie }, p, o)) < 0) {
        fullWaits++;
        Atomics.wait(ctl, STOP, 0, 1);
      }
      eventsSent++;
      ring(EVT_BELL);
      handled++;
    }
    if (back.finalCheckForRequests() > 0) continue;
    if (Atomics.load(ctl, STOP) !== 0) break;
    Atomics.wait(ctl, REQ_BELL, seen);
  }
  return { handled, notifies, eventsSent, fullWaits };
}

function runFront(): Record<string, number> {
  const front = FrontRing.init(sring);
  events.inCons = data.evtStart;
  events.inProd = data.evtStart;
  const consumer = EventConsumer.bind(events);
  Atomics.store(ctl, READY, 1);
  Atomics.notify(ctl, READY);

  let sent = 0;
  let received = 0;
  let eventsReceived = 0;
  let notifies = 0;
  while (received < data.requests || eventsReceived < data.requests) {
    const seenRsp = Atomics.load(ctl, RSP_BELL);
    const seenEvt = Atomics.load(ctl, EVT_BELL);
    // Keep the ring as full as it allows.
    let queued = false;
    while (sent < data.requests && front.freeRequests > 0) {
      encodeReq({ operation: XENDISPL_OP_PG_FLIP, id: sent & 0xffff, fb_cookie: cookieOf(sent) }, sring.page, front.nextRequestOffset);
      front.reqProdPvt++;
      sent++;
      queued = true;
    }
    if (queued && front.pushRequestsAndCheckNotify()) {
      notifies++;
      ring(REQ_BELL);
    }
    while (front.unconsumedResponses > 0) {
      if (front.responseProdOverflow(sring.rspProd)) fail('response prod overflow');
      const r = decodeResp(front.takeResponse(scratch));
      if (!r.ok) fail('bad response');
      if (r.value.id !== (received & 0xffff) || r.value.status !== -(r.value.id % 40)) {
        fail(`response ${received}: id ${r.value.id} status ${r.value.status}`);
      }
      received++;
    }
    consumer.consume((bytes) => {
      const e = decodeEvt(bytes);
      if (!e.ok || !('fb_cookie' in e.value)) fail('bad event');
      if (e.value.id !== (eventsReceived & 0xffff) || e.value.fb_cookie !== cookieOf(eventsReceived)) {
        fail(`event ${eventsReceived}: id ${e.value.id} cookie ${e.value.fb_cookie}`);
      }
      eventsReceived++;
    });
    const more = front.finalCheckForResponses() > 0 || consumer.available > 0;
    if (more || (sent < data.requests && front.freeRequests > 0)) continue;
    if (received >= data.requests && eventsReceived >= data.requests) break;
    // Sleep until either bell moves (events are not armed: wait briefly on the response bell).
    if (Atomics.load(ctl, EVT_BELL) !== seenEvt) continue;
    Atomics.wait(ctl, RSP_BELL, seenRsp, 5);
  }
  Atomics.store(ctl, STOP, 1);
  ring(REQ_BELL);
  return { sent, received, eventsReceived, notifies, inCons: events.inCons };
}

const result = data.role === 'front' ? runFront() : runBack();
parentPort!.postMessage(result);

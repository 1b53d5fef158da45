/**
 * One connector's channel on the frontend side (Linux's xen_drm_front_evtchnl, without its
 * one-request-at-a-time limit): the control ring (requests out, responses in) and the event page
 * (frame-done events in), each with its event channel, set up for the backend to map and bind.
 *
 * Any number of requests may be in flight: each gets the next u16 id, responses are matched by
 * id (a response with an id nobody waits for is dropped), a request whose response does not
 * come within the timeout rejects with -ETIMEDOUT, and requests beyond the ring's 32 slots wait
 * for a free slot in order. Events are consumed in order; as in Linux, an event is handled only
 * if its id is the next expected one (the counter advances for every event seen).
 */
import { type DisplEvt, type DisplResp, decodeEvt, decodeResp, encodeReq, type KnownReq } from '../abi/displif-packets.js';
import { DISPLIF_OPERATION_NAMES, XENDISPL_FIELD_EVT_CHANNEL, XENDISPL_FIELD_EVT_RING_REF, XENDISPL_FIELD_REQ_CHANNEL, XENDISPL_FIELD_REQ_RING_REF, XENDISPL_PACKET_SIZE } from '../abi/displif-constants.js';
import { XEN_ERRNO } from '../abi/xen-errno.js';
import { EventConsumer, EventPage } from '../ring/event-page.js';
import { FrontRing, SharedRing } from '../ring/shared-ring.js';
import type { SharedRingPage, XenbusDevice } from '../xenbus/device.js';
import { DisplayError } from './errors.js';

/** A request without its id (the channel assigns it). */
export type RequestBody = KnownReq extends infer R ? (R extends KnownReq ? Omit<R, 'id'> : never) : never;

interface InFlight {
  readonly operation: number;
  readonly resolve: (r: DisplResp) => void;
  readonly reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

interface Queued {
  readonly body: RequestBody;
  readonly waiter: InFlight;
}

export interface ChannelStats {
  requests: number;
  responses: number;
  strayResponses: number;
  events: number;
  skippedEvents: number;
}

export class FrontChannel {
  private readonly ring: FrontRing;
  private readonly consumer: EventConsumer;
  private readonly inflight = new Map<number, InFlight>();
  private readonly queue: Queued[] = [];
  private nextId = 0;
  private nextEventId = 0;
  private connected = false;
  private dead: DisplayError | undefined;
  private readonly scratch = new Uint8Array(XENDISPL_PACKET_SIZE);
  readonly stats: ChannelStats = { requests: 0, responses: 0, strayResponses: 0, events: 0, skippedEvents: 0 };
  /** Called for every in-sequence event (frame-done). */
  onEvent: (evt: DisplEvt) => void = () => undefined;

  private constructor(
    private readonly dev: XenbusDevice,
    readonly index: number,
    private readonly reqPage: SharedRingPage,
    private readonly evtPage: SharedRingPage,
    readonly reqPort: number,
    readonly evtPort: number,
    private readonly timeoutMs: number,
  ) {
    this.ring = FrontRing.init(new SharedRing(reqPage.page, 0, XENDISPL_PACKET_SIZE));
    this.consumer = EventConsumer.bind(new EventPage(evtPage.page));
  }

  /** Allocates and grants the two pages and the two channels (xen_drm_front_evtchnl_create). */
  static create(dev: XenbusDevice, index: number, timeoutMs: number): FrontChannel {
    const undo: (() => void)[] = [];
    try {
      const req = dev.grantRingPage();
      undo.push(() => dev.releaseRingPage(req));
      const evt = dev.grantRingPage();
      undo.push(() => dev.releaseRingPage(evt));
      const reqPort = dev.allocEvtchn();
      undo.push(() => dev.platform.events.close(reqPort));
      const evtPort = dev.allocEvtchn();
      return new FrontChannel(dev, index, req, evt, reqPort, evtPort, timeoutMs);
    } catch (e) {
      for (const u of undo.reverse()) u();
      throw e;
    }
  }

  /** The XenStore nodes to publish for this connector. */
  nodes(): Record<string, number> {
    const i = this.index;
    return {
      [`${i}/${XENDISPL_FIELD_REQ_RING_REF}`]: this.reqPage.ref,
      [`${i}/${XENDISPL_FIELD_REQ_CHANNEL}`]: this.reqPort,
      [`${i}/${XENDISPL_FIELD_EVT_RING_REF}`]: this.evtPage.ref,
      [`${i}/${XENDISPL_FIELD_EVT_CHANNEL}`]: this.evtPort,
    };
  }

  /** The raw pages and ports (for the conformance frontend, which drives them itself). */
  rawPages(): { reqPage: Uint8Array; evtPage: Uint8Array; reqPort: number; evtPort: number } {
    return { reqPage: this.reqPage.page, evtPage: this.evtPage.page, reqPort: this.reqPort, evtPort: this.evtPort };
  }

  /** The backend is connected: start taking responses and events. */
  connect(): void {
    if (this.connected || this.dead) return;
    this.connected = true;
    const ev = this.dev.platform.events;
    ev.on(this.reqPort, () => this.takeResponses());
    ev.on(this.evtPort, () => this.takeEvents());
    this.pump();
    this.takeResponses();
    this.takeEvents();
  }

  /** Requests waiting for a response (or for a ring slot). */
  get pending(): number {
    return this.inflight.size + this.queue.length;
  }

  /** Sends a request; resolves with its response (whatever its status), rejects on timeout or disconnect. */
  request(body: RequestBody): Promise<DisplResp> {
    if (this.dead) return Promise.reject(this.dead);
    if (!this.connected) return Promise.reject(new DisplayError(-XEN_ERRNO.EIO, 'the backend is not connected'));
    return new Promise<DisplResp>((resolve, reject) => {
      const waiter: InFlight = { operation: body.operation, resolve, reject, timer: undefined };
      this.queue.push({ body, waiter });
      this.pump();
    });
  }

  /** Moves queued requests into free ring slots and notifies the backend if it asked. */
  private pump(): void {
    if (!this.connected || this.queue.length === 0) return;
    const ring = this.ring;
    let sent = 0;
    while (this.queue.length > 0 && ring.freeRequests > 0) {
      const { body, waiter } = this.queue.shift()!;
      let id = this.nextId;
      for (let tries = 0; this.inflight.has(id) && tries < 0x10000; tries++) id = (id + 1) & 0xffff;
      this.nextId = (id + 1) & 0xffff;
      encodeReq({ ...body, id }, ring.sring.page, ring.nextRequestOffset);
      ring.reqProdPvt = ring.reqProdPvt + 1;
      this.inflight.set(id, waiter);
      const name = DISPLIF_OPERATION_NAMES[body.operation] ?? String(body.operation);
      waiter.timer = setTimeout(() => {
        if (this.inflight.get(id) !== waiter) return;
        this.inflight.delete(id);
        waiter.reject(new DisplayError(-XEN_ERRNO.ETIMEDOUT, `${name} on connector ${this.index}: no response within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      sent++;
    }
    if (sent === 0) return;
    this.stats.requests += sent;
    if (ring.pushRequestsAndCheckNotify()) this.dev.platform.events.notify(this.reqPort);
  }

  private takeResponses(): void {
    if (!this.connected) return;
    const ring = this.ring;
    for (;;) {
      const rp = ring.sring.rspProd;
      if (ring.responseProdOverflow(rp)) {
        this.fail(new DisplayError(-XEN_ERRNO.EIO, `connector ${this.index}: the backend published ${rp}, beyond the requests sent`));
        return;
      }
      while (ring.rspCons !== rp) {
        ring.takeResponse(this.scratch);
        const d = decodeResp(this.scratch);
        this.stats.responses++;
        if (!d.ok) continue;
        const w = this.inflight.get(d.value.id);
        if (!w || w.operation !== d.value.operation) {
          this.stats.strayResponses++;
          continue;
        }
        this.inflight.delete(d.value.id);
        clearTimeout(w.timer);
        w.resolve(d.value);
      }
      if (ring.rspCons !== ring.reqProdPvt) {
        if (ring.finalCheckForResponses() === 0) break;
      } else {
        ring.sring.rspEvent = ring.rspCons + 1;
        if (ring.unconsumedResponses === 0) break;
      }
    }
    this.pump();
  }

  private takeEvents(): void {
    if (!this.connected) return;
    this.consumer.consume((bytes) => {
      const expected = this.nextEventId;
      this.nextEventId = (expected + 1) & 0xffff;
      const d = decodeEvt(bytes);
      if (!d.ok || d.value.id !== expected) {
        this.stats.skippedEvents++;
        return;
      }
      this.stats.events++;
      this.onEvent(d.value);
    });
  }

  /** Fails every pending and later request with `err`. */
  fail(err: DisplayError): void {
    if (this.dead) return;
    this.dead = err;
    this.stopListening();
    for (const w of this.inflight.values()) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.inflight.clear();
    for (const q of this.queue.splice(0)) q.waiter.reject(err);
  }

  private stopListening(): void {
    if (!this.connected) return;
    this.connected = false;
    this.dev.platform.events.off(this.reqPort);
    this.dev.platform.events.off(this.evtPort);
  }

  /** Tears down: fails what is pending, closes the channels, ends the page grants (freed once unmapped). */
  free(err = new DisplayError(-XEN_ERRNO.EIO, 'the channel was closed')): void {
    this.fail(err);
    const p = this.dev.platform;
    p.events.close(this.reqPort);
    p.events.close(this.evtPort);
    this.dev.releaseRingPage(this.reqPage);
    this.dev.releaseRingPage(this.evtPage);
  }
}

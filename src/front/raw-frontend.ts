/**
 * A raw displif frontend for conformance testing any backend: it sets the device up exactly as
 * the frontend does (one control ring and one event page per connector, their channels, published
 * in one transaction, Initialised, then Connected once the backend is), and then does nothing
 * on its own: a test writes any 64 bytes into the control ring, publishes req_prod (or a bogus
 * value), notifies or not, and reads responses and events as they are.
 *
 *   const raw = await RawFrontend.connect(platform);
 *   const c = raw.connectors[0];
 *   c.write(bytes); c.push();               // or c.send({ operation: ..., ... })
 *   const resp = await c.waitResponse();
 */
import { type DisplEvt, type DisplReq, type DisplResp, decodeEvt, decodeResp, encodeReq } from '../abi/displif-packets.js';
import { parseBeAlloc, parseResolution, XENDISPL_FIELD_BE_ALLOC, XENDISPL_FIELD_RESOLUTION, XENDISPL_PACKET_SIZE } from '../abi/displif-constants.js';
import { XenbusState, type XenbusStateValue, xenbusStateName } from '../abi/xenbus-state.js';
import { EventConsumer, EventPage } from '../ring/event-page.js';
import { FrontRing, SharedRing } from '../ring/shared-ring.js';
import { XenbusDevice } from '../xenbus/device.js';
import type { XenPlatform } from '../xenbus/xen-platform.js';
import { FrontChannel } from './channel.js';

export class RawFrontendError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RawFrontendError';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` (every 2 ms, and whenever `wake` fires) until it returns a value or time runs out. */
async function until<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new RawFrontendError(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(2);
  }
}

export class RawConnector {
  /** The control ring, front side: reqProdPvt is where write() puts the next request. */
  readonly ring: FrontRing;
  readonly eventPage: EventPage;
  private readonly consumer: EventConsumer;
  private readonly slot = new Uint8Array(XENDISPL_PACKET_SIZE);
  private nextId = 0;
  /** Notifications received on each channel. */
  readonly notified = { req: 0, evt: 0 };

  constructor(
    private readonly platform: XenPlatform,
    readonly index: number,
    readonly channel: RawChannelPages,
    readonly width: number,
    readonly height: number,
  ) {
    this.ring = FrontRing.init(new SharedRing(channel.reqPage, 0, XENDISPL_PACKET_SIZE));
    this.eventPage = new EventPage(channel.evtPage);
    this.consumer = EventConsumer.bind(this.eventPage);
    platform.events.on(channel.reqPort, () => this.notified.req++);
    platform.events.on(channel.evtPort, () => this.notified.evt++);
  }

  /** Writes 64 raw bytes into the next request slot (req_prod_pvt++), without publishing. */
  write(bytes: Uint8Array): void {
    if (bytes.length !== XENDISPL_PACKET_SIZE) throw new RangeError(`a request is ${XENDISPL_PACKET_SIZE} bytes, not ${bytes.length}`);
    this.ring.sring.page.set(bytes, this.ring.nextRequestOffset);
    this.ring.reqProdPvt = this.ring.reqProdPvt + 1;
  }

  /** Publishes req_prod = req_prod_pvt; notifies if the backend asked (or always/never). */
  push(notify: 'if-asked' | 'always' | 'never' = 'if-asked'): void {
    const asked = this.ring.pushRequestsAndCheckNotify();
    if (notify === 'always' || (notify === 'if-asked' && asked)) this.notify();
  }

  /** Publishes any req_prod value, however wrong. */
  setReqProd(value: number): void {
    this.ring.sring.reqProd = value;
  }

  notify(): void {
    this.platform.events.notify(this.channel.reqPort);
  }

  /** Encodes `req` (id assigned if absent), writes it and pushes; returns the id. */
  send(req: Omit<DisplReq, 'id'> & { id?: number }, notify: 'if-asked' | 'always' | 'never' = 'if-asked'): number {
    const id = req.id ?? this.nextId;
    this.nextId = (id + 1) & 0xffff;
    this.write(encodeReq({ ...req, id } as DisplReq, this.slot.fill(0)));
    this.push(notify);
    return id;
  }

  /** Responses published and not yet taken. */
  get availableResponses(): number {
    return this.ring.unconsumedResponses;
  }

  /** Takes every published response (decoded; undecodable ones are skipped). */
  takeResponses(): DisplResp[] {
    const out: DisplResp[] = [];
    const rp = this.ring.sring.rspProd;
    while (this.ring.rspCons !== rp) {
      const d = decodeResp(this.ring.takeResponse(this.slot));
      if (d.ok) out.push(d.value);
    }
    this.ring.sring.rspEvent = this.ring.rspCons + 1;
    return out;
  }

  /** The next response, waiting up to `timeoutMs`. */
  async waitResponse(timeoutMs = 2000): Promise<DisplResp> {
    await until(() => (this.ring.unconsumedResponses > 0 ? true : undefined), timeoutMs, `a response on connector ${this.index}`);
    const d = decodeResp(this.ring.takeResponse(this.slot));
    this.ring.sring.rspEvent = this.ring.rspCons + 1;
    if (!d.ok) throw new RawFrontendError(d.error.message);
    return d.value;
  }

  /** send() then waitResponse(). */
  async request(req: Omit<DisplReq, 'id'> & { id?: number }, timeoutMs = 2000): Promise<DisplResp> {
    this.send(req, 'always');
    return this.waitResponse(timeoutMs);
  }

  /** Events published and not consumed. */
  get availableEvents(): number {
    return this.consumer.available;
  }

  /** Consumes up to `max` events (publishing in_cons). */
  takeEvents(max?: number): DisplEvt[] {
    const out: DisplEvt[] = [];
    this.consumer.consume((bytes) => {
      const d = decodeEvt(bytes);
      if (d.ok) out.push(d.value);
    }, max);
    return out;
  }

  /** Waits until at least `n` events are available, then consumes them all. */
  async waitEvents(n = 1, timeoutMs = 2000): Promise<DisplEvt[]> {
    await until(() => (this.consumer.available >= n ? true : undefined), timeoutMs, `${n} event(s) on connector ${this.index}`);
    return this.takeEvents();
  }
}

export interface RawChannelPages {
  readonly reqPage: Uint8Array;
  readonly evtPage: Uint8Array;
  readonly reqPort: number;
  readonly evtPort: number;
}

export class RawFrontend {
  private constructor(
    readonly dev: XenbusDevice,
    readonly beAlloc: boolean,
    readonly connectors: readonly RawConnector[],
    private readonly channels: readonly FrontChannel[],
  ) {}

  get platform(): XenPlatform {
    return this.dev.platform;
  }

  get backendDomid(): number {
    return this.dev.otherendId;
  }

  /**
   * Sets up device `nodename` like the frontend and waits (up to `timeoutMs`) for the backend to
   * connect. `connectors`: how many to set up (default: every configured one).
   */
  static async connect(platform: XenPlatform, nodename = 'device/vdispl/0', opts: { connectors?: number; timeoutMs?: number } = {}): Promise<RawFrontend> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    const dev = await XenbusDevice.open(platform, 'frontend', nodename);
    const waitBackend = async (want: XenbusStateValue): Promise<void> => {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const s = await dev.otherendStateNow();
        if (s === want) return;
        if (Date.now() > end) throw new RawFrontendError(`backend is ${xenbusStateName(s)}, not ${xenbusStateName(want)}, after ${timeoutMs} ms`);
        await sleep(5);
      }
    };
    if (dev.state !== XenbusState.Initialising) await dev.switchState(XenbusState.Initialising);
    await waitBackend(XenbusState.InitWait);
    const beAlloc = parseBeAlloc(await dev.read(XENDISPL_FIELD_BE_ALLOC));
    const sizes: { width: number; height: number }[] = [];
    for (let i = 0; opts.connectors === undefined || i < opts.connectors; i++) {
      const res = parseResolution(await dev.read(`${i}/${XENDISPL_FIELD_RESOLUTION}`), 99_999);
      if (!res) break;
      sizes.push(res);
    }
    if (sizes.length === 0) throw new RawFrontendError(`${dev.nodename}: no connectors configured`);
    const channels = sizes.map((_, i) => FrontChannel.create(dev, i, 3000));
    await dev.publish(Object.assign({}, ...channels.map((c) => c.nodes())) as Record<string, number>, XenbusState.Initialised);
    await waitBackend(XenbusState.Connected);
    await dev.switchState(XenbusState.Connected);
    const raw = channels.map((c, i) => new RawConnector(platform, i, c.rawPages(), sizes[i]!.width, sizes[i]!.height));
    return new RawFrontend(dev, beAlloc, raw, channels);
  }

  /** The backend's state now. */
  backendState(): Promise<XenbusStateValue> {
    return this.dev.otherendStateNow();
  }

  /** Waits until the backend's state is `want`. */
  async waitBackendState(want: XenbusStateValue, timeoutMs = 2000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.dev.otherendStateNow();
      if (s === want) return;
      if (Date.now() > end) throw new RawFrontendError(`backend is ${xenbusStateName(s)}, not ${xenbusStateName(want)}, after ${timeoutMs} ms`);
      await sleep(5);
    }
  }

  /** Closes the device as the frontend does (Closing, backend lets go, Closed) and frees everything. */
  async close(timeoutMs = 2000): Promise<void> {
    await this.dev.switchState(XenbusState.Closing).catch(() => undefined);
    const end = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.dev.otherendStateNow();
      if (s === XenbusState.InitWait || s === XenbusState.Closed || s === XenbusState.Unknown || Date.now() > end) break;
      await sleep(5);
    }
    for (const c of this.connectors) {
      this.platform.events.off(c.channel.reqPort);
      this.platform.events.off(c.channel.evtPort);
    }
    for (const c of this.channels) c.free();
    await this.dev.switchState(XenbusState.Closed).catch(() => undefined);
    await this.dev.close();
  }
}

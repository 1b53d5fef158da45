/**
 * One connector of a frontend device on the backend side: its control ring (requests in,
 * responses out, libxenbe's RingBufferInBase), its event page (frame-done events out), the two
 * event channels, and its display state (the mode set, the frame shown, flips being presented).
 *
 * Requests are served synchronously in ring order, each answered with a full 64-byte response.
 * A frontend that publishes an impossible req_prod (more than the ring holds) is a protocol
 * error: the connector reports it and the device handler disconnects that frontend only.
 * Work is shared per frontend device: each turn of the event loop it may use TURN_WORK units
 * across all its connectors (a request is one unit, plus one per 128 pages it maps or unmaps),
 * then waits for the next turn, so one busy guest cannot stall others.
 *
 * Frame-done events are never dropped: when the 63-slot event page is full they wait here (up to
 * maxPendingEvents; beyond that PG_FLIP is refused with -EBUSY) and are written as the frontend
 * consumes; since frontends do not notify when they consume, a short backing-off timer retries
 * while events wait, and every request from the frontend retries too.
 */
import { decodeReq, encodeEvt, encodeResp } from '../abi/displif-packets.js';
import { XENDISPL_EVT_PG_FLIP, XENDISPL_PACKET_SIZE } from '../abi/displif-constants.js';
import { errnoForGntst, gntstMessage } from '../abi/grant-table.js';
import { XEN_ERRNO, xenErrnoName } from '../abi/xen-errno.js';
import type { GrantMapping, Platform } from '../hypervisor/platform.js';
import { EventPage, EventProducer } from '../ring/event-page.js';
import { BackRing, SharedRing } from '../ring/shared-ring.js';
import type { BufferStore, DisplayLimits, Framebuffer } from './buffers.js';
import type { ConnectorInfo, ConnectorOutput } from './presenter.js';

/** What the frontend published for this connector, and its configuration. */
export interface ConnectorSetup {
  readonly info: ConnectorInfo;
  readonly reqRingRef: number;
  readonly reqPort: number;
  readonly evtRingRef: number;
  readonly evtPort: number;
}

export class BindError extends Error {
  constructor(
    message: string,
    readonly errno: number,
  ) {
    super(message);
    this.name = 'BindError';
  }
}

/** A request's result as the command handler returns it. */
export interface Reply {
  readonly status: number;
  readonly edid_sz?: number;
  /** Why it failed (logged). */
  readonly why?: string;
  /** Runs once the response is visible to the frontend (a flip starts presenting then). */
  readonly after?: () => void;
  /** Pages the request mapped or unmapped (for the per-turn work budget). */
  readonly pages?: number;
}

export type RequestHandler = (conn: BackConnector, req: ReturnType<typeof decodeReq>) => Reply;

/** Work units one frontend device may use per turn of the event loop (64 small requests). */
export const TURN_WORK = 64;
const PAGES_PER_UNIT = 128;

/** A frontend device's work allowance for the current turn of the event loop, shared by its connectors. */
export class TurnBudget {
  private left = TURN_WORK;
  private resetting = false;

  get exhausted(): boolean {
    return this.left <= 0;
  }

  take(units: number): void {
    this.left -= units;
    if (this.resetting) return;
    this.resetting = true;
    setImmediate(() => {
      this.left = TURN_WORK;
      this.resetting = false;
    });
  }
}
const RETRY_MIN_MS = 1;
const RETRY_MAX_MS = 32;

export class BackConnector {
  /** The mode set (SET_CONFIG), holding its framebuffer. */
  config: { fb: Framebuffer; x: number; y: number; width: number; height: number } | undefined;
  /** Counts SET_CONFIGs: a flip accepted before the latest one is not shown. */
  private configGeneration = 0;
  /** Event id of the next event (u16, from 0). */
  private nextEventId = 0;
  private readonly pendingEvents: bigint[] = [];
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retryMs = RETRY_MIN_MS;
  private scheduled: ReturnType<typeof setImmediate> | undefined;
  private closed = false;
  private readonly scratch = new Uint8Array(XENDISPL_PACKET_SIZE);
  /** Counters for the log and tests. */
  readonly stats = { requests: 0, errors: 0, flips: 0, events: 0, eventWaits: 0 };

  private constructor(
    private readonly platform: Platform,
    readonly frontendDomid: number,
    readonly info: ConnectorInfo,
    private readonly store: BufferStore,
    private readonly limits: DisplayLimits,
    readonly output: ConnectorOutput,
    private readonly handler: RequestHandler,
    private readonly onProtocolError: (conn: BackConnector, why: string) => void,
    private readonly turn: TurnBudget,
    private readonly reqMapping: GrantMapping,
    private readonly evtMapping: GrantMapping,
    private readonly ring: BackRing,
    private readonly events: EventProducer,
    private readonly reqPort: number,
    private readonly evtPort: number,
  ) {}

  /**
   * Maps the connector's two pages, binds its two channels and starts serving (libxenbe's
   * onBind for one connector). Throws BindError with nothing left mapped or bound.
   */
  static bind(opts: {
    platform: Platform;
    frontendDomid: number;
    setup: ConnectorSetup;
    store: BufferStore;
    limits: DisplayLimits;
    openOutput: (info: ConnectorInfo) => ConnectorOutput;
    handler: RequestHandler;
    onProtocolError: (conn: BackConnector, why: string) => void;
    /** Shared by the device's connectors (default: this connector's own). */
    turn?: TurnBudget;
  }): BackConnector {
    const { platform: p, frontendDomid: dom, setup } = opts;
    const undo: (() => void)[] = [];
    const fail = (why: string, errno: number): never => {
      for (const u of undo.reverse()) u();
      throw new BindError(`connector ${setup.info.index}: ${why}`, errno);
    };
    const req = p.maps.map(dom, [setup.reqRingRef], false);
    if (!req.ok) return fail(`mapping req-ring-ref ${setup.reqRingRef}: ${gntstMessage(req.status)}`, errnoForGntst(req.status));
    undo.push(() => p.maps.unmap(req.mapping));
    const evt = p.maps.map(dom, [setup.evtRingRef], false);
    if (!evt.ok) return fail(`mapping evt-ring-ref ${setup.evtRingRef}: ${gntstMessage(evt.status)}`, errnoForGntst(evt.status));
    undo.push(() => p.maps.unmap(evt.mapping));
    const reqPort = p.events.bindInterdomain(dom, setup.reqPort);
    if (reqPort < 0) return fail(`binding req-event-channel ${setup.reqPort}: ${xenErrnoName(reqPort) ?? reqPort}`, reqPort);
    undo.push(() => p.events.close(reqPort));
    const evtPort = p.events.bindInterdomain(dom, setup.evtPort);
    if (evtPort < 0) return fail(`binding evt-event-channel ${setup.evtPort}: ${xenErrnoName(evtPort) ?? evtPort}`, evtPort);
    undo.push(() => p.events.close(evtPort));
    const ring = BackRing.init(new SharedRing(req.mapping.page(0), 0, XENDISPL_PACKET_SIZE));
    const producer = EventProducer.bind(new EventPage(evt.mapping.page(0)));
    let output: ConnectorOutput;
    try {
      output = opts.openOutput(setup.info);
    } catch (e) {
      return fail(`opening the output: ${e instanceof Error ? e.message : String(e)}`, -XEN_ERRNO.EIO);
    }
    const c = new BackConnector(p, dom, setup.info, opts.store, opts.limits, output, opts.handler, opts.onProtocolError, opts.turn ?? new TurnBudget(), req.mapping, evt.mapping, ring, producer, reqPort, evtPort);
    p.events.on(reqPort, () => c.service());
    // Requests the frontend queued before we bound.
    c.schedule();
    return c;
  }

  get index(): number {
    return this.info.index;
  }

  /** Frame-done events waiting for room on the event page. */
  get waitingEvents(): number {
    return this.pendingEvents.length;
  }

  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = setImmediate(() => {
      this.scheduled = undefined;
      this.service();
    });
  }

  /** Serves the control ring (RING_FINAL_CHECK_FOR_REQUESTS loop) within the device's turn budget. */
  service(): void {
    if (this.closed) return;
    const ring = this.ring;
    for (;;) {
      const rp = ring.sring.reqProd;
      if (ring.requestProdOverflow(rp)) {
        this.onProtocolError(this, `req_prod ${rp} is more than ${ring.nrEnts} requests ahead of the responses (${ring.rspProdPvt})`);
        return;
      }
      const afters: (() => void)[] = [];
      while (ring.reqCons !== rp && !this.turn.exhausted) {
        ring.takeRequest(this.scratch);
        const decoded = decodeReq(this.scratch);
        const id = this.scratch[0]! | (this.scratch[1]! << 8);
        const operation = this.scratch[2]!;
        let reply: Reply;
        try {
          reply = this.handler(this, decoded);
        } catch (e) {
          reply = { status: -XEN_ERRNO.EIO, why: e instanceof Error ? e.message : String(e) };
        }
        this.stats.requests++;
        if (reply.status !== 0) this.stats.errors++;
        encodeResp({ id, operation, status: reply.status, ...(reply.edid_sz !== undefined ? { edid_sz: reply.edid_sz } : {}) }, ring.sring.page, ring.nextResponseOffset);
        ring.rspProdPvt = ring.rspProdPvt + 1;
        if (reply.after) afters.push(reply.after);
        this.turn.take(1 + Math.floor((reply.pages ?? 0) / PAGES_PER_UNIT));
      }
      if (ring.pushResponsesAndCheckNotify()) this.platform.events.notify(this.reqPort);
      for (const a of afters) {
        try {
          a();
        } catch (e) {
          this.stats.errors++;
          this.onProtocolError(this, `internal error after a response: ${e instanceof Error ? e.message : String(e)}`);
          return;
        }
      }
      if (this.pendingEvents.length > 0) this.flushEvents();
      if (this.turn.exhausted && ring.reqCons !== ring.sring.reqProd) {
        this.schedule();
        return;
      }
      if (ring.finalCheckForRequests() === 0) return;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Display state

  /** SET_CONFIG with a framebuffer (already validated). */
  setConfig(fb: Framebuffer, x: number, y: number, width: number, height: number): void {
    const old = this.config;
    this.configGeneration++;
    this.config = { fb: this.store.hold(fb), x, y, width, height };
    try {
      this.output.configure({ frame: fb, x, y, width, height });
    } finally {
      if (old) this.store.release(old.fb);
    }
  }

  /** SET_CONFIG with all zeros. */
  reset(): void {
    const old = this.config;
    this.configGeneration++;
    this.config = undefined;
    try {
      this.output.configure(undefined);
    } finally {
      if (old) this.store.release(old.fb);
    }
  }

  /** May one more flip be accepted (its frame-done event must have room to wait)? */
  get canFlip(): boolean {
    // Accepted flips whose event is not on the page yet: being presented or waiting for room.
    return this.stats.flips - this.stats.events < this.limits.maxPendingEvents;
  }

  /**
   * PG_FLIP accepted (the connector has a mode): `fb` is shown from now on and held until it has
   * been presented. Returns what starts the presentation, to run once the response is visible;
   * frame-done follows. The state changes now, in request order, so later requests in the same
   * batch (a reset, FB_DETACH, DBUF_DESTROY) see it and cannot pull the memory from under it.
   */
  acceptFlip(fb: Framebuffer): () => void {
    const cfg = this.config;
    if (cfg && cfg.fb !== fb) {
      this.config = { ...cfg, fb: this.store.hold(fb) };
      this.store.release(cfg.fb);
    }
    this.stats.flips++;
    this.store.hold(fb);
    const generation = this.configGeneration;
    return () => this.present(fb, generation);
  }

  private present(fb: Framebuffer, generation: number): void {
    let settled = false;
    const done = (): void => {
      if (settled) return;
      settled = true;
      this.store.release(fb);
      if (this.closed) return;
      this.queueEvent(fb.fbCookie);
    };
    // A SET_CONFIG later in the same batch replaced the mode: nothing to show, but the frontend
    // still gets its frame-done. (Flips superseded by later flips are all presented, in order.)
    if (this.closed || generation !== this.configGeneration) {
      done();
      return;
    }
    let r: void | Promise<void>;
    try {
      r = this.output.present(fb);
    } catch {
      r = undefined;
    }
    if (r instanceof Promise) r.then(done, done);
    else done();
  }

  private queueEvent(fbCookie: bigint): void {
    this.pendingEvents.push(fbCookie);
    this.flushEvents();
  }

  /** Writes waiting events while the page has room; arms the retry timer if some still wait. */
  private flushEvents(): void {
    let wrote = 0;
    while (this.pendingEvents.length > 0) {
      const cookie = this.pendingEvents[0]!;
      const id = this.nextEventId;
      const slot = this.events.put((page, offset) => encodeEvt({ type: XENDISPL_EVT_PG_FLIP, id, fb_cookie: cookie }, page, offset));
      if (slot < 0) break;
      this.pendingEvents.shift();
      this.nextEventId = (id + 1) & 0xffff;
      wrote++;
    }
    if (wrote > 0) {
      this.stats.events += wrote;
      this.platform.events.notify(this.evtPort);
      this.retryMs = RETRY_MIN_MS;
    }
    if (this.pendingEvents.length > 0 && !this.retryTimer && !this.closed) {
      this.stats.eventWaits++;
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
        this.flushEvents();
      }, this.retryMs);
    }
  }

  /** Stops serving, releases what the connector holds, unbinds and unmaps (libxenbe's unbind). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.scheduled) clearImmediate(this.scheduled);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.pendingEvents.length = 0;
    const p = this.platform;
    p.events.off(this.reqPort);
    p.events.close(this.reqPort);
    p.events.close(this.evtPort);
    if (this.config) this.store.release(this.config.fb);
    this.config = undefined;
    try {
      this.output.close();
    } finally {
      p.maps.unmap(this.reqMapping);
      p.maps.unmap(this.evtMapping);
    }
  }
}

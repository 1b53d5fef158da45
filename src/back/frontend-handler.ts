/**
 * One frontend device as the backend serves it (libxenbe's FrontendHandlerBase + displ_be's
 * DisplayFrontendHandler): the XenBus state machine of reference section 10.1 and, on bind, one
 * BackConnector per connector the frontend published, all sharing one buffer store.
 *
 * | frontend                | backend                 | action                            |
 * |-------------------------|-------------------------|-----------------------------------|
 * | Initialising            | Connected / Initialised | "frontend restarted": close(InitWait) |
 * | Initialising            | Initialising / Closed   | -> InitWait                       |
 * | Initialised / Connected | Initialising / InitWait | bind, -> Connected                |
 * | Closing / Closed        | Initialised / Connected | close(InitWait)                   |
 * | Unknown (gone)          | Connected               | close(InitWait) (release its memory) |
 *
 * close(s) = Closing, unbind everything, Closed, then s. A bind failure or a protocol error
 * (an impossible req_prod) closes to Closed after recording the error in XenStore, like
 * libxenbe's exception path; the frontend then reconnects (or not) from Initialising.
 */
import { parseResolution, XENDISPL_FIELD_EVT_CHANNEL, XENDISPL_FIELD_EVT_RING_REF, XENDISPL_FIELD_REQ_CHANNEL, XENDISPL_FIELD_REQ_RING_REF, XENDISPL_FIELD_RESOLUTION, XENDISPL_FIELD_UNIQUE_ID } from '../abi/displif-constants.js';
import { XenbusState, type XenbusStateValue, xenbusStateName } from '../abi/xenbus-state.js';
import { XEN_ERRNO } from '../abi/xen-errno.js';
import { XenbusDevice } from '../xenbus/device.js';
import type { XenPlatform } from '../xenbus/xen-platform.js';
import { type BackendBudget, BufferStore, type DisplayLimits } from './buffers.js';
import { handleRequest } from './commands.js';
import { BackConnector, BindError, type ConnectorSetup, TurnBudget } from './connector.js';
import type { Presenter } from './presenter.js';

export type BackendLog = (text: string) => void;

function parseU32(text: string | undefined, what: string): number {
  if (text === undefined) throw new BindError(`${what} is missing`, -XEN_ERRNO.ENOENT);
  if (!/^\d{1,10}$/.test(text) || Number(text) > 0xffff_ffff) throw new BindError(`${what} "${text}" is not a number`, -XEN_ERRNO.EINVAL);
  return Number(text);
}

export class FrontendHandler {
  private connectors: BackConnector[] = [];
  private store: BufferStore | undefined;
  private stopped = false;
  /** Binds so far (a reconnecting frontend binds again). */
  binds = 0;

  private constructor(
    readonly dev: XenbusDevice,
    readonly devid: number,
    private readonly presenter: Presenter,
    private readonly limits: DisplayLimits,
    private readonly budget: BackendBudget,
    private readonly log: BackendLog,
  ) {}

  static async start(opts: { platform: XenPlatform; backendPath: string; devid: number; presenter: Presenter; limits: DisplayLimits; budget: BackendBudget; log: BackendLog }): Promise<FrontendHandler> {
    const dev = await XenbusDevice.open(opts.platform, 'backend', opts.backendPath);
    const h = new FrontendHandler(dev, opts.devid, opts.presenter, opts.limits, opts.budget, opts.log);
    if (dev.state === XenbusState.Closed) await dev.switchState(XenbusState.Initialising);
    else if (dev.state !== XenbusState.Initialising) {
      // Left over from a backend that went away: start over, as libxenbe does.
      h.log(`state ${xenbusStateName(dev.state)} left by a previous backend: resetting`);
      await h.close(XenbusState.Initialising);
    }
    await dev.watchOtherend((s) => h.onFrontendState(s));
    return h;
  }

  get frontendDomid(): number {
    return this.dev.otherendId;
  }

  get name(): string {
    return `vdispl ${this.frontendDomid}/${this.devid}`;
  }

  /** The bound connectors (empty when not connected). */
  get boundConnectors(): readonly BackConnector[] {
    return this.connectors;
  }

  get bufferUsage(): BufferStore['usage'] | undefined {
    return this.store?.usage;
  }

  private async onFrontendState(front: XenbusStateValue): Promise<void> {
    if (this.stopped) return;
    const back = this.dev.state;
    switch (front) {
      case XenbusState.Initialising:
        if (back === XenbusState.Connected || back === XenbusState.Initialised) {
          this.log(`${this.name}: frontend restarted`);
          await this.close(XenbusState.InitWait);
        } else if (back === XenbusState.Initialising || back === XenbusState.Closed) {
          await this.dev.switchState(XenbusState.InitWait);
        }
        break;
      case XenbusState.Initialised:
      case XenbusState.Connected:
        if (back === XenbusState.Initialising || back === XenbusState.InitWait) await this.connect();
        break;
      case XenbusState.Closing:
      case XenbusState.Closed:
      case XenbusState.Unknown:
        if (back === XenbusState.Initialised || back === XenbusState.Connected) await this.close(XenbusState.InitWait);
        break;
      case XenbusState.InitWait:
      case XenbusState.Reconfiguring:
      case XenbusState.Reconfigured:
        break;
    }
  }

  private async connect(): Promise<void> {
    try {
      await this.bind();
      if (this.stopped) {
        this.unbind();
        return;
      }
    } catch (e) {
      if (this.stopped) {
        this.unbind();
        return;
      }
      const errno = e instanceof BindError ? e.errno : -XEN_ERRNO.EIO;
      const why = e instanceof Error ? e.message : String(e);
      this.log(`${this.name}: cannot connect: ${why}`);
      this.unbind();
      await this.dev.devError(errno, why).catch(() => undefined);
      await this.close(XenbusState.Closed);
      return;
    }
    await this.dev.switchState(XenbusState.Connected);
  }

  /** Reads every connector the frontend published and binds it (displ_be's onBind). */
  private async bind(): Promise<void> {
    const dev = this.dev;
    const setups: ConnectorSetup[] = [];
    for (let i = 0; ; i++) {
      const base = `${i}`;
      const [reqRef, reqPort, evtRef, evtPort, resolution, uniqueId] = await Promise.all(
        [XENDISPL_FIELD_REQ_RING_REF, XENDISPL_FIELD_REQ_CHANNEL, XENDISPL_FIELD_EVT_RING_REF, XENDISPL_FIELD_EVT_CHANNEL, XENDISPL_FIELD_RESOLUTION, XENDISPL_FIELD_UNIQUE_ID].map((k) => dev.readOtherend(`${base}/${k}`)),
      );
      // Connectors the frontend set up (displ_be reads while <i> exists; Linux sets up at most 4).
      if (reqRef === undefined) break;
      if (i >= this.limits.maxConnectors) throw new BindError(`more than ${this.limits.maxConnectors} connectors`, -XEN_ERRNO.E2BIG);
      // The configuration must be the toolstack's (owned by this backend or dom0, read-only for
      // the guest): a guest owns <i>/ and could otherwise replace it with its own.
      const owner = await dev.xs.getPerms(`${dev.otherendPath}/${base}/${XENDISPL_FIELD_RESOLUTION}`).then((p) => p[0]?.domid, () => undefined);
      if (owner === this.frontendDomid) throw new BindError(`connector ${i}: its resolution was written by the guest, not the toolstack`, -XEN_ERRNO.EPERM);
      const res = parseResolution(resolution, this.limits.maxResolution);
      if (!res) throw new BindError(`connector ${i}: resolution "${resolution ?? ''}" is not <width>x<height> within 1..${this.limits.maxResolution}`, -XEN_ERRNO.EINVAL);
      setups.push({
        info: { frontendDomid: this.frontendDomid, devid: this.devid, index: i, uniqueId: uniqueId ?? String(i), ...res },
        reqRingRef: parseU32(reqRef, `connector ${i} ${XENDISPL_FIELD_REQ_RING_REF}`),
        reqPort: parseU32(reqPort, `connector ${i} ${XENDISPL_FIELD_REQ_CHANNEL}`),
        evtRingRef: parseU32(evtRef, `connector ${i} ${XENDISPL_FIELD_EVT_RING_REF}`),
        evtPort: parseU32(evtPort, `connector ${i} ${XENDISPL_FIELD_EVT_CHANNEL}`),
      });
    }
    if (setups.length === 0) throw new BindError('the frontend has no connectors', -XEN_ERRNO.ENODEV);
    const p = dev.platform;
    if (this.stopped) return;
    const store = new BufferStore(p, this.frontendDomid, this.limits, this.budget);
    this.store = store;
    const ctx = {
      platform: p,
      frontendDomid: this.frontendDomid,
      store,
      onError: (c: BackConnector, op: string, r: { status: number; why?: string }) => this.log(`${this.name} connector ${c.index}: ${op} failed (${r.status}): ${r.why ?? ''}`),
    };
    const turn = new TurnBudget();
    for (const setup of setups) {
      this.connectors.push(
        BackConnector.bind({
          platform: p,
          frontendDomid: this.frontendDomid,
          setup,
          store,
          limits: this.limits,
          openOutput: (info) => this.presenter.openConnector(info),
          handler: (conn, req) => handleRequest(ctx, conn, req),
          onProtocolError: (conn, why) => void this.protocolError(conn, why),
          turn,
        }),
      );
    }
    this.binds++;
    this.log(`${this.name}: connected, ${setups.length} connector(s): ${setups.map((s) => `${s.info.width}x${s.info.height}`).join(', ')}`);
  }

  private async protocolError(conn: BackConnector, why: string): Promise<void> {
    if (this.stopped) return;
    this.log(`${this.name} connector ${conn.index}: ${why}: disconnecting the frontend`);
    this.unbind();
    await this.dev.devError(-XEN_ERRNO.EIO, `connector ${conn.index}: ${why}`).catch(() => undefined);
    await this.close(XenbusState.Closed);
  }

  /** Releases every connector and buffer (mappings, channels, grants). */
  private unbind(): void {
    const conns = this.connectors;
    this.connectors = [];
    for (const c of conns) {
      try {
        c.close();
      } catch (e) {
        this.log(`${this.name}: closing connector ${c.index}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    this.store?.clear();
    this.store = undefined;
  }

  /** libxenbe's close(state): Closing, unbind, Closed, then `to`. */
  private async close(to: XenbusStateValue): Promise<void> {
    this.unbind();
    try {
      if (this.dev.state !== XenbusState.Closed) {
        await this.dev.switchState(XenbusState.Closing);
        await this.dev.switchState(XenbusState.Closed);
      }
      await this.dev.switchState(to);
    } catch (e) {
      // The toolstack removed the device meanwhile: the backend will stop this handler.
      this.log(`${this.name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /**
   * Stops serving: releases everything. `removed`: the toolstack deleted the device, so nothing
   * is written; otherwise the backend goes through Closing to Closed.
   */
  async stop(removed: boolean): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.unbind();
    if (!removed) {
      try {
        await this.dev.switchState(XenbusState.Closing);
        await this.dev.switchState(XenbusState.Closed);
      } catch {
        // gone meanwhile
      }
    }
    await this.dev.close();
  }
}

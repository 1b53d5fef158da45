/**
 * The vdispl frontend driver (Linux's drm/xen-front, without its limits of 4 connectors and
 * 4095x2047): follows the XenBus state machine of reference section 9, sets up one channel per
 * connector, and gives guest programs a Card while the backend is connected.
 *
 * | backend                    | frontend does                                              |
 * |----------------------------|------------------------------------------------------------|
 * | InitWait (we Initialising) | read be-alloc and the connectors, create the channels,     |
 * |                            | publish them in one transaction with state Initialised     |
 * | Connected (we Initialised) | start the channels, make the card, -> Connected            |
 * | Initialising / InitWait /  | the backend went away: unplug the card (every call rejects |
 * | Closed / Unknown while we  | with -ENODEV), free the channels and buffers, then         |
 * | are set up                 | -> Reconfiguring while the program still holds the card,   |
 * |                            | -> Initialising once it closes it (or at once if it had    |
 * |                            | none), and set up again when the backend is in InitWait    |
 *
 * `close()` removes the device as Linux does: Closing, wait for the backend to let go (InitWait
 * or Closed, up to 1 s), free everything, Closed.
 */
import { parseBeAlloc, parseResolution, XENDISPL_FIELD_BE_ALLOC, XENDISPL_FIELD_RESOLUTION, XENDISPL_FIELD_UNIQUE_ID } from '../abi/displif-constants.js';
import { XenbusState, type XenbusStateValue } from '../abi/xenbus-state.js';
import { XEN_ERRNO } from '../abi/xen-errno.js';
import { XenbusDevice } from '../xenbus/device.js';
import type { XenPlatform } from '../xenbus/xen-platform.js';
import { Card, type ConnectorConfig } from './card.js';
import { FrontChannel } from './channel.js';
import { DisplayError } from './errors.js';

export interface XenFrontOptions {
  /** Most connectors read from XenStore (default 64; Linux: 4). */
  readonly maxConnectors?: number;
  /** Largest resolution accepted in each direction (default 8192; Linux: 4095x2047). */
  readonly maxResolution?: number;
  /** Request timeout (default 3000 ms, XEN_DRM_FRONT_WAIT_BACK_MS). */
  readonly requestTimeoutMs?: number;
  /** Frame-done timeout (default 3100 ms). */
  readonly flipTimeoutMs?: number;
  readonly log?: (text: string) => void;
}

interface CardWaiter {
  readonly resolve: (c: Card) => void;
  readonly reject: (e: Error) => void;
}

export class XenFront {
  private card_: Card | undefined;
  /** An unplugged card the program has not closed yet (we stay in Reconfiguring meanwhile). */
  private held: Card | undefined;
  private channels: FrontChannel[] = [];
  private configs: ConnectorConfig[] = [];
  private beAlloc = false;
  private readonly waiters = new Set<CardWaiter>();
  private serial: Promise<void> = Promise.resolve();
  private closing = false;
  private readonly maxConnectors: number;
  private readonly maxResolution: number;
  private readonly requestTimeoutMs: number;
  private readonly flipTimeoutMs: number;
  private readonly log: (text: string) => void;
  /** Times the device connected (a reconnect after recovery counts again). */
  connects = 0;
  /** Cookies are unique for the device's whole life, across cards. */
  private nextCookie = 1n;

  private constructor(
    readonly dev: XenbusDevice,
    opts: XenFrontOptions,
  ) {
    this.maxConnectors = opts.maxConnectors ?? 64;
    this.maxResolution = opts.maxResolution ?? 8192;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 3000;
    this.flipTimeoutMs = opts.flipTimeoutMs ?? 3100;
    this.log = opts.log ?? (() => undefined);
  }

  /** Probes the device `nodename` (default the first vdispl device) and starts following the backend. */
  static async open(platform: XenPlatform, nodename = 'device/vdispl/0', opts: XenFrontOptions = {}): Promise<XenFront> {
    const dev = await XenbusDevice.open(platform, 'frontend', nodename);
    const f = new XenFront(dev, opts);
    if (dev.state !== XenbusState.Initialising) await dev.switchState(XenbusState.Initialising);
    await dev.watchOtherend((s) => f.run(() => f.onBackendState(s)));
    return f;
  }

  /** The card, while connected. */
  get card(): Card | undefined {
    return this.card_;
  }

  get state(): XenbusStateValue {
    return this.dev.state;
  }

  /** Resolves with the card once connected (at once if it is); rejects after `timeoutMs` or on abort. */
  waitCard(opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Card> {
    if (this.card_ && !this.card_.unplugged && !this.card_.isClosed) return Promise.resolve(this.card_);
    if (this.closing) return Promise.reject(new DisplayError(-XEN_ERRNO.ENODEV, 'the device is closed'));
    return new Promise<Card>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = (): void => {
        this.waiters.delete(w);
        if (timer) clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
      };
      const w: CardWaiter = {
        resolve: (c) => {
          done();
          resolve(c);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      };
      const onAbort = (): void => w.reject(new DisplayError(-XEN_ERRNO.EAGAIN, 'waiting for the display card was aborted'));
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.timeoutMs !== undefined) {
        timer = setTimeout(() => w.reject(new DisplayError(-XEN_ERRNO.ETIMEDOUT, `no display backend connected within ${opts.timeoutMs} ms`)), opts.timeoutMs);
      }
      this.waiters.add(w);
    });
  }

  /** Runs state work one step at a time (watch callbacks and card releases alike). */
  private run(fn: () => Promise<void>): Promise<void> {
    const next = this.serial.then(fn).catch((e: unknown) => {
      this.log(`${this.dev.relativeName}: ${e instanceof Error ? e.message : String(e)}`);
    });
    this.serial = next;
    return next;
  }

  private get setUp(): boolean {
    return this.channels.length > 0 || this.card_ !== undefined;
  }

  private async onBackendState(back: XenbusStateValue): Promise<void> {
    if (this.closing) return;
    const own = this.dev.state;
    switch (back) {
      case XenbusState.InitWait:
        if (own === XenbusState.Reconfiguring) return;
        // As Linux: only a connected device is torn down; channels published but not yet bound
        // are simply bound by the (new) backend.
        if (this.card_ || own === XenbusState.Connected) await this.disconnect('the backend restarted');
        if (this.dev.state === XenbusState.Initialising) await this.setup();
        return;
      case XenbusState.Initialising:
        if (own !== XenbusState.Reconfiguring && this.setUp) await this.disconnect('the backend restarted');
        return;
      case XenbusState.Connected:
        if (own === XenbusState.Initialised) await this.connect();
        return;
      case XenbusState.Closed:
      case XenbusState.Unknown:
        if (own !== XenbusState.Closed && own !== XenbusState.Reconfiguring && this.setUp) await this.disconnect(back === XenbusState.Closed ? 'the backend closed the device' : 'the backend went away');
        return;
      case XenbusState.Initialised:
      case XenbusState.Closing:
      case XenbusState.Reconfiguring:
      case XenbusState.Reconfigured:
        return;
    }
  }

  /** Reads the configuration, creates the channels and publishes them (backend in InitWait). */
  private async setup(): Promise<void> {
    const dev = this.dev;
    this.beAlloc = parseBeAlloc(await dev.read(XENDISPL_FIELD_BE_ALLOC));
    const configs: ConnectorConfig[] = [];
    for (let i = 0; i < this.maxConnectors; i++) {
      const text = await dev.read(`${i}/${XENDISPL_FIELD_RESOLUTION}`);
      if (text === undefined) break;
      const res = parseResolution(text, this.maxResolution);
      if (!res) {
        this.log(`${dev.relativeName}: connector ${i}: resolution "${text}" is not <width>x<height> within 1..${this.maxResolution}: ignored with the ones after it`);
        break;
      }
      configs.push({ ...res, uniqueId: (await dev.read(`${i}/${XENDISPL_FIELD_UNIQUE_ID}`)) ?? String(i) });
    }
    if (configs.length === 0) {
      await dev.devFatal(-XEN_ERRNO.ENODEV, 'no connectors configured');
      return;
    }
    const channels: FrontChannel[] = [];
    try {
      for (let i = 0; i < configs.length; i++) channels.push(FrontChannel.create(dev, i, this.requestTimeoutMs));
      this.channels = channels;
      this.configs = configs;
      await dev.publish(Object.assign({}, ...channels.map((c) => c.nodes())) as Record<string, number>, XenbusState.Initialised);
    } catch (e) {
      for (const c of channels) c.free();
      this.channels = [];
      const why = e instanceof Error ? e.message : String(e);
      await dev.devFatal(-XEN_ERRNO.ENOMEM, `setting up the channels: ${why}`);
    }
  }

  private newCard(): Card {
    return new Card({
      platform: this.dev.platform,
      backendDomid: this.dev.otherendId,
      beAlloc: this.beAlloc,
      connectors: this.configs,
      channels: this.channels,
      flipTimeoutMs: this.flipTimeoutMs,
      cookie: () => this.nextCookie++,
      onClose: (c) => void this.run(() => this.onCardClosed(c)),
    });
  }

  private async connect(): Promise<void> {
    for (const c of this.channels) c.connect();
    const card = this.newCard();
    this.card_ = card;
    await this.dev.switchState(XenbusState.Connected);
    this.connects++;
    for (const w of [...this.waiters]) w.resolve(card);
  }

  /** The backend went away: unplug the card, free the channels, go to Reconfiguring or Initialising. */
  private async disconnect(why: string): Promise<void> {
    const err = new DisplayError(-XEN_ERRNO.ENODEV, `display card unplugged: ${why}`);
    const card = this.card_;
    this.card_ = undefined;
    const channels = this.channels;
    this.channels = [];
    card?.unplug(err);
    for (const c of channels) c.free(err);
    this.log(`${this.dev.relativeName}: ${why}`);
    if (card && !card.isClosed) {
      this.held = card;
      await this.dev.switchState(XenbusState.Reconfiguring);
    } else {
      await this.dev.switchState(XenbusState.Initialising);
    }
  }

  private async onCardClosed(card: Card): Promise<void> {
    if (this.closing) return;
    if (card === this.card_) {
      // Let go while connected: the next program gets a fresh card over the same channels.
      this.card_ = this.newCard();
      for (const w of [...this.waiters]) w.resolve(this.card_);
      return;
    }
    if (card !== this.held) return;
    this.held = undefined;
    if (this.dev.state !== XenbusState.Reconfiguring) return;
    await this.dev.switchState(XenbusState.Initialising);
    if ((await this.dev.otherendStateNow()) === XenbusState.InitWait) await this.setup();
  }

  /** Removes the device: Closing, wait for the backend to let go, free everything, Closed. */
  async close(): Promise<void> {
    if (this.closing) return;
    await this.run(async () => {
      this.closing = true;
      const err = new DisplayError(-XEN_ERRNO.ENODEV, 'the display device was removed');
      for (const w of [...this.waiters]) w.reject(err);
      await this.dev.switchState(XenbusState.Closing).catch(() => undefined);
      for (let i = 0; i < 100; i++) {
        const s = await this.dev.otherendStateNow();
        if (s === XenbusState.InitWait || s === XenbusState.Closed || s === XenbusState.Unknown) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      const card = this.card_ ?? this.held;
      this.card_ = undefined;
      this.held = undefined;
      card?.unplug(err);
      for (const c of this.channels) c.free(err);
      this.channels = [];
      await this.dev.switchState(XenbusState.Closed).catch(() => undefined);
      await this.dev.close();
    });
  }
}

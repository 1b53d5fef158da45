/**
 * The display backend (displ_be): watches its `backend/vdispl` directory in XenStore and runs one
 * FrontendHandler per device the toolstack creates there, for any number of guests at once; a
 * device directory the toolstack removes stops its handler and releases everything it held.
 *
 *   const backend = await DisplayBackend.start({ platform, presenter: new MemoryPresenter() });
 *   ...
 *   await backend.stop();
 */
import { XENDISPL_DRIVER_NAME } from '../abi/displif-constants.js';
import { type XsClient, XsError, type XsWatch } from '../xenstore/client.js';
import { domainPath } from '../xenstore/path.js';
import type { XenPlatform } from '../xenbus/xen-platform.js';
import { BackendBudget, DEFAULT_LIMITS, type DisplayLimits } from './buffers.js';
import { type BackendLog, FrontendHandler } from './frontend-handler.js';
import { NullPresenter, type Presenter } from './presenter.js';

async function tryDirectory(xs: XsClient, path: string): Promise<string[]> {
  try {
    return await xs.directory(path);
  } catch (e) {
    if (e instanceof XsError && (e.code === 'ENOENT' || e.code === 'EACCES')) return [];
    throw e;
  }
}

export interface DisplayBackendOptions {
  readonly platform: XenPlatform;
  readonly presenter?: Presenter;
  readonly limits?: Partial<DisplayLimits>;
  readonly log?: BackendLog;
}

export class DisplayBackend {
  readonly root: string;
  private readonly handlers = new Map<string, FrontendHandler>();
  private readonly starting = new Map<string, Promise<void>>();
  private watch: XsWatch | undefined;
  private scanning: Promise<void> | undefined;
  private rescan = false;
  private stopped = false;
  readonly limits: DisplayLimits;
  readonly presenter: Presenter;
  /** Bytes of buffers held for all frontends together (limits.maxTotalBytes). */
  readonly budget: BackendBudget;
  /** Keys whose handler failed to start, and when: not retried for a second. */
  private readonly failed = new Map<string, number>();
  private retryTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(
    readonly platform: XenPlatform,
    presenter: Presenter,
    limits: DisplayLimits,
    private readonly log: BackendLog,
  ) {
    this.root = `${domainPath(platform.domid)}/backend/${XENDISPL_DRIVER_NAME}`;
    this.presenter = presenter;
    this.limits = limits;
    this.budget = new BackendBudget(limits.maxTotalBytes);
  }

  static async start(opts: DisplayBackendOptions): Promise<DisplayBackend> {
    const b = new DisplayBackend(opts.platform, opts.presenter ?? new NullPresenter(), { ...DEFAULT_LIMITS, ...opts.limits }, opts.log ?? (() => undefined));
    b.watch = await opts.platform.xenstore.watch(b.root, (e) => b.onWatch(e.path));
    await b.scan();
    return b;
  }

  /** Handlers by `<frontend domid>/<devid>`. */
  get frontends(): ReadonlyMap<string, FrontendHandler> {
    return this.handlers;
  }

  private onWatch(path: string): void {
    if (this.stopped) return;
    const rel = path === this.root ? [] : path.slice(this.root.length + 1).split('/');
    // Device creation and removal touch <domid>/<devid> or above; writes below a known device
    // (our own state changes) do not need a scan.
    if (rel.length >= 3 && this.handlers.has(`${rel[0]}/${rel[1]}`)) return;
    void this.scan();
  }

  /** Finds devices to start and handlers to stop; one scan at a time, repeated if asked meanwhile. */
  scan(): Promise<void> {
    if (this.scanning) {
      this.rescan = true;
      return this.scanning;
    }
    this.scanning = (async () => {
      do {
        this.rescan = false;
        await this.scanOnce().catch((e: unknown) => this.log(`scanning ${this.root}: ${e instanceof Error ? e.message : String(e)}`));
      } while (this.rescan && !this.stopped);
    })().finally(() => {
      this.scanning = undefined;
    });
    return this.scanning;
  }

  private async scanOnce(): Promise<void> {
    const xs = this.platform.xenstore;
    const present = new Set<string>();
    const domids = await tryDirectory(xs, this.root);
    for (const d of domids) {
      if (!/^\d+$/.test(d)) continue;
      for (const n of await tryDirectory(xs, `${this.root}/${d}`)) {
        if (!/^\d+$/.test(n)) continue;
        const key = `${d}/${n}`;
        if ((await xs.tryRead(`${this.root}/${key}/frontend`)) === undefined) continue;
        present.add(key);
        const failedAt = this.failed.get(key);
        if (failedAt !== undefined && Date.now() - failedAt < 1000) {
          this.retryTimer ??= setTimeout(() => {
            this.retryTimer = undefined;
            void this.scan();
          }, 1000);
          continue;
        }
        if (!this.handlers.has(key) && !this.starting.has(key) && !this.stopped) this.startHandler(key, Number(n));
      }
    }
    for (const [key, h] of [...this.handlers]) {
      if (present.has(key)) continue;
      this.handlers.delete(key);
      this.log(`${h.name}: device removed`);
      await h.stop(true);
    }
  }

  private startHandler(key: string, devid: number): void {
    let ok = false;
    const p = FrontendHandler.start({ platform: this.platform, backendPath: `${this.root}/${key}`, devid, presenter: this.presenter, limits: this.limits, budget: this.budget, log: this.log })
      .then(async (h) => {
        ok = true;
        this.failed.delete(key);
        if (this.stopped) await h.stop(false);
        else this.handlers.set(key, h);
      })
      .catch((e: unknown) => {
        this.failed.set(key, Date.now());
        this.log(`vdispl ${key}: ${e instanceof Error ? e.message : String(e)}`);
      })
      .finally(() => {
        this.starting.delete(key);
        // Removed while starting? The next scan stops it. (A failure is retried after a second.)
        if (ok) void this.scan();
      });
    this.starting.set(key, p);
  }

  /** Stops every handler (their devices go to Closed) and the watch. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.watch?.unwatch().catch(() => undefined);
    await Promise.all(this.starting.values());
    await this.scanning;
    const hs = [...this.handlers.values()];
    this.handlers.clear();
    await Promise.all(hs.map((h) => h.stop(false)));
  }
}

/**
 * An emulated machine, owned by the thread that creates it (the toolstack's): shared memory,
 * dom0, and domains whose code runs in worker threads or in this thread with the same API.
 * Destroying a domain, or its worker exiting or crashing, reclaims everything it held.
 */
import type { TransferListItem, Worker } from 'node:worker_threads';
import { XEN_ERRNO, xenErrnoName } from '../abi/xen-errno.js';
import { accountingDiff, type MachineAccounting, machineAccounting } from './accounting.js';
import { type DomainContext, type DomainExit, type DomainMain, formatError, loadDomainMain, type StartInfo } from './domain-context.js';
import type { DomainWorkerData } from './domain-worker.js';
import { createDomain, markDying, teardown } from './domains.js';
import { EmulatedPlatform, type EmulatedPlatformOptions } from './emulated-platform.js';
import {
  checkDomainLimits, checkMachineConfig, D_CPU, D_FLAGS, DOMFLAG_OWN_THREAD, DEFAULT_DOMAIN_LIMITS, DEFAULT_MACHINE_CONFIG,
  type DomainLimits, H_LOCK_BREAKS, type MachineConfig, PAGE_SIZE,
} from './layout.js';
import { acquire, breakLock, release } from './lock.js';
import { formatInspect } from './log-format.js';
import { createSharedMachine, MachineState } from './state.js';
import { startWorker } from './worker-bootstrap.js';

export class MachineError extends Error {
  constructor(
    message: string,
    readonly errno?: number,
  ) {
    super(message);
    this.name = 'MachineError';
  }
}

export type LogSink = (domid: number, name: string, text: string) => void;

export interface MachineOptions extends Partial<MachineConfig> {
  /** Defaults for every domain's limits. */
  readonly limits?: Partial<DomainLimits>;
  /** Where domains' ctx.log goes (default: stderr, prefixed with the domain). */
  readonly log?: LogSink;
}

interface DomainSpecBase {
  readonly name?: string;
  /** A specific domid (default: the next free one). */
  readonly domid?: number;
  readonly privileged?: boolean;
  readonly limits?: Partial<DomainLimits>;
  /** Passed to main as ctx.args (structured-cloned into a worker). */
  readonly args?: unknown;
  /** Event loop spin before sleeping, in microseconds (default 0). */
  readonly spinMicros?: number;
  /**
   * The domain builder's step: runs once the domain exists and before its code starts (populate
   * special pages, seed grants, allocate ports); what it returns is the domain's ctx.startInfo.
   * Throwing destroys the domain and rejects createDomain.
   */
  readonly prepare?: (domid: number) => StartInfo | Promise<StartInfo>;
}

export interface WorkerDomainSpec extends DomainSpecBase {
  readonly mode: 'worker';
  /** ES module (URL or href) whose default export is main(ctx). */
  readonly module: URL | string;
  /** Objects in `args` to transfer rather than clone (e.g. a MessagePort to talk to the domain). */
  readonly transfer?: readonly TransferListItem[];
}

export interface LocalDomainSpec extends DomainSpecBase {
  readonly mode: 'local';
  /** main(ctx) to run in this thread; or a module; or neither (the domain idles until destroyed). */
  readonly main?: DomainMain;
  readonly module?: URL | string;
  /** Event loop options (autoStart false: drive it with platform.poll()). */
  readonly platform?: Omit<EmulatedPlatformOptions, 'spinMicros'>;
}

export type DomainSpec = WorkerDomainSpec | LocalDomainSpec;

/** A domain as its builder sees it. */
export class DomainHandle {
  /** Resolves once the domain is gone and its resources reclaimed. */
  readonly exited: Promise<DomainExit>;
  private settle!: (e: DomainExit) => void;
  private ended: DomainExit | undefined;
  readonly abort = new AbortController();
  /** For worker domains, resolves when its module is loaded and main is about to run. */
  ready: Promise<void> = Promise.resolve();
  /** @internal The worker thread has exited. */
  threadGone = false;

  constructor(
    readonly domid: number,
    readonly name: string,
    readonly mode: 'worker' | 'local',
    /** The local domain's platform (undefined for worker domains: theirs lives in the worker). */
    readonly platform: EmulatedPlatform | undefined,
    readonly worker: Worker | undefined,
  ) {
    this.exited = new Promise((r) => (this.settle = r));
  }

  get exit(): DomainExit | undefined {
    return this.ended;
  }

  /** @internal */
  finish(e: DomainExit): void {
    if (this.ended) return;
    this.ended = e;
    this.settle(e);
  }
}

export class Machine {
  readonly state: MachineState;
  readonly config: MachineConfig;
  private readonly limits: DomainLimits;
  private readonly domains = new Map<number, DomainHandle>();
  private readonly log: LogSink;
  /** dom0: privileged, in this thread. */
  readonly dom0: DomainHandle;

  constructor(opts: MachineOptions = {}) {
    const config: MachineConfig = {
      memoryMiB: opts.memoryMiB ?? DEFAULT_MACHINE_CONFIG.memoryMiB,
      maxDomains: opts.maxDomains ?? DEFAULT_MACHINE_CONFIG.maxDomains,
    };
    const bad = checkMachineConfig(config);
    if (bad) throw new MachineError(bad, -XEN_ERRNO.EINVAL);
    const limits = { ...DEFAULT_DOMAIN_LIMITS, ...opts.limits };
    const badLimits = checkDomainLimits(limits);
    if (badLimits) throw new MachineError(badLimits, -XEN_ERRNO.EINVAL);
    this.config = config;
    this.limits = limits;
    this.log = opts.log ?? ((domid, name, text) => process.stderr.write(`[d${domid} ${name}] ${text}\n`));
    this.state = new MachineState(createSharedMachine((config.memoryMiB * 1024 * 1024) / PAGE_SIZE, config.maxDomains));
    this.dom0 = this.createLocalSync({ mode: 'local', name: 'dom0', domid: 0, privileged: true });
  }

  private locked<T>(fn: () => T): T {
    const s = this.state;
    acquire(s.ctl, s.cpu, s.isDyingWorkerCpu);
    try {
      return fn();
    } finally {
      release(s.ctl, s.cpu);
    }
  }

  private allocate(spec: DomainSpec): number {
    const limits = { ...this.limits, ...spec.limits };
    const bad = checkDomainLimits(limits);
    if (bad) throw new MachineError(bad, -XEN_ERRNO.EINVAL);
    const domid = this.locked(() =>
      createDomain(this.state, {
        ...(spec.domid !== undefined ? { domid: spec.domid } : {}),
        privileged: spec.privileged ?? false,
        limits,
      }),
    );
    if (domid < 0) {
      const why = { [-XEN_ERRNO.EEXIST]: `domid ${spec.domid} is in use`, [-XEN_ERRNO.ENOSPC]: 'no free domain slot or domid', [-XEN_ERRNO.ENOMEM]: 'out of machine memory' }[domid];
      throw new MachineError(`cannot create domain${spec.name ? ` ${spec.name}` : ''}: ${why ?? xenErrnoName(domid) ?? domid}`, domid);
    }
    return domid;
  }

  private createLocalSync(spec: LocalDomainSpec): DomainHandle {
    const domid = this.allocate(spec);
    const name = spec.name ?? `d${domid}`;
    const platform = new EmulatedPlatform(this.state, domid, {
      ...spec.platform,
      ...(spec.spinMicros !== undefined ? { spinMicros: spec.spinMicros } : {}),
      onError: spec.platform?.onError ?? ((err, p) => this.log(domid, name, `event handler for port ${p} threw: ${formatError(err)}`)),
    });
    platform.hypercalls.registerCpu();
    const h = new DomainHandle(domid, name, 'local', platform, undefined);
    this.domains.set(domid, h);
    return h;
  }

  /** Creates a domain and starts its code. Rejects with MachineError if it cannot be created. */
  async createDomain(spec: DomainSpec): Promise<DomainHandle> {
    if (spec.mode === 'local') {
      const h = this.createLocalSync(spec);
      const startInfo = await this.prepare(h.domid, h.name, spec);
      if (spec.main || spec.module) {
        const ctx: DomainContext = {
          domid: h.domid,
          name: h.name,
          platform: h.platform!,
          args: spec.args,
          startInfo,
          signal: h.abort.signal,
          log: (...parts) => this.log(h.domid, h.name, formatInspect(parts)),
        };
        let main: DomainMain;
        try {
          main = spec.main ?? (await loadDomainMain(String(spec.module)));
        } catch (err) {
          await this.reclaim(h, { reason: 'crash', error: formatError(err) });
          throw new MachineError(`domain ${h.name}: ${err instanceof Error ? err.message : String(err)}`);
        }
        void (async () => {
          try {
            const value = await main(ctx);
            await this.reclaim(h, { reason: 'poweroff', value });
          } catch (err) {
            await this.reclaim(h, { reason: 'crash', error: formatError(err) });
          }
        })();
      }
      return h;
    }
    const domid = this.allocate(spec);
    const name = spec.name ?? `d${domid}`;
    const module = String(spec.module);
    const startInfo = await this.prepare(domid, name, spec);
    let worker: Worker;
    try {
      // The worker's cpu is known before its first hypercall: if it is terminated holding the
      // lock, the lock can be taken back from it (a cpu recorded by the worker itself would
      // leave a window where it holds the lock as cpu "0").
      const cpu = this.state.allocateCpu();
      this.locked(() => {
        const b = this.state.anySlot(domid);
        this.state.ctl[b + D_CPU] = cpu;
        this.state.ctl[b + D_FLAGS]! |= DOMFLAG_OWN_THREAD;
      });
      const data: DomainWorkerData = { shared: this.state.shared, domid, name, module, args: spec.args, spinMicros: spec.spinMicros ?? 0, startInfo, cpu };
      worker = startWorker(new URL('./domain-worker' + (import.meta.url.endsWith('.ts') ? '.ts' : '.js'), import.meta.url), { workerData: data, name: `vdispl ${name}`, ...(spec.transfer ? { transferList: [...spec.transfer] } : {}) }, [module]);
    } catch (err) {
      this.locked(() => markDying(this.state, domid) && teardown(this.state, domid));
      // prepare may have set things up for it (xenstored maps its ring): let them go.
      this.notifyGone(domid, { reason: 'crash', error: formatError(err) });
      throw new MachineError(`cannot start domain ${name}: ${formatError(err)}`);
    }
    const h = new DomainHandle(domid, name, 'worker', undefined, worker);
    this.domains.set(domid, h);
    let reported: DomainExit | undefined;
    h.ready = new Promise((resolve, reject) => {
      worker.on('message', (m: { type: string; text?: string; reason?: DomainExit['reason']; error?: string }) => {
        if (m.type === 'ready') resolve();
        else if (m.type === 'log') this.log(domid, name, m.text ?? '');
        else if (m.type === 'exit') {
          // main settled: the domain is over even if the worker still has timers pending.
          reported = { reason: m.reason ?? 'crash', ...(m.error !== undefined ? { error: m.error } : {}) };
          void this.reclaim(h, reported);
        }
      });
      worker.on('error', (err) => {
        reported ??= { reason: 'crash', error: formatError(err) };
      });
      worker.on('exit', (code) => {
        h.threadGone = true;
        const exit = reported ?? { reason: 'crash' as const, error: `worker exited with code ${code}` };
        reject(new MachineError(`domain ${name} ended before it was ready: ${exit.error ?? exit.reason}`));
        void this.reclaim(h, exit);
      });
    });
    h.ready.catch(() => undefined);
    return h;
  }

  /** Runs spec.prepare; on failure tears the new domain down and throws a MachineError. */
  private async prepare(domid: number, name: string, spec: DomainSpec): Promise<StartInfo> {
    if (!spec.prepare) return {};
    try {
      return await spec.prepare(domid);
    } catch (err) {
      const h = this.domains.get(domid);
      if (h) await this.reclaim(h, { reason: 'crash', error: formatError(err) });
      else {
        this.locked(() => markDying(this.state, domid) && teardown(this.state, domid));
        this.notifyGone(domid, { reason: 'crash', error: formatError(err) });
      }
      throw new MachineError(`cannot build domain ${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private readonly goneListeners = new Set<(domid: number, exit: DomainExit) => void>();

  /**
   * Calls `listener` after each domain is destroyed and its resources reclaimed, like the
   * VIRQ_DOM_EXC xenstored listens to. Returns a function that removes the listener.
   */
  onDomainGone(listener: (domid: number, exit: DomainExit) => void): () => void {
    this.goneListeners.add(listener);
    return () => this.goneListeners.delete(listener);
  }

  private notifyGone(domid: number, exit: DomainExit = { reason: 'destroyed' }): void {
    for (const l of this.goneListeners) {
      try {
        l(domid, exit);
      } catch (err) {
        this.log(0, 'dom0', `domain-gone listener threw: ${formatError(err)}`);
      }
    }
  }

  /** All domains this machine built that still exist, by domid. */
  get handles(): ReadonlyMap<number, DomainHandle> {
    return this.domains;
  }

  /** Asks a domain to shut down (aborts ctx.signal); destroys it if it has not ended within `timeoutMs`. */
  async shutdownDomain(domid: number, timeoutMs = 5000): Promise<DomainExit> {
    const h = this.domains.get(domid);
    if (!h) throw new MachineError(`no domain ${domid}`, -XEN_ERRNO.ESRCH);
    h.abort.abort();
    h.worker?.postMessage({ type: 'shutdown' });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
    const r = await Promise.race([h.exited, timeout]);
    clearTimeout(timer);
    return r === 'timeout' ? this.destroyDomain(domid) : r;
  }

  /** Destroys a domain at once (xl destroy): stops its code and reclaims everything it held. */
  async destroyDomain(domid: number): Promise<DomainExit> {
    const h = this.domains.get(domid);
    if (!h) throw new MachineError(`no domain ${domid}`, -XEN_ERRNO.ESRCH);
    return this.reclaim(h, { reason: 'destroyed' });
  }

  private readonly reclaiming = new Map<DomainHandle, Promise<DomainExit>>();

  private reclaim(h: DomainHandle, exit: DomainExit): Promise<DomainExit> {
    const inFlight = this.reclaiming.get(h);
    if (inFlight) return inFlight;
    if (h.exit) return Promise.resolve(h.exit);
    const p = this.doReclaim(h, exit);
    this.reclaiming.set(h, p);
    return p;
  }

  private async doReclaim(h: DomainHandle, exit: DomainExit): Promise<DomainExit> {
    const s = this.state;
    if (h.worker && h.threadGone) {
      // The thread is gone: if it died inside a hypercall it still holds the lock, possibly with
      // half-done changes (it was running, not dying). Take the lock back before anything else.
      const base = s.anySlot(h.domid);
      const c = base >= 0 ? Atomics.load(s.ctl, base + D_CPU) : 0;
      if (c !== 0 && breakLock(s.ctl, c)) Atomics.add(s.ctl, H_LOCK_BREAKS, 1);
    }
    // Phase 1: from now on every hypercall by or on the domain fails, and the worker's cpu is known.
    const cpu = this.locked(() => {
      const base = s.anySlot(h.domid);
      const c = base >= 0 ? s.ctl[base + D_CPU]! : 0;
      markDying(s, h.domid);
      return c;
    });
    h.abort.abort();
    if (h.worker) {
      await h.worker.terminate();
      // Terminated inside a hypercall after it was marked dying: it changed nothing (hypercalls
      // check their caller first), so this break is benign and not counted.
      breakLock(s.ctl, cpu);
    } else {
      await h.platform?.close();
    }
    this.locked(() => teardown(s, h.domid));
    this.domains.delete(h.domid);
    this.reclaiming.delete(h);
    h.finish(exit);
    if (h !== this.dom0) this.notifyGone(h.domid, exit);
    return exit;
  }

  /** Accounting snapshot of the whole machine (compare with accountingDiff). */
  accounting(): MachineAccounting {
    return this.locked(() => machineAccounting(this.state));
  }

  /** Differences between `baseline` and now ([] if nothing leaked). */
  leaks(baseline: MachineAccounting): string[] {
    return accountingDiff(baseline, this.accounting());
  }

  /** Destroys every domain, dom0 last. */
  async close(): Promise<void> {
    const others = [...this.domains.values()].filter((h) => h !== this.dom0);
    await Promise.all(others.map((h) => this.reclaim(h, { reason: 'destroyed' })));
    await this.reclaim(this.dom0, { reason: 'destroyed' });
  }
}

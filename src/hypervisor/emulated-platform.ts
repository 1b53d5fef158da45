/**
 * The platform interface on the emulated hypervisor, for one domain in one thread: hypercalls
 * bound to the domain, its page allocator, its guest grant table and its event loop.
 */
import { DOMID_FIRST_RESERVED } from '../abi/event-channel.js';
import { GNTST_bad_domain, GNTST_bad_gntref, GNTST_bad_handle, GNTST_bad_virt_addr, GNTST_okay } from '../abi/grant-table.js';
import { EventLoop } from './event-loop.js';
import { GrantMapBatch, GrantUnmapBatch } from './grant-ops.js';
import { type DeferredOptions, GrantTableClient } from './gnttab-client.js';
import { Hypercalls } from './hypercalls.js';
import { specialGfnBase } from './layout.js';
import { PageAllocator } from './page-allocator.js';
import type {
  GrantMapping, MapResult, Platform, PlatformEvents, PlatformGrantMaps, PlatformMemory, PortHandler,
} from './platform.js';
import type { MachineState } from './state.js';

export interface EmulatedPlatformOptions {
  /** Event loop: spin this many microseconds before sleeping (0 = never). */
  readonly spinMicros?: number;
  /** Start the event loop at once (default true); otherwise call start() or poll(). */
  readonly autoStart?: boolean;
  readonly deferred?: DeferredOptions;
  /** Where handler exceptions go. */
  readonly onError?: (err: unknown, port: number) => void;
}

class EmulatedMapping implements GrantMapping {
  private view: Uint8Array | undefined | null = null;
  /** False once unmapped: a second unmap must not reuse handles the hypervisor may have reissued. */
  live = true;

  constructor(
    /** The platform that mapped it: handles index that domain's maptrack, only it may unmap. */
    readonly owner: object,
    private readonly s: MachineState,
    readonly domid: number,
    readonly readonly: boolean,
    readonly refs: Uint32Array,
    readonly handles: Uint32Array,
    readonly mfns: Int32Array,
    readonly hostGfns: Int32Array | undefined,
  ) {}

  get count(): number {
    return this.refs.length;
  }

  page(i: number): Uint8Array {
    const mfn = this.mfns[i];
    if (mfn === undefined || mfn < 0) throw new RangeError(`page ${i} is not part of this mapping`);
    return this.s.frame(mfn);
  }

  get contiguous(): Uint8Array | undefined {
    if (this.view === null) {
      const m = this.mfns;
      let adjacent = m.length > 0;
      for (let i = 1; adjacent && i < m.length; i++) adjacent = m[i] === m[0]! + i;
      this.view = adjacent ? this.s.frames(m[0]!, m.length) : undefined;
    }
    return this.view;
  }

  /** Marks the mapping dead so views are no longer handed out. */
  kill(): void {
    this.live = false;
    this.mfns.fill(-1);
    this.view = undefined;
  }
}

export class EmulatedPlatform implements Platform {
  readonly hypercalls: Hypercalls;
  readonly pages: PageAllocator;
  readonly grants: GrantTableClient;
  readonly loop: EventLoop;
  readonly memory: PlatformMemory;
  readonly maps: PlatformGrantMaps;
  readonly events: PlatformEvents;

  constructor(
    readonly state: MachineState,
    readonly domid: number,
    opts: EmulatedPlatformOptions = {},
  ) {
    const hc = new Hypercalls(state, domid);
    this.hypercalls = hc;
    const acct = hc.accounting();
    const words = hc.eventWords();
    if (!acct || !words) throw new Error(`domain ${domid} is not running`);
    this.pages = new PageAllocator(hc, specialGfnBase(acct.gfnLimit));
    const onError = opts.onError;
    this.grants = new GrantTableClient(hc, {
      ...opts.deferred,
      ...(onError && !opts.deferred?.onError ? { onError: (e: unknown) => onError(e, -1) } : {}),
    });
    this.loop = new EventLoop(words, {
      maxPorts: acct.maxPorts,
      alive: () => hc.isRunningUnlocked(),
      ...(opts.spinMicros !== undefined ? { spinMicros: opts.spinMicros } : {}),
      ...(opts.onError ? { onError: opts.onError } : {}),
    });
    const pages = this.pages;
    this.memory = {
      allocPages: (n, contiguous) => pages.allocPages(n, contiguous),
      freePages: (gfns) => pages.freePages(gfns),
      allocBallooned: (n) => pages.allocBallooned(n),
      freeBallooned: (gfns) => pages.freeBallooned(gfns),
      page: (gfn) => hc.pageView(gfn),
      contiguous: (gfns) => hc.contiguousView(gfns),
    };
    this.maps = {
      map: (domid, refs, readonly, hostGfns) => this.map(domid, refs, readonly, hostGfns),
      unmap: (m) => this.unmap(m),
      copy: (ops) => hc.gnttabCopy(ops),
    };
    const loop = this.loop;
    this.events = {
      allocUnbound: (remote) => hc.evtchnAllocUnbound(remote),
      bindInterdomain: (remote, port) => hc.evtchnBindInterdomain(remote, port),
      notify: (port) => hc.evtchnSend(port),
      close: (port) => {
        loop.off(port);
        return hc.evtchnClose(port);
      },
      status: (port) => hc.evtchnStatus(port),
      mask: (port) => hc.evtchnMask(port),
      unmask: (port) => hc.evtchnUnmask(port),
      on: (port: number, h: PortHandler) => loop.on(port, h),
      off: (port) => loop.off(port),
    };
    if (opts.autoStart ?? true) this.loop.start();
  }

  private map(domid: number, refs: ArrayLike<number>, readonly: boolean, hostGfns?: ArrayLike<number>): MapResult {
    if (!Number.isInteger(domid) || domid < 0 || domid >= DOMID_FIRST_RESERVED) return { ok: false, status: GNTST_bad_domain, index: 0 };
    for (let i = 0; i < refs.length; i++) {
      const r = refs[i]!;
      if (!Number.isInteger(r) || r < 0 || r > 0xffffffff) return { ok: false, status: GNTST_bad_gntref, index: i };
    }
    if (hostGfns) {
      for (let i = 0; i < refs.length; i++) {
        const g = i < hostGfns.length ? hostGfns[i]! : -1;
        if (!Number.isInteger(g) || g < 0 || g > 0x7fffffff) return { ok: false, status: GNTST_bad_virt_addr, index: i };
      }
      if (hostGfns.length !== refs.length) return { ok: false, status: GNTST_bad_virt_addr, index: refs.length };
    }
    const b = GrantMapBatch.of(domid, refs, readonly, hostGfns);
    this.hypercalls.gnttabMap(b);
    let bad = -1;
    for (let i = 0; i < b.count; i++) {
      if (b.status[i] !== GNTST_okay) {
        bad = i;
        break;
      }
    }
    if (bad >= 0) {
      const ok: number[] = [];
      for (let i = 0; i < b.count; i++) if (b.status[i] === GNTST_okay) ok.push(b.handle[i]!);
      if (ok.length > 0) this.hypercalls.gnttabUnmap(GrantUnmapBatch.of(ok));
      return { ok: false, status: b.status[bad]!, index: bad };
    }
    const mapping = new EmulatedMapping(this, this.state, domid, readonly, b.ref, b.handle, b.mfn, hostGfns ? b.hostGfn : undefined);
    return { ok: true, mapping };
  }

  private unmap(m: GrantMapping): number {
    if (!(m instanceof EmulatedMapping) || !m.live || m.owner !== this) return GNTST_bad_handle;
    const u = GrantUnmapBatch.of(m.handles);
    this.hypercalls.gnttabUnmap(u);
    m.kill();
    for (let i = 0; i < u.count; i++) if (u.status[i] !== GNTST_okay) return u.status[i]!;
    return GNTST_okay;
  }

  /** Dispatches pending events now (deterministic tests). */
  poll(): number {
    return this.loop.poll();
  }

  start(): void {
    this.loop.start();
  }

  /** Stops the event loop and the deferred-grant timer. The domain's state is the hypervisor's to reclaim. */
  async close(): Promise<void> {
    this.grants.close();
    await this.loop.stop();
  }
}

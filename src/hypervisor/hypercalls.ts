/**
 * The hypercall API of one domain, usable from any thread attached to the machine. Every call
 * takes the big lock, checks the caller is still the running domain it was created for, validates
 * its arguments and returns what Xen would: a GNTST_* per grant operation, a port or -errno for
 * event channels, a count or -errno for memory operations. Nothing here throws at a caller.
 */
import { DOMID_SELF } from '../abi/event-channel.js';
import { GNTST_bad_domain, GNTST_okay } from '../abi/grant-table.js';
import { XEN_ERRNO } from '../abi/xen-errno.js';
import { type DomainAccounting, domainAccounting } from './accounting.js';
import { reapIfIdle } from './domains.js';
import * as evtchn from './event-channels.js';
import type { EvtchnStatus } from './event-channels.js';
import type { GrantCopyOp, GrantMapBatch, GrantUnmapBatch } from './grant-ops.js';
import * as gnttab from './grant-table.js';
import { D_CPU, D_CREATED_GEN, D_FLAGS, DOMFLAG_PRIVILEGED, D_GNT_FRAMES, D_GNT_MFNS, D_MAX_GNT_FRAMES, D_SHINFO_MFN, D_STATE, D_UPCALL, DomainState, PAGE_SIZE } from './layout.js';
import { acquire, release } from './lock.js';
import * as memory from './memory.js';
import type { MachineState } from './state.js';

const ESRCH = -XEN_ERRNO.ESRCH;

export class Hypercalls {
  private readonly gen: number;
  private readonly reapIdle = (g: number): void => reapIfIdle(this.s, g);

  /** Binds to running domain `domid`; throws if it does not exist (a programming error, not a hypercall). */
  constructor(
    readonly s: MachineState,
    readonly domid: number,
  ) {
    const base = s.running(domid);
    if (base < 0) throw new Error(`domain ${domid} is not running`);
    this.gen = s.ctl[base + D_CREATED_GEN]!;
  }

  /** Runs `fn` under the lock with the caller's slot, or returns `dead` if the caller is gone. */
  private call<T, D>(dead: D, fn: (base: number) => T): T | D {
    const { s } = this;
    acquire(s.ctl, s.cpu, s.isDyingWorkerCpu);
    try {
      // First, before changing anything: a dying domain's thread may lose the lock to another.
      const base = s.running(this.domid);
      if (base < 0 || s.ctl[base + D_CREATED_GEN] !== this.gen) return dead;
      return fn(base);
    } finally {
      release(s.ctl, s.cpu);
    }
  }

  /**
   * Records the calling thread as the one running this (local) domain. A worker domain's cpu is
   * recorded by the Machine before its thread starts, with DOMFLAG_OWN_THREAD.
   */
  registerCpu(): void {
    this.call(undefined, (b) => {
      this.s.ctl[b + D_CPU] = this.s.cpu;
    });
  }

  /** Whether this domain still exists and runs. */
  get alive(): boolean {
    return this.call(false, () => true);
  }

  // ---- memory (XENMEM_*) ----

  /** XENMEM_populate_physmap: count populated, or -errno if none. `contiguous`: adjacent frames, all or nothing. */
  populatePhysmap(gfns: ArrayLike<number>, contiguous = false): number {
    return this.call(ESRCH, (b) => memory.populate(this.s, b, gfns, contiguous));
  }

  /** XENMEM_decrease_reservation: count released, or -EINVAL if the first gfn is not own RAM. */
  decreaseReservation(gfns: ArrayLike<number>): number {
    return this.call(ESRCH, (b) => memory.release(this.s, b, gfns));
  }

  /** The mfn behind a gfn of this domain (own RAM or a grant mapped there), or -1. */
  gfnToMfn(gfn: number): number {
    return this.call(-1, (b) => memory.gfnToMfn(this.s, b, gfn));
  }

  /** mfns of many gfns at once (-1 for holes). */
  gfnsToMfns(gfns: ArrayLike<number>, out: Int32Array = new Int32Array(gfns.length)): Int32Array {
    this.call(undefined, (b) => {
      for (let i = 0; i < gfns.length; i++) out[i] = memory.gfnToMfn(this.s, b, gfns[i]!);
    });
    return out;
  }

  /** Zero-copy view of one page the domain can reach (own RAM or a grant mapped there). */
  pageView(gfn: number): Uint8Array | undefined {
    const mfn = this.gfnToMfn(gfn);
    return mfn < 0 ? undefined : this.s.frame(mfn);
  }

  /** One zero-copy view of several pages if their frames are adjacent, in order; else undefined. */
  contiguousView(gfns: ArrayLike<number>): Uint8Array | undefined {
    if (gfns.length === 0) return undefined;
    const mfns = this.gfnsToMfns(gfns);
    for (let i = 0; i < mfns.length; i++) if (mfns[i]! < 0 || mfns[i] !== mfns[0]! + i) return undefined;
    return this.s.frames(mfns[0]!, mfns.length);
  }

  // ---- domain builder (privileged: what libxenguest does to a new domain before it runs) ----

  /** The running domain `dom`'s slot if the caller is privileged, else -errno. */
  private target(b: number, dom: number): number {
    if ((this.s.ctl[b + D_FLAGS]! & DOMFLAG_PRIVILEGED) === 0) return -XEN_ERRNO.EPERM;
    const t = this.s.running(dom);
    return t < 0 ? ESRCH : t;
  }

  /** XENMEM_populate_physmap on another domain's behalf (its quota, its frames). */
  populatePhysmapFor(dom: number, gfns: ArrayLike<number>): number {
    return this.call(ESRCH, (b) => {
      const t = this.target(b, dom);
      return t < 0 ? t : memory.populate(this.s, t, gfns, false);
    });
  }

  /**
   * Writes grant entry `ref` of `dom`'s table so that `grantee` may map `gfn` read-write, growing
   * the table if needed (xc_dom_gnttab_seed, which fills GNTTAB_RESERVED_CONSOLE/XENSTORE).
   * Returns 0 or -errno.
   */
  gnttabSeed(dom: number, ref: number, grantee: number, gfn: number): number {
    return this.call(ESRCH, (b) => {
      const t = this.target(b, dom);
      return t < 0 ? t : gnttab.seedEntry(this.s, t, ref, grantee, gfn);
    });
  }

  // ---- grant table (GNTTABOP_*) ----

  /** GNTTABOP_query_size. */
  gnttabQuerySize(): { status: number; nrFrames: number; maxNrFrames: number } {
    return this.call({ status: GNTST_bad_domain, nrFrames: 0, maxNrFrames: 0 }, (b) => ({
      status: GNTST_okay,
      nrFrames: this.s.ctl[b + D_GNT_FRAMES]!,
      maxNrFrames: this.s.ctl[b + D_MAX_GNT_FRAMES]!,
    }));
  }

  /** GNTTABOP_setup_table: grows the table to `nrFrames` frames. Returns a GNTST. */
  gnttabSetupTable(nrFrames: number): number {
    return this.call(GNTST_bad_domain, (b) => gnttab.growTable(this.s, b, nrFrames));
  }

  /**
   * The domain's own grant table frames as Int32 views (entry ref = frame*512 + i at words 2i,
   * 2i+1), as Xen maps them into the guest. Grown frames appear in later calls.
   */
  gnttabFrames(): Int32Array[] {
    return this.call([], (b) => {
      const n = this.s.ctl[b + D_GNT_FRAMES]!;
      const out: Int32Array[] = [];
      for (let i = 0; i < n; i++) out.push(new Int32Array(this.s.shared.memory, this.s.ctl[b + D_GNT_MFNS + i]! * PAGE_SIZE, 1024));
      return out;
    });
  }

  /** GNTTABOP_map_grant_ref for each operation of the batch (statuses in `batch.status`). */
  gnttabMap(batch: GrantMapBatch): void {
    const done = this.call(false, (b) => {
      gnttab.mapBatch(this.s, b, batch);
      return true;
    });
    if (!done) batch.status.fill(GNTST_bad_domain);
  }

  /** GNTTABOP_unmap_grant_ref for each handle of the batch. */
  gnttabUnmap(batch: GrantUnmapBatch): void {
    const done = this.call(false, (b) => {
      gnttab.unmapBatch(this.s, b, batch, this.reapIdle);
      return true;
    });
    if (!done) batch.status.fill(GNTST_bad_domain);
  }

  /** GNTTABOP_copy: a GNTST per operation. */
  gnttabCopy(ops: readonly GrantCopyOp[]): Int16Array {
    const out = new Int16Array(ops.length).fill(GNTST_bad_domain);
    this.call(undefined, (b) => {
      for (let i = 0; i < ops.length; i++) out[i] = gnttab.copyOne(this.s, b, ops[i]!);
    });
    return out;
  }

  // ---- event channels (EVTCHNOP_*) ----

  /** EVTCHNOP_alloc_unbound: a port of `dom` (DOMID_SELF, or any for dom0) that `remoteDom` may bind. */
  evtchnAllocUnbound(remoteDom: number, dom: number = DOMID_SELF): number {
    return this.call(ESRCH, (b) => evtchn.allocUnbound(this.s, b, dom, remoteDom));
  }

  /** EVTCHNOP_bind_interdomain: the new local port or -errno. */
  evtchnBindInterdomain(remoteDom: number, remotePort: number): number {
    return this.call(ESRCH, (b) => evtchn.bindInterdomain(this.s, b, remoteDom, remotePort));
  }

  /** EVTCHNOP_send on one of this domain's ports. */
  evtchnSend(port: number): number {
    return this.call(ESRCH, (b) => evtchn.send(this.s, b, port));
  }

  /** EVTCHNOP_close. */
  evtchnClose(port: number): number {
    return this.call(ESRCH, (b) => evtchn.close(this.s, b, port));
  }

  /** EVTCHNOP_status of a port of this domain (or, for dom0, of any domain). */
  evtchnStatus(port: number, dom: number = DOMID_SELF): EvtchnStatus | number {
    return this.call(ESRCH, (b) => evtchn.status(this.s, b, dom, port));
  }

  /** Sets the mask bit (the guest's own bitmap write). */
  evtchnMask(port: number): number {
    return this.call(ESRCH, (b) => evtchn.setMask(this.s, b, port, true));
  }

  /** EVTCHNOP_unmask: clears the mask bit; raises the upcall if the port is pending. */
  evtchnUnmask(port: number): number {
    return this.call(ESRCH, (b) => evtchn.setMask(this.s, b, port, false));
  }

  /**
   * Where this domain's events arrive: the shared-info words (pending bits at 0..127, mask bits at
   * 128..255) and the upcall word in the control block. Used by the domain's event loop.
   */
  eventWords(): { shinfo: Int32Array; ctl: Int32Array; upcall: number } | undefined {
    return this.call(undefined, (b) => ({
      shinfo: new Int32Array(this.s.shared.memory, this.s.ctl[b + D_SHINFO_MFN]! * PAGE_SIZE, 1024),
      ctl: this.s.ctl,
      upcall: b + D_UPCALL,
    }));
  }

  /** This domain's own counters. */
  accounting(): DomainAccounting | undefined {
    return this.call(undefined, (b) => domainAccounting(this.s, b));
  }

  /** True while the slot is alive (for loops that must stop once the domain is destroyed). */
  isRunningUnlocked(): boolean {
    const base = this.s.anySlot(this.domid);
    return base >= 0 && this.s.ctl[base + D_STATE] === DomainState.Running && this.s.ctl[base + D_CREATED_GEN] === this.gen;
  }
}

/**
 * The guest side of grant tables, as Linux offers it (drivers/xen/grant-table.c): a free list of
 * refs above the 8 reserved entries, growing the table a frame at a time up to its maximum;
 * grant access by writing domid and frame, then the flags; end access with the post-2022
 * semantics: ends at once if nobody maps the entry, otherwise the ref (and the page, through
 * `onReleased`) is kept on a deferred list retried by a timer until the peer unmaps.
 */
import {
  GNTST_okay, GNTTAB_NR_RESERVED_ENTRIES, GRANT_ENTRIES_PER_FRAME, GTF_permit_access, GTF_readonly, GTF_reading, GTF_writing,
} from '../abi/grant-table.js';
import { XEN_ERRNO } from '../abi/xen-errno.js';
import type { Hypercalls } from './hypercalls.js';

export interface DeferredOptions {
  /** Retry period of the deferred list in ms (Linux: HZ = 1000 ms). */
  readonly retryMs?: number;
  /** Entries retried per tick (Linux's free_per_iteration, default 10; 0 = all). */
  readonly perIteration?: number;
  /** Called once an entry has been retried 60 times ("g.e. %#x still pending"). */
  readonly onStillPending?: (ref: number) => void;
  /** Where an exception thrown by an onReleased callback goes (default: a process warning). */
  readonly onError?: (err: unknown) => void;
}

interface Deferred {
  readonly ref: number;
  readonly onReleased: (() => void) | undefined;
  tries: number;
}

export class GrantTableClient {
  private frames: Int32Array[] = [];
  private halves: Uint16Array[] = [];
  private readonly free: number[] = [];
  /** 1 for refs handed out (reserved or granted), so a ref is never freed twice. */
  private inUse = new Uint8Array(0);
  private capacity = 0;
  private deferred: Deferred[] = [];
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly retryMs: number;
  private readonly perIteration: number;

  constructor(
    private readonly hc: Hypercalls,
    private readonly opts: DeferredOptions = {},
  ) {
    this.retryMs = opts.retryMs ?? 1000;
    this.perIteration = opts.perIteration ?? 10;
    this.refresh();
  }

  private refresh(): void {
    this.frames = this.hc.gnttabFrames();
    this.halves = this.frames.map((f) => new Uint16Array(f.buffer, f.byteOffset, 2048));
    const cap = this.frames.length * GRANT_ENTRIES_PER_FRAME;
    for (let ref = cap - 1; ref >= Math.max(this.capacity, GNTTAB_NR_RESERVED_ENTRIES); ref--) this.free.push(ref);
    if (cap > this.inUse.length) {
      const u = new Uint8Array(cap);
      u.set(this.inUse);
      this.inUse = u;
    }
    this.capacity = Math.max(this.capacity, cap);
  }

  /** False once the domain is destroyed: its table frames may belong to someone else by then. */
  private get alive(): boolean {
    if (this.frames.length === 0) return false;
    if (this.hc.isRunningUnlocked()) return true;
    this.frames = [];
    this.halves = [];
    return false;
  }

  private take(): number {
    const ref = this.free.pop()!;
    this.inUse[ref] = 1;
    return ref;
  }

  private release(ref: number): void {
    this.inUse[ref] = 0;
    this.free.push(ref);
  }

  /** Whether `ref` was handed out by this client and not freed since. */
  owns(ref: number): boolean {
    return Number.isInteger(ref) && ref >= GNTTAB_NR_RESERVED_ENTRIES && ref < this.capacity && this.inUse[ref] === 1;
  }

  /** Adds a grant table frame; false at the maximum or without memory. */
  private grow(): boolean {
    if (!this.alive) return false;
    const q = this.hc.gnttabQuerySize();
    if (q.status !== GNTST_okay || q.nrFrames >= q.maxNrFrames) return false;
    if (this.hc.gnttabSetupTable(q.nrFrames + 1) !== GNTST_okay) return false;
    this.refresh();
    return true;
  }

  /** Refs available without growing, and the table's current size. */
  get freeCount(): number {
    return this.free.length;
  }

  /** Reserves `count` refs (gnttab_alloc_grant_references); -ENOSPC if the table cannot hold them. */
  reserve(count: number): number[] | number {
    if (!Number.isInteger(count) || count < 0) return -XEN_ERRNO.EINVAL;
    if (!this.alive) return -XEN_ERRNO.ESRCH;
    while (this.free.length < count) if (!this.grow()) return -XEN_ERRNO.ENOSPC;
    const refs: number[] = new Array<number>(count);
    for (let i = 0; i < count; i++) refs[i] = this.take();
    return refs;
  }

  /** Returns unused reserved refs (gnttab_free_grant_references); refs not handed out are ignored. */
  unreserve(refs: Iterable<number>): void {
    for (const r of refs) if (this.owns(r)) this.release(r);
  }

  /**
   * Writes a permit_access entry in reserved `ref` (gnttab_grant_foreign_access_ref): domid and
   * frame first, then the flags. 0, or -EINVAL for a ref not reserved here or a bad domid / gfn.
   */
  grantAccessRef(ref: number, domid: number, gfn: number, readonly: boolean): number {
    if (!this.owns(ref) || !validDomid(domid) || !validGfn(gfn)) return -XEN_ERRNO.EINVAL;
    if (!this.alive) return -XEN_ERRNO.ESRCH;
    this.write(ref, domid, gfn, readonly);
    return 0;
  }

  private write(ref: number, domid: number, gfn: number, readonly: boolean): void {
    const f = this.frames[ref >>> 9]!;
    const i = (ref & 511) * 2;
    Atomics.store(f, i + 1, gfn | 0);
    Atomics.store(f, i, (GTF_permit_access | (readonly ? GTF_readonly : 0)) | (domid << 16));
  }

  /** gnttab_grant_foreign_access: a new ref granting `gfn` to `domid`, or -ENOSPC / -EINVAL. */
  grantAccess(domid: number, gfn: number, readonly: boolean): number {
    if (!validDomid(domid) || !validGfn(gfn)) return -XEN_ERRNO.EINVAL;
    if (!this.alive) return -XEN_ERRNO.ESRCH;
    if (this.free.length === 0 && !this.grow()) return -XEN_ERRNO.ENOSPC;
    const ref = this.take();
    this.write(ref, domid, gfn, readonly);
    return ref;
  }

  /** Grants every gfn to `domid`; all or nothing. Returns refs or -errno. */
  grantAccessBatch(domid: number, gfns: ArrayLike<number>, readonly: boolean): number[] | number {
    if (!validDomid(domid)) return -XEN_ERRNO.EINVAL;
    for (let i = 0; i < gfns.length; i++) if (!validGfn(gfns[i]!)) return -XEN_ERRNO.EINVAL;
    const refs = this.reserve(gfns.length);
    if (typeof refs === 'number') return refs;
    for (let i = 0; i < refs.length; i++) this.write(refs[i]!, domid, gfns[i]!, readonly);
    return refs;
  }

  /** The entry's flags (GTF_*), or -1 for a ref beyond the table. */
  flags(ref: number): number {
    const h = Number.isInteger(ref) && ref >= 0 ? this.halves[ref >>> 9] : undefined;
    return h ? Atomics.load(h, (ref & 511) * 4) : -1;
  }

  /** Ends access iff the peer does not map the entry (gnttab_end_foreign_access_ref); the ref stays reserved. */
  endAccessRef(ref: number): boolean {
    if (!this.owns(ref) || !this.alive) return false;
    const h = this.halves[ref >>> 9]!;
    const i = (ref & 511) * 4;
    let flags = Atomics.load(h, i);
    for (;;) {
      if ((flags & (GTF_reading | GTF_writing)) !== 0) return false;
      const prev = Atomics.compareExchange(h, i, flags, 0);
      if (prev === flags) return true;
      flags = prev;
    }
  }

  /** gnttab_try_end_foreign_access: ends and frees the ref if unmapped; false if still in use. */
  tryEndAccess(ref: number): boolean {
    if (!this.endAccessRef(ref)) return false;
    this.release(ref);
    return true;
  }

  /**
   * gnttab_end_foreign_access: ends at once if unmapped (returns true, `onReleased` runs now);
   * otherwise defers: the ref and its page stay out of use until a retry succeeds.
   */
  endAccess(ref: number, onReleased?: () => void): boolean {
    if (!this.owns(ref) || this.deferred.some((d) => d.ref === ref)) return false; // not ours to end
    if (this.tryEndAccess(ref)) {
      onReleased?.();
      return true;
    }
    if (!this.alive) return false;
    this.deferred.push({ ref, onReleased, tries: 0 });
    if (!this.timer && this.retryMs > 0) {
      this.timer = setInterval(() => this.retryDeferred(), this.retryMs);
      this.timer.unref();
    }
    return false;
  }

  /** Entries waiting for the peer to unmap. */
  get deferredCount(): number {
    return this.deferred.length;
  }

  /**
   * One retry tick of the deferred list (the timer calls this): tries up to `perIteration`
   * entries from the head; those still mapped go to the tail, so every entry gets its turn.
   * Returns how many ended.
   */
  retryDeferred(all = false): number {
    const budget = Math.min(this.deferred.length, all || this.perIteration === 0 ? Infinity : this.perIteration);
    const tried = this.deferred.slice(0, budget);
    const stillMapped: Deferred[] = [];
    const released: (() => void)[] = [];
    for (const d of tried) {
      if (this.tryEndAccess(d.ref)) {
        if (d.onReleased) released.push(d.onReleased);
      } else {
        if (++d.tries === 60) this.opts.onStillPending?.(d.ref);
        stillMapped.push(d);
      }
    }
    this.deferred = this.deferred.slice(budget).concat(stillMapped);
    if ((this.deferred.length === 0 || !this.alive) && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    // Callbacks run once the list is consistent: one that throws cannot make an ended ref end twice.
    for (const cb of released) {
      try {
        cb();
      } catch (err) {
        (this.opts.onError ?? ((e: unknown) => process.emitWarning(`grant onReleased callback threw: ${String(e)}`)))(err);
      }
    }
    return tried.length - stillMapped.length;
  }

  /** Stops the retry timer (the domain is going away; the hypervisor reclaims the rest). */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

function validGfn(g: number): boolean {
  return Number.isInteger(g) && g >= 0 && g <= 0xffffffff;
}

function validDomid(d: number): boolean {
  return Number.isInteger(d) && d >= 0 && d < 0x7ff0;
}

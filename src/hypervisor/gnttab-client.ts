/**
 * The guest side of grant tables, as Linux offers it (drivers/xen/grant-table.c): a free list of
 * refs above the 8 reserved entries, growing the table a frame at a time up to its maximum;
 * grant access by writing domid and frame, then the flags; end access with the post-2022
 * semantics: ends at once if nobody maps the entry, otherwise the ref (and the page, through
 * `onReleased`) is kept on a deferred list retried by a timer until the peer unmaps.
 */
import {
  GNTST_okay, GNTTAB_NR_RESERVED_ENTRIES, GTF_permit_access, GTF_readonly, GTF_reading, GTF_writing,
} from '../abi/grant-table.js';
import { XEN_ERRNO } from '../abi/xen-errno.js';
import type { Hypercalls } from './hypercalls.js';
import { GNT_ENTRIES_PER_FRAME } from './layout.js';

export interface DeferredOptions {
  /** Retry period of the deferred list in ms (Linux: HZ = 1000 ms). */
  readonly retryMs?: number;
  /** Entries retried per tick (Linux's free_per_iteration, default 10; 0 = all). */
  readonly perIteration?: number;
  /** Called once an entry has been retried 60 times ("g.e. %#x still pending"). */
  readonly onStillPending?: (ref: number) => void;
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
    const cap = this.frames.length * GNT_ENTRIES_PER_FRAME;
    for (let ref = cap - 1; ref >= Math.max(this.capacity, GNTTAB_NR_RESERVED_ENTRIES); ref--) this.free.push(ref);
    this.capacity = Math.max(this.capacity, cap);
  }

  /** Adds a grant table frame; false at the maximum or without memory. */
  private grow(): boolean {
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
    while (this.free.length < count) if (!this.grow()) return -XEN_ERRNO.ENOSPC;
    return this.free.splice(this.free.length - count, count).reverse();
  }

  /** Returns unused reserved refs (gnttab_free_grant_references). */
  unreserve(refs: Iterable<number>): void {
    for (const r of refs) this.free.push(r);
  }

  /** Writes a permit_access entry in reserved `ref` (gnttab_grant_foreign_access_ref). */
  grantAccessRef(ref: number, domid: number, gfn: number, readonly: boolean): void {
    const f = this.frames[ref >>> 9]!;
    const i = (ref & 511) * 2;
    Atomics.store(f, i + 1, gfn | 0);
    Atomics.store(f, i, (GTF_permit_access | (readonly ? GTF_readonly : 0)) | (domid << 16));
  }

  /** gnttab_grant_foreign_access: a new ref granting `gfn` to `domid`, or -ENOSPC / -EINVAL. */
  grantAccess(domid: number, gfn: number, readonly: boolean): number {
    if (!validDomid(domid) || !Number.isInteger(gfn) || gfn < 0 || gfn > 0xffffffff) return -XEN_ERRNO.EINVAL;
    if (this.free.length === 0 && !this.grow()) return -XEN_ERRNO.ENOSPC;
    const ref = this.free.pop()!;
    this.grantAccessRef(ref, domid, gfn, readonly);
    return ref;
  }

  /** Grants every gfn to `domid`; all or nothing. Returns refs or -errno. */
  grantAccessBatch(domid: number, gfns: ArrayLike<number>, readonly: boolean): number[] | number {
    if (!validDomid(domid)) return -XEN_ERRNO.EINVAL;
    for (let i = 0; i < gfns.length; i++) {
      const g = gfns[i]!;
      if (!Number.isInteger(g) || g < 0 || g > 0xffffffff) return -XEN_ERRNO.EINVAL;
    }
    const refs = this.reserve(gfns.length);
    if (typeof refs === 'number') return refs;
    for (let i = 0; i < refs.length; i++) this.grantAccessRef(refs[i]!, domid, gfns[i]!, readonly);
    return refs;
  }

  /** The entry's flags (GTF_*). */
  flags(ref: number): number {
    return Atomics.load(this.halves[ref >>> 9]!, (ref & 511) * 4);
  }

  /** Ends access iff the peer does not map the entry (gnttab_end_foreign_access_ref); the ref stays reserved. */
  endAccessRef(ref: number): boolean {
    const h = this.halves[ref >>> 9];
    if (!h || ref < GNTTAB_NR_RESERVED_ENTRIES) return false;
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
    this.free.push(ref);
    return true;
  }

  /**
   * gnttab_end_foreign_access: ends at once if unmapped (returns true, `onReleased` runs now);
   * otherwise defers: the ref and its page stay out of use until a retry succeeds.
   */
  endAccess(ref: number, onReleased?: () => void): boolean {
    if (this.tryEndAccess(ref)) {
      onReleased?.();
      return true;
    }
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

  /** One retry tick of the deferred list (the timer calls this); returns how many ended. */
  retryDeferred(all = false): number {
    const budget = all || this.perIteration === 0 ? Infinity : this.perIteration;
    const keep: Deferred[] = [];
    let ended = 0;
    let tried = 0;
    for (const d of this.deferred) {
      if (tried++ >= budget) {
        keep.push(d);
        continue;
      }
      if (this.tryEndAccess(d.ref)) {
        ended++;
        d.onReleased?.();
      } else {
        if (++d.tries === 60) this.opts.onStillPending?.(d.ref);
        keep.push(d);
      }
    }
    this.deferred = keep;
    if (keep.length === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    return ended;
  }

  /** Stops the retry timer (the domain is going away; the hypervisor reclaims the rest). */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

function validDomid(d: number): boolean {
  return Number.isInteger(d) && d >= 0 && d < 0x7ff0;
}

/**
 * The guest's page allocator over its guest-physical space: hands out gfns, populates them with
 * XENMEM_populate_physmap (contiguous machine frames on request, the seeds' CMA mode), gives
 * them back with decrease_reservation, and reserves unpopulated ("ballooned") gfns for foreign
 * mappings, as Linux's alloc_xenballooned_pages does.
 */
import { XEN_ERRNO } from '../abi/xen-errno.js';
import type { Hypercalls } from './hypercalls.js';

export class PageAllocator {
  /** Every gfn below `next` has been handed out once; `inUse` says which are out now. */
  private next = 0;
  private readonly inUse: Uint8Array;
  /** gfns given back, most recent last (may hold stale entries a contiguous take reused). */
  private readonly free: number[] = [];
  private freeCount = 0;
  private populated = 0;
  private ballooned = 0;

  constructor(
    private readonly hc: Hypercalls,
    private readonly gfnLimit: number,
  ) {
    this.inUse = new Uint8Array(gfnLimit);
  }

  /**
   * `n` gfns: given-back ones first (so the guest-physical space, and the hypervisor's p2m for
   * it, stays as small as the peak use); `adjacent` ones form one run (first fit among the
   * given-back gfns, else fresh ones).
   */
  private take(n: number, adjacent: boolean): Int32Array | undefined {
    const out = new Int32Array(n);
    if (!adjacent && this.freeCount >= n) {
      for (let i = 0; i < n; ) {
        const g = this.free.pop()!;
        if (this.inUse[g] === 1) continue; // taken meanwhile by an adjacent run
        this.inUse[g] = 1;
        out[i++] = g;
      }
      this.freeCount -= n;
      return out;
    }
    let start = -1;
    if (adjacent && this.freeCount >= n) {
      for (let g = 0, run = 0; g < this.next; g++) {
        run = this.inUse[g] === 0 ? run + 1 : 0;
        if (run === n) {
          start = g - n + 1;
          break;
        }
      }
    }
    if (start >= 0) {
      this.freeCount -= n;
    } else {
      // Fresh gfns above everything handed out so far.
      if (this.next + n > this.gfnLimit) return undefined;
      start = this.next;
      this.next += n;
    }
    for (let i = 0; i < n; i++) {
      out[i] = start + i;
      this.inUse[start + i] = 1;
    }
    return out;
  }

  /** Returns gfns to the free stack; those not handed out (or already back) are skipped. Returns how many went back. */
  private giveBack(gfns: ArrayLike<number>): number {
    let n = 0;
    for (let i = 0; i < gfns.length; i++) {
      const g = gfns[i]!;
      if (this.inUse[g] !== 1) continue;
      this.inUse[g] = 0;
      this.free.push(g);
      this.freeCount++;
      n++;
    }
    // Compact the stack when stale entries dominate it.
    if (this.free.length > 2 * this.freeCount + 1024) {
      const seen = new Set<number>();
      const live = this.free.filter((g) => this.inUse[g] === 0 && !seen.has(g) && seen.add(g) !== undefined);
      this.free.length = 0;
      this.free.push(...live);
    }
    return n;
  }

  /** Populated pages, and ballooned gfns handed out. */
  get counts(): { populated: number; ballooned: number } {
    return { populated: this.populated, ballooned: this.ballooned };
  }

  /** `count` zeroed pages; `contiguous`: adjacent machine frames (and adjacent gfns). gfns or -errno. */
  allocPages(count: number, contiguous = false): Int32Array | number {
    if (!Number.isInteger(count) || count <= 0) return -XEN_ERRNO.EINVAL;
    const gfns = this.take(count, contiguous);
    if (!gfns) return -XEN_ERRNO.ENOMEM;
    const done = this.hc.populatePhysmap(gfns, contiguous);
    if (done !== count) {
      if (done > 0) this.hc.decreaseReservation(gfns.subarray(0, done));
      this.giveBack(gfns);
      return done < 0 ? done : -XEN_ERRNO.ENOMEM;
    }
    this.populated += count;
    return gfns;
  }

  /** Frees pages from allocPages. Returns 0 or -errno. */
  freePages(gfns: ArrayLike<number>): number {
    const done = this.hc.decreaseReservation(gfns);
    if (done < 0) return done;
    this.populated -= done;
    this.giveBack(Array.prototype.slice.call(gfns, 0, done) as number[]);
    return done === gfns.length ? 0 : -XEN_ERRNO.EINVAL;
  }

  /** `count` unpopulated gfns to map foreign grants at (alloc_xenballooned_pages). */
  allocBallooned(count: number): Int32Array | number {
    if (!Number.isInteger(count) || count <= 0) return -XEN_ERRNO.EINVAL;
    const gfns = this.take(count, false);
    if (!gfns) return -XEN_ERRNO.ENOMEM;
    this.ballooned += count;
    return gfns;
  }

  /** Returns ballooned gfns (their mappings must be gone). */
  freeBallooned(gfns: ArrayLike<number>): void {
    // Only what really goes back is counted (a gfn given twice, or never handed out, is not).
    this.ballooned -= this.giveBack(gfns);
  }
}

/**
 * The guest's page allocator over its guest-physical space: hands out gfns, populates them with
 * XENMEM_populate_physmap (contiguous machine frames on request, the seeds' CMA mode), gives
 * them back with decrease_reservation, and reserves unpopulated ("ballooned") gfns for foreign
 * mappings, as Linux's alloc_xenballooned_pages does.
 */
import { XEN_ERRNO } from '../abi/xen-errno.js';
import type { Hypercalls } from './hypercalls.js';

export class PageAllocator {
  private next = 0;
  private readonly free: number[] = [];
  private populated = 0;
  private ballooned = 0;

  constructor(
    private readonly hc: Hypercalls,
    private readonly gfnLimit: number,
  ) {}

  private take(n: number, fresh: boolean): Int32Array | undefined {
    const out = new Int32Array(n);
    if (!fresh && this.free.length >= n) {
      for (let i = 0; i < n; i++) out[i] = this.free.pop()!;
      return out;
    }
    if (this.next + n > this.gfnLimit) return undefined;
    for (let i = 0; i < n; i++) out[i] = this.next + i;
    this.next += n;
    return out;
  }

  private giveBack(gfns: ArrayLike<number>): void {
    for (let i = 0; i < gfns.length; i++) this.free.push(gfns[i]!);
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
    const gfns = this.take(count, true);
    if (!gfns) return -XEN_ERRNO.ENOMEM;
    this.ballooned += count;
    return gfns;
  }

  /** Returns ballooned gfns (their mappings must be gone). */
  freeBallooned(gfns: ArrayLike<number>): void {
    this.ballooned -= gfns.length;
    this.giveBack(gfns);
  }
}

/**
 * Guest memory operations (XENMEM_populate_physmap / decrease_reservation) and validated access
 * to a domain's own pages. Callers hold the big lock and have checked the domain is running.
 */
import { XEN_ERRNO } from '../abi/xen-errno.js';
import { allocContiguous, allocFrame, putFrame } from './frames.js';
import { D_DOMID, D_MAX_PAGES, D_PAGES } from './layout.js';
import { gfnInRange, P2M_EMPTY, p2mGet, p2mSet } from './p2m.js';
import type { MachineState } from './state.js';

/**
 * Populates each gfn with a fresh zeroed frame. Stops at the first failure and returns how many
 * were populated, or a negative errno when none was: -EINVAL (gfn out of range or not empty),
 * -ENOMEM (quota or machine memory exhausted). `contiguous` gives adjacent mfns, all or nothing.
 */
export function populate(s: MachineState, base: number, gfns: ArrayLike<number>, contiguous: boolean): number {
  const n = gfns.length;
  const { ctl } = s;
  const room = ctl[base + D_MAX_PAGES]! - ctl[base + D_PAGES]!;
  const owner = ctl[base + D_DOMID]!;
  const usable = (g: number): boolean => gfnInRange(s, base, g) && p2mGet(s, base, g) === P2M_EMPTY;
  if (contiguous) {
    if (n === 0) return 0;
    for (let i = 0; i < n; i++) if (!usable(gfns[i]!)) return -XEN_ERRNO.EINVAL;
    if (room < n) return -XEN_ERRNO.ENOMEM;
    const first = allocContiguous(s, owner, n);
    if (first < 0) return -XEN_ERRNO.ENOMEM;
    for (let i = 0; i < n; i++) {
      const g = gfns[i]!;
      const ok = p2mGet(s, base, g) === P2M_EMPTY; // false for a repeated gfn
      if (!ok || !p2mSet(s, base, g, first + i + 1)) {
        for (let j = 0; j < i; j++) p2mSet(s, base, gfns[j]!, P2M_EMPTY);
        for (let j = 0; j < n; j++) putFrame(s, first + j);
        return ok ? -XEN_ERRNO.ENOMEM : -XEN_ERRNO.EINVAL;
      }
    }
    ctl[base + D_PAGES]! += n;
    return n;
  }
  let done = 0;
  let err = 0;
  for (; done < n; done++) {
    const g = gfns[done]!;
    if (!usable(g)) {
      err = -XEN_ERRNO.EINVAL;
      break;
    }
    const mfn = done < room ? allocFrame(s, owner) : -1;
    if (mfn < 0 || !p2mSet(s, base, g, mfn + 1)) {
      if (mfn >= 0) putFrame(s, mfn);
      err = -XEN_ERRNO.ENOMEM;
      break;
    }
    ctl[base + D_PAGES]! += 1;
  }
  return done === 0 && n > 0 ? err : done;
}

/**
 * Gives pages back (balloon out). A frame still mapped by another domain stays allocated until
 * its last mapping goes. Returns how many were released, or -EINVAL if the first gfn is not the
 * domain's own RAM (foreign-mapped gfns must be unmapped through the grant table).
 */
export function release(s: MachineState, base: number, gfns: ArrayLike<number>): number {
  for (let i = 0; i < gfns.length; i++) {
    const g = gfns[i]!;
    const e = gfnInRange(s, base, g) ? p2mGet(s, base, g) : P2M_EMPTY;
    if (e <= 0) return i === 0 ? -XEN_ERRNO.EINVAL : i;
    p2mSet(s, base, g, P2M_EMPTY);
    putFrame(s, e - 1);
    s.ctl[base + D_PAGES]! -= 1;
  }
  return gfns.length;
}

/** The mfn behind `gfn` for the domain itself (own RAM or a foreign mapping), or -1. */
export function gfnToMfn(s: MachineState, base: number, gfn: number): number {
  if (!gfnInRange(s, base, gfn)) return -1;
  const e = p2mGet(s, base, gfn);
  return e === P2M_EMPTY ? -1 : Math.abs(e) - 1;
}

/** The mfn behind `gfn` only if it is the domain's own RAM, or -1. */
export function ownGfnToMfn(s: MachineState, base: number, gfn: number): number {
  if (!gfnInRange(s, base, gfn)) return -1;
  const e = p2mGet(s, base, gfn);
  return e > 0 ? e - 1 : -1;
}

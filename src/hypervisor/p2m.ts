/**
 * Per-domain physical-to-machine map (gfn -> mfn), two levels: a directory of LIMIT_P2M_LEAVES
 * words in the domain's slot, each naming a leaf frame (Xen heap) of 1024 entries.
 *
 * Entry encoding (Int32): 0 = unpopulated (a hole or a ballooned gfn), mfn + 1 = the domain's own
 * RAM, -(mfn + 1) = a foreign frame mapped there through a grant. Callers hold the big lock.
 */
import { allocFrame, putFrame } from './frames.js';
import { D_GFN_LIMIT, D_P2M_DIR, D_XEN_FRAMES, LIMIT_P2M_LEAVES, OWNER_XEN, P2M_PER_FRAME } from './layout.js';
import type { MachineState } from './state.js';

export const P2M_EMPTY = 0;

/** Raw p2m entry of `gfn` (0 if the leaf does not exist). Caller checks gfn < limit. */
export function p2mGet(s: MachineState, base: number, gfn: number): number {
  const leaf = s.ctl[base + D_P2M_DIR + (gfn >>> 10)]!;
  return leaf === 0 ? P2M_EMPTY : s.mem32[(leaf - 1) * P2M_PER_FRAME + (gfn & 1023)]!;
}

/** Sets the entry of `gfn`, allocating its leaf; false if no frame is left for the leaf. */
export function p2mSet(s: MachineState, base: number, gfn: number, value: number): boolean {
  const d = base + D_P2M_DIR + (gfn >>> 10);
  let leaf = s.ctl[d]!;
  if (leaf === 0) {
    if (value === P2M_EMPTY) return true;
    const mfn = allocFrame(s, OWNER_XEN);
    if (mfn < 0) return false;
    s.ctl[base + D_XEN_FRAMES]! += 1;
    leaf = mfn + 1;
    s.ctl[d] = leaf;
  }
  s.mem32[(leaf - 1) * P2M_PER_FRAME + (gfn & 1023)] = value;
  return true;
}

export function gfnInRange(s: MachineState, base: number, gfn: number): boolean {
  return Number.isInteger(gfn) && gfn >= 0 && gfn < s.ctl[base + D_GFN_LIMIT]!;
}

/** Calls `fn(gfn, entry)` for every non-empty entry. */
export function p2mForEach(s: MachineState, base: number, fn: (gfn: number, entry: number) => void): void {
  for (let i = 0; i < LIMIT_P2M_LEAVES; i++) {
    const leaf = s.ctl[base + D_P2M_DIR + i]!;
    if (leaf === 0) continue;
    const off = (leaf - 1) * P2M_PER_FRAME;
    for (let j = 0; j < P2M_PER_FRAME; j++) {
      const e = s.mem32[off + j]!;
      if (e !== P2M_EMPTY) fn(i * P2M_PER_FRAME + j, e);
    }
  }
}

/** Frees every leaf frame (the entries must have been dealt with). */
export function p2mFreeLeaves(s: MachineState, base: number): void {
  for (let i = 0; i < LIMIT_P2M_LEAVES; i++) {
    const leaf = s.ctl[base + D_P2M_DIR + i]!;
    if (leaf === 0) continue;
    putFrame(s, leaf - 1);
    s.ctl[base + D_XEN_FRAMES]! -= 1;
    s.ctl[base + D_P2M_DIR + i] = 0;
  }
}

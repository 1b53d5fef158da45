/**
 * The machine frame allocator: an allocation bitmap with a next-fit hint, an owner and a
 * reference count per frame. A frame is freed when its last reference goes: the owner's own
 * reference (its p2m entry or, for Xen heap frames, the structure using it) plus one per foreign
 * grant mapping. Frames are scrubbed when freed, as Xen scrubs pages a domain gives back, so
 * every free frame is zero (machine memory starts zeroed) and allocation hands out clean frames
 * without touching them: a 1080p buffer's 2025 frames cost nothing to zero at DBUF_CREATE time.
 * Callers hold the big lock.
 */
import { FRAME_FREE, H_ALLOC_HINT, H_FREE_FRAMES, H_XEN_FRAMES, OWNER_XEN, PAGE_SIZE } from './layout.js';
import type { MachineState } from './state.js';

function isFree(s: MachineState, mfn: number): boolean {
  return (s.ctl[s.layout.frameBitmap + (mfn >>> 5)]! & (1 << (mfn & 31))) === 0;
}

/** Zeroes frames [mfn, mfn + count) (8-byte words: much faster than bytes on shared memory). */
function scrub(s: MachineState, mfn: number, count: number): void {
  const words = PAGE_SIZE / 8;
  s.mem64.fill(0n, mfn * words, (mfn + count) * words);
}

function take(s: MachineState, mfn: number, owner: number): void {
  const { ctl, layout } = s;
  ctl[layout.frameBitmap + (mfn >>> 5)]! |= 1 << (mfn & 31);
  ctl[layout.frameOwner + mfn] = owner;
  ctl[layout.frameRefs + mfn] = 1;
  ctl[H_FREE_FRAMES]!--;
  if (owner === OWNER_XEN) ctl[H_XEN_FRAMES]!++;
}

/** Allocates one frame for `owner` with one reference; -1 when memory is exhausted. */
export function allocFrame(s: MachineState, owner: number): number {
  const { ctl, layout } = s;
  if (ctl[H_FREE_FRAMES]! <= 0) return -1;
  const words = Math.ceil(s.nrFrames / 32);
  let w = ctl[H_ALLOC_HINT]! >>> 5;
  for (let n = 0; n <= words; n++, w = w + 1 === words ? 0 : w + 1) {
    const bits = ctl[layout.frameBitmap + w]!;
    if (bits === -1) continue;
    const bit = 31 - Math.clz32(~bits & (bits + 1)); // lowest clear bit
    const mfn = (w << 5) + bit;
    if (mfn >= s.nrFrames) continue;
    take(s, mfn, owner);
    ctl[H_ALLOC_HINT] = mfn + 1 === s.nrFrames ? 0 : mfn + 1;
    return mfn;
  }
  return -1;
}

/** Allocates `count` adjacent frames; returns the first mfn or -1 if no free run is that long. */
export function allocContiguous(s: MachineState, owner: number, count: number): number {
  if (count <= 0 || s.ctl[H_FREE_FRAMES]! < count) return -1;
  let run = 0;
  for (let mfn = 0; mfn < s.nrFrames; mfn++) {
    if (!isFree(s, mfn)) {
      run = 0;
      // Skip fully used words quickly.
      if ((mfn & 31) === 0 && s.ctl[s.layout.frameBitmap + (mfn >>> 5)] === -1) mfn += 31;
      continue;
    }
    if (++run === count) {
      const first = mfn - count + 1;
      for (let m = first; m <= mfn; m++) take(s, m, owner);
      return first;
    }
  }
  return -1;
}

/** Adds a reference (a foreign mapping) to an allocated frame. */
export function getFrame(s: MachineState, mfn: number): void {
  s.ctl[s.layout.frameRefs + mfn]!++;
}

/** Drops a reference; frees the frame when it was the last. Returns true if freed. */
export function putFrame(s: MachineState, mfn: number): boolean {
  const { ctl, layout } = s;
  const refs = --ctl[layout.frameRefs + mfn]!;
  if (refs > 0) return false;
  if (refs < 0) throw new Error(`hypervisor bug: frame ${mfn} reference count went negative`);
  if (ctl[layout.frameOwner + mfn] === OWNER_XEN) ctl[H_XEN_FRAMES]!--;
  scrub(s, mfn, 1);
  ctl[layout.frameOwner + mfn] = FRAME_FREE;
  ctl[layout.frameBitmap + (mfn >>> 5)]! &= ~(1 << (mfn & 31));
  ctl[H_FREE_FRAMES]!++;
  return true;
}

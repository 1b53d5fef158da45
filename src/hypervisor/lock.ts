/**
 * The hypervisor's big lock: one Int32 word in shared memory, taken by whichever thread makes a
 * hypercall (as Xen runs a hypercall on the calling CPU). The word holds the owner's cpu id so a
 * thread that dies holding it can be detected and the lock broken (see Machine).
 *
 * Uncontended: one compareExchange to take, a load and a compareExchange to drop. Contended: a
 * short spin, then Atomics.wait with a timeout, re-checking whether the owner is a thread being
 * terminated (a worker domain already marked dying): such an owner can only be on its way out of
 * a hypercall that changes nothing (every hypercall checks its caller is running first), so its
 * lock may be taken over instead of waiting for a thread that may never run again.
 */
import { H_LOCK, LOCK_WAITERS } from './layout.js';

const SPIN = 64;
const WAIT_MS = 2;

/**
 * Takes the lock for `cpu`. `stealable(owner)` says whether an owner may be robbed: a thread
 * that is being terminated cannot be relied on to release it (see MachineState.isDyingWorkerCpu).
 */
export function acquire(ctl: Int32Array, cpu: number, stealable?: (owner: number) => boolean): void {
  if (Atomics.compareExchange(ctl, H_LOCK, 0, cpu) === 0) return;
  for (let i = 0; i < SPIN; i++) {
    if (Atomics.load(ctl, H_LOCK) === 0 && Atomics.compareExchange(ctl, H_LOCK, 0, cpu) === 0) return;
  }
  for (;;) {
    let c = Atomics.load(ctl, H_LOCK);
    if (c === 0) {
      // Keep the waiters bit: others may still sleep on the word.
      if (Atomics.compareExchange(ctl, H_LOCK, 0, cpu | LOCK_WAITERS) === 0) return;
      continue;
    }
    if (stealable?.(c & ~LOCK_WAITERS)) {
      if (Atomics.compareExchange(ctl, H_LOCK, c, cpu | LOCK_WAITERS) === c) return;
      continue;
    }
    if ((c & LOCK_WAITERS) === 0) {
      if (Atomics.compareExchange(ctl, H_LOCK, c, c | LOCK_WAITERS) !== c) continue;
      c |= LOCK_WAITERS;
    }
    Atomics.wait(ctl, H_LOCK, c, WAIT_MS);
  }
}

/** Drops the lock if `cpu` still holds it (it may have been stolen from a dying thread). */
export function release(ctl: Int32Array, cpu: number): void {
  for (;;) {
    const c = Atomics.load(ctl, H_LOCK);
    if ((c & ~LOCK_WAITERS) !== cpu) return;
    if (Atomics.compareExchange(ctl, H_LOCK, c, 0) === c) {
      if ((c & LOCK_WAITERS) !== 0) Atomics.notify(ctl, H_LOCK, 1);
      return;
    }
  }
}

/** The cpu id holding the lock, or 0. */
export function lockOwner(ctl: Int32Array): number {
  return Atomics.load(ctl, H_LOCK) & ~LOCK_WAITERS;
}

/** Frees the lock iff `cpu` holds it (its thread died in a hypercall). Returns whether it did. */
export function breakLock(ctl: Int32Array, cpu: number): boolean {
  for (;;) {
    const c = Atomics.load(ctl, H_LOCK);
    if ((c & ~LOCK_WAITERS) !== cpu || cpu === 0) return false;
    if (Atomics.compareExchange(ctl, H_LOCK, c, 0) === c) {
      Atomics.notify(ctl, H_LOCK);
      return true;
    }
  }
}

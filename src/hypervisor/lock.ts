/**
 * The hypervisor's big lock: one Int32 word in shared memory, taken by whichever thread makes a
 * hypercall (as Xen runs a hypercall on the calling CPU). The word holds the owner's cpu id so a
 * thread that dies holding it can be detected and the lock broken (see Machine).
 *
 * Uncontended: one compareExchange to take, one exchange to drop. Contended: a short spin, then
 * Atomics.wait with a timeout (a waiter never sleeps forever on a dead owner).
 */
import { H_LOCK, LOCK_WAITERS } from './layout.js';

const SPIN = 64;
const WAIT_MS = 2;

export function acquire(ctl: Int32Array, cpu: number): void {
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
    if ((c & LOCK_WAITERS) === 0) {
      if (Atomics.compareExchange(ctl, H_LOCK, c, c | LOCK_WAITERS) !== c) continue;
      c |= LOCK_WAITERS;
    }
    Atomics.wait(ctl, H_LOCK, c, WAIT_MS);
  }
}

export function release(ctl: Int32Array): void {
  const old = Atomics.exchange(ctl, H_LOCK, 0);
  if ((old & LOCK_WAITERS) !== 0) Atomics.notify(ctl, H_LOCK, 1);
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

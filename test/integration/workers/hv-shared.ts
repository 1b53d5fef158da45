/**
 * Helpers for the hypervisor integration tests and their domain modules (no default export: not
 * a domain itself).
 *
 * Test control goes through a mailbox: a page of dom0 granted to each worker domain, read and
 * written with Atomics on both sides (the worker through its grant mapping, dom0 through its own
 * page). Waits on mailbox words use Atomics.waitAsync with a deadline, so nothing here can hang.
 */
import { type DomainAccounting, type DomainExit, type DomainHandle, type EmulatedPlatform, type GrantMapping, Machine } from '../../../src/hypervisor/index.js';

export const PAGE_SIZE = 4096;

/** The module URL of domain module `hv-<name>.ts`. */
export function hv(name: string): URL {
  return new URL(`./hv-${name}.ts`, import.meta.url);
}

/** Int32 words over a page view (zero-copy). */
export function words(page: Uint8Array): Int32Array {
  return new Int32Array(page.buffer, page.byteOffset, page.byteLength >>> 2);
}

/** Stores `v` and wakes whoever waits on the word. */
export function put(w: Int32Array, i: number, v: number): void {
  Atomics.store(w, i, v);
  Atomics.notify(w, i);
}

/** Adds `d` and wakes waiters; returns the new value. */
export function bump(w: Int32Array, i: number, d = 1): number {
  const v = Atomics.add(w, i, d) + d;
  Atomics.notify(w, i);
  return v;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function yieldNow(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

type What = string | (() => string);
const say = (w: What): string => (typeof w === 'string' ? w : w());

/** `p`, or a rejection naming `what` after `ms`. */
export async function within<T>(p: Promise<T>, ms: number, what: What): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${say(what)}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves with `w[i]` once `pred` holds for it; rejects after `ms`. */
export async function until(w: Int32Array, i: number, pred: (v: number) => boolean, ms: number, what: What): Promise<number> {
  const end = performance.now() + ms;
  for (;;) {
    const v = Atomics.load(w, i);
    if (pred(v)) return v;
    const left = end - performance.now();
    if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${say(what)} (word ${i} = ${v})`);
    // The cap only bounds a wait whose notify raced with the load; writers always notify.
    const r = Atomics.waitAsync(w, i, v, Math.min(left, 100));
    if (r.async) await r.value;
  }
}

/** Synchronous wait (blocks the thread) until `w[i] === want`; throws after `ms`. */
export function untilSync(w: Int32Array, i: number, want: number, ms: number, what: What): void {
  const end = performance.now() + ms;
  for (;;) {
    const v = Atomics.load(w, i);
    if (v === want) return;
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${say(what)} (word ${i} = ${v}, want ${want})`);
    Atomics.wait(w, i, v, 5);
  }
}

export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/** An event handler whose exceptions reject `d` (the event loop would only log them). */
export function guard(d: { reject(e: unknown): void }, fn: (port: number) => void): (port: number) => void {
  return (port) => {
    try {
      fn(port);
    } catch (err) {
      d.reject(err);
    }
  };
}

export function check(cond: boolean, msg: What): asserts cond {
  if (!cond) throw new Error(say(msg));
}

/** Pages from allocPages or an exception. */
export function alloc(p: EmulatedPlatform, n: number, contiguous = false): Int32Array {
  const g = p.memory.allocPages(n, contiguous);
  if (typeof g === 'number') throw new Error(`allocPages(${n}, ${contiguous}) failed: ${g}`);
  return g;
}

/** Maps `refs` of `dom` or throws with the GNTST. */
export function mapOrThrow(p: EmulatedPlatform, dom: number, refs: ArrayLike<number>, readonly = false): GrantMapping {
  const r = p.maps.map(dom, refs, readonly);
  if (!r.ok) throw new Error(`map of d${dom} refs [${Array.from(refs).join(',')}] failed: GNTST ${r.status} at ${r.index}`);
  return r.mapping;
}

/** Maps the mailbox page (a dom0 grant) read-write; returns its words and the mapping. */
export function mapMailbox(p: EmulatedPlatform, ref: number): { mb: Int32Array; mapping: GrantMapping } {
  const mapping = mapOrThrow(p, 0, [ref]);
  return { mb: words(mapping.page(0)), mapping };
}

/** The byte that pattern `seed` puts at `off` of page `page`. */
export function patternByte(seed: number, page: number, off: number): number {
  return (seed * 131 + page * 29 + off * 7 + (off >>> 8) * 3 + 1) & 0xff;
}

export function fillPattern(view: Uint8Array, seed: number, page: number, from: number, to: number): void {
  for (let o = from; o < to; o++) view[o] = patternByte(seed, page, o);
}

/** The first offset in [from, to) that does not hold the pattern, or -1. */
export function findMismatch(view: Uint8Array, seed: number, page: number, from: number, to: number): number {
  for (let o = from; o < to; o++) if (view[o] !== patternByte(seed, page, o)) return o;
  return -1;
}

// ---- test-thread side ----

/**
 * A 64 MiB machine whose domains log into `logs`. dom0 has mapped one grant and allocated one
 * page once already: its first p2m leaf and maptrack frame, which it keeps (as in Xen) until it
 * dies, exist before the test takes its accounting baseline.
 */
export function newMachine(logs: string[] = []): Machine {
  const m = new Machine({ memoryMiB: 64, log: (d, n, t) => logs.push(`[d${d} ${n}] ${t}`) });
  const d0 = m.dom0.platform!;
  const g = alloc(d0, 1);
  const ref = d0.grants.grantAccess(0, g[0]!, false);
  const mapping = mapOrThrow(d0, 0, [ref]);
  if (d0.maps.unmap(mapping) !== 0 || !d0.grants.tryEndAccess(ref) || d0.memory.freePages(g) !== 0) throw new Error('dom0 warm-up failed');
  return m;
}

/** A dom0 page granted to worker domains as their mailbox. */
export class Mailbox {
  readonly gfn: number;
  readonly mb: Int32Array;
  private readonly refs = new Map<number, number>();

  constructor(private readonly d0: EmulatedPlatform) {
    this.gfn = alloc(d0, 1)[0]!;
    this.mb = words(d0.memory.page(this.gfn)!);
  }

  /** A ref for `domid` (which need not exist yet). */
  grant(domid: number): number {
    const ref = this.d0.grants.grantAccess(domid, this.gfn, false);
    if (ref < 0) throw new Error(`mailbox grant to d${domid} failed: ${ref}`);
    this.refs.set(domid, ref);
    return ref;
  }

  /** Ends the grant to `domid` (its mapping must be gone). */
  end(domid: number): void {
    const ref = this.refs.get(domid);
    if (ref === undefined) return;
    if (!this.d0.grants.tryEndAccess(ref)) throw new Error(`mailbox ref ${ref} of d${domid} is still mapped`);
    this.refs.delete(domid);
  }

  /** Ends every grant and frees the page. */
  release(): void {
    for (const d of [...this.refs.keys()]) this.end(d);
    const rc = this.d0.memory.freePages([this.gfn]);
    if (rc !== 0) throw new Error(`freeing the mailbox failed: ${rc}`);
  }
}

/** Rejects if any of `hs` ends (with how), so a wait on a dead domain fails at once. */
export function orExit<T>(p: Promise<T>, hs: readonly DomainHandle[]): Promise<T> {
  const exits = hs.map((h) =>
    h.exited.then((e: DomainExit): never => {
      throw new Error(`domain ${h.name} (d${h.domid}) ended early: ${e.reason}${e.error ? `: ${e.error}` : ''}`);
    }),
  );
  return Promise.race([p, ...exits]);
}

/** The exit of `h`, or a rejection after `ms`. */
export function exitOf(h: DomainHandle, ms: number): Promise<DomainExit> {
  return within(h.exited, ms, `domain ${h.name} (d${h.domid}) to end`);
}

/**
 * Tears a machine down without Machine.close()'s concurrent destroys: stops dom0's event loop
 * (no dom0 hypercall can then run while a destroyed worker's lock is not yet broken), destroys
 * the other domains one at a time, then closes.
 */
/** One domain's accounting, or undefined once its slot is gone. */
export function domAccounting(machine: Machine, domid: number): DomainAccounting | undefined {
  return machine.accounting().domains.find((d) => d.domid === domid);
}

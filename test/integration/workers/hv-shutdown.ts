/**
 * Orderly shutdown. 'clean': the domain maps two dom0 pages, grants three of its own to dom0
 * (which maps them), binds a port to dom0, then waits for ctx.signal. On shutdown it unmaps,
 * ends its grants (deferred until dom0, asked over the event channel, unmaps them; the pages are
 * freed as each is released), closes its port, unmaps the mailbox, logs its own accounting
 * ("clean {...}") and waits for the test to open the gate before returning.
 *
 * 'ignore' never returns. 'linger-return' / 'linger-throw' leave a timer running and return or
 * throw at once: the domain must still end when main settles.
 */
import { GNTST_okay } from '../../../src/abi/grant-table.js';
import type { DomainContext } from '../../../src/hypervisor/index.js';
import { alloc, check, mapMailbox, mapOrThrow, put, sleep, until, words } from './hv-shared.js';

// Mailbox words.
export const STATE = 0; // 1 set up, 2 asking dom0 to unmap, 3 cleaned
export const PORT = 1; // dom0's port for us
export const REFS = 8; // 3 refs granted to dom0
export const DEFERRED = 4; // how many endAccess calls had to wait for dom0
export const NPAGES = 3;

export interface ShutdownArgs {
  readonly mode: 'clean' | 'ignore' | 'linger-return' | 'linger-throw';
  readonly mailboxRef: number;
  /** dom0's refs of two pages for us to map. */
  readonly dom0Refs: readonly number[];
  /** Word 0 becomes 1 when the test lets main return. */
  readonly gate: SharedArrayBuffer;
}

export default async function main(ctx: DomainContext): Promise<void> {
  const a = ctx.args as ShutdownArgs;
  const p = ctx.platform;
  if (a.mode === 'linger-return' || a.mode === 'linger-throw') {
    setInterval(() => void p.hypercalls.gfnToMfn(0), 20);
    if (a.mode === 'linger-throw') throw new Error('main threw, leaving a timer behind');
    return;
  }
  const { mb, mapping: mbMap } = mapMailbox(p, a.mailboxRef);
  const d0map = mapOrThrow(p, 0, a.dom0Refs);
  d0map.page(0).fill(0x77);
  const gfns = alloc(p, NPAGES);
  const refs = p.grants.grantAccessBatch(0, gfns, false);
  check(typeof refs !== 'number', 'grant failed');
  refs.forEach((r, i) => Atomics.store(mb, REFS + i, r));
  const port = p.events.bindInterdomain(0, await until(mb, PORT, (v) => v > 0, 10_000, 'dom0 port'));
  check(port > 0, `bind failed: ${port}`);
  p.events.on(port, () => undefined);
  put(mb, STATE, 1);

  if (!ctx.signal.aborted) await new Promise((r) => ctx.signal.addEventListener('abort', r, { once: true }));
  if (a.mode === 'ignore') await new Promise(() => undefined);

  // Clean up everything, as a well-behaved guest does before powering off.
  check(p.maps.unmap(d0map) === GNTST_okay, 'unmap of dom0 pages failed');
  let deferred = 0;
  refs.forEach((r, i) => {
    if (!p.grants.endAccess(r, () => check(p.memory.freePages([gfns[i]!]) === 0, 'freePages failed'))) deferred++;
  });
  Atomics.store(mb, DEFERRED, deferred);
  put(mb, STATE, 2);
  check(p.events.notify(port) === 0, 'notify failed');
  const end = performance.now() + 5000;
  while (p.grants.deferredCount > 0) {
    check(performance.now() < end, () => `dom0 never unmapped: ${p.grants.deferredCount} refs still deferred`);
    await sleep(5);
    p.grants.retryDeferred(true);
  }
  p.events.off(port);
  check(p.events.close(port) === 0, 'close failed');
  put(mb, STATE, 3);
  check(p.maps.unmap(mbMap) === GNTST_okay, 'mailbox unmap failed');
  ctx.log(`clean ${JSON.stringify(p.hypercalls.accounting())}`);
  await until(words(new Uint8Array(a.gate)), 0, (v) => v === 1, 10_000, 'the gate');
}

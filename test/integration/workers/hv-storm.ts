/**
 * Destroy storm. Two long-lived domains keep working throughout: the pinger and the ponger map
 * each other's pages once and play a paced ping-pong over an event channel, each round writing
 * the round number into the peer's page through its mapping and checking what the peer wrote
 * into its own. The pinger also grants a page to, and allocates a port for, each victim domid
 * up front, so its accounting stays constant while victims come and go.
 *
 * A victim (one per domid, destroyed at a random moment by the test) loops on hypercalls:
 * mapping the pinger's page, writing, unmapping; allocating, granting, ending and freeing pages;
 * sending on its port to the pinger; allocating and closing a port; and optionally grants one
 * page to dom0 up front (which dom0 maps, so the victim dies as a zombie).
 */
import { GNTST_okay } from '../../../src/abi/grant-table.js';
import type { DomainContext } from '../../../src/hypervisor/index.js';
import { alloc, bump, check, deferred, guard, mapMailbox, mapOrThrow, put, until, words, yieldNow } from './hv-shared.js';

// Mailbox words.
export const READY_PINGER = 0;
export const READY_PONGER = 1;
export const PING = 2;
export const PONG = 3;
export const STOP = 4;
export const ERRORS = 5;
export const VEVENTS = 6; // events received from victims
export const UNMAPPED_PINGER = 7;
export const UNMAPPED_PONGER = 8;
export const PORT = 9; // pinger's port for the ponger (from dom0)
export const REFS_PINGER = 16; // 2 refs for the ponger
export const REFS_PONGER = 20; // 2 refs for the pinger
export const MAX_VICTIMS = 32;
export const VPORT = 64; // + i: pinger's port for victim i
export const VREF = 96; // + i: pinger's ref for victim i
export const VPROG = 128; // + i: victim i's iterations
export const VD0REF = 160; // + i: victim i's ref granted to dom0
export const VSTATE = 192; // + i: 1 once victim i has published and started

export interface StormArgs {
  readonly role: 'pinger' | 'ponger' | 'victim';
  readonly mailboxRef: number;
  /** pinger: the ponger; ponger: the pinger; victim: the pinger. */
  readonly peer: number;
  /** pinger: victim domids (index i = domids[i]). */
  readonly victims?: readonly number[];
  /** victim: its index. */
  readonly index?: number;
  /** victim: grant a page to dom0 first. */
  readonly grantToDom0?: boolean;
  /** pinger: pause between rounds. */
  readonly pauseMs?: number;
}

async function pinger(ctx: DomainContext, a: StormArgs, mb: Int32Array): Promise<void> {
  const p = ctx.platform;
  const own = alloc(p, 2);
  const refs = p.grants.grantAccessBatch(a.peer, own, false);
  check(typeof refs !== 'number', 'pinger: grant failed');
  refs.forEach((r, i) => Atomics.store(mb, REFS_PINGER + i, r));
  // One page, one ref and one port per victim, all up front.
  const vpage = alloc(p, 1)[0]!;
  const victims = a.victims ?? [];
  const vrefs: number[] = [];
  const vports: number[] = [];
  victims.forEach((d, i) => {
    const r = p.grants.grantAccess(d, vpage, false);
    const port = p.events.allocUnbound(d);
    check(r > 0 && port > 0, `pinger: victim ${i} setup failed (${r}, ${port})`);
    vrefs.push(r);
    vports.push(port);
    Atomics.store(mb, VREF + i, r);
    Atomics.store(mb, VPORT + i, port);
    p.events.on(port, () => void bump(mb, VEVENTS));
  });
  const port = await until(mb, PORT, (v) => v > 0, 10_000, 'pinger: port from dom0');
  put(mb, READY_PINGER, 1);
  await until(mb, READY_PONGER, (v) => v === 1, 10_000, 'pinger: ponger');
  const peerMap = mapOrThrow(p, a.peer, [Atomics.load(mb, REFS_PONGER), Atomics.load(mb, REFS_PONGER + 1)]);
  const peerW = words(peerMap.page(0));
  const ownW = words(p.memory.page(own[0]!)!);

  const failed = deferred<never>();
  let seq = 0;
  let awaiting = 0; // the round whose echo we wait for (0: none)
  let stopping = false;
  const pingNext = (): void => {
    if (stopping) return;
    awaiting = ++seq;
    Atomics.store(peerW, 0, seq); // the ponger checks this in its own page
    put(mb, PING, seq);
    check(p.events.notify(port) === 0, 'pinger: notify failed');
  };
  p.events.on(
    port,
    guard(failed, () => {
      if (awaiting === 0 || Atomics.load(mb, PONG) !== awaiting) return;
      if (Atomics.load(ownW, 0) !== awaiting) bump(mb, ERRORS);
      awaiting = 0;
      setTimeout(pingNext, a.pauseMs ?? 1);
    }),
  );
  pingNext();
  await Promise.race([until(mb, STOP, (v) => v === 1, 120_000, 'pinger: STOP'), failed.promise]);
  stopping = true;
  p.events.off(port);
  check(p.maps.unmap(peerMap) === GNTST_okay, 'pinger: unmap failed');
  check(p.events.close(port) === 0, 'pinger: close failed');
  put(mb, UNMAPPED_PINGER, 1);
  await until(mb, UNMAPPED_PONGER, (v) => v === 1, 10_000, 'pinger: ponger to unmap');
  for (const r of [...refs, ...vrefs]) check(p.grants.tryEndAccess(r), `pinger: ref ${r} still mapped`);
  for (const v of vports) {
    p.events.off(v);
    check(p.events.close(v) === 0, 'pinger: victim port close failed');
  }
  check(p.memory.freePages([...own, vpage]) === 0, 'pinger: free failed');
}

async function ponger(ctx: DomainContext, a: StormArgs, mb: Int32Array): Promise<void> {
  const p = ctx.platform;
  const own = alloc(p, 2);
  const refs = p.grants.grantAccessBatch(a.peer, own, false);
  check(typeof refs !== 'number', 'ponger: grant failed');
  refs.forEach((r, i) => Atomics.store(mb, REFS_PONGER + i, r));
  await until(mb, READY_PINGER, (v) => v === 1, 10_000, 'ponger: pinger');
  const peerMap = mapOrThrow(p, a.peer, [Atomics.load(mb, REFS_PINGER), Atomics.load(mb, REFS_PINGER + 1)]);
  const peerW = words(peerMap.page(0));
  const ownW = words(p.memory.page(own[0]!)!);
  const port = p.events.bindInterdomain(a.peer, Atomics.load(mb, PORT));
  check(port > 0, `ponger: bind failed: ${port}`);
  const failed = deferred<never>();
  let last = 0;
  p.events.on(
    port,
    guard(failed, () => {
      const v = Atomics.load(mb, PING);
      if (v <= last) return;
      if (Atomics.load(ownW, 0) !== v) bump(mb, ERRORS); // the pinger wrote v into our page first
      last = v;
      Atomics.store(peerW, 0, v);
      put(mb, PONG, v);
      check(p.events.notify(port) === 0, 'ponger: notify failed');
    }),
  );
  put(mb, READY_PONGER, 1);
  await Promise.race([until(mb, STOP, (v) => v === 1, 120_000, 'ponger: STOP'), failed.promise]);
  p.events.off(port);
  check(p.maps.unmap(peerMap) === GNTST_okay, 'ponger: unmap failed');
  check(p.events.close(port) === 0, 'ponger: close failed');
  put(mb, UNMAPPED_PONGER, 1);
  await until(mb, UNMAPPED_PINGER, (v) => v === 1, 10_000, 'ponger: pinger to unmap');
  for (const r of refs) check(p.grants.tryEndAccess(r), `ponger: ref ${r} still mapped`);
  check(p.memory.freePages(own) === 0, 'ponger: free failed');
}

/** Loops on hypercalls until destroyed. */
async function victim(ctx: DomainContext, a: StormArgs, mb: Int32Array): Promise<never> {
  const p = ctx.platform;
  const i = a.index!;
  if (a.grantToDom0) {
    const g = alloc(p, 1)[0]!;
    const r = p.grants.grantAccess(0, g, true);
    check(r > 0, 'victim: grant to dom0 failed');
    Atomics.store(mb, VD0REF + i, r);
  }
  const bRef = Atomics.load(mb, VREF + i);
  const port = p.events.bindInterdomain(a.peer, Atomics.load(mb, VPORT + i));
  check(port > 0, `victim: bind failed: ${port}`);
  put(mb, VSTATE + i, 1);
  for (let n = 0; ; n++) {
    for (let k = 0; k < 16; k++) {
      const r = p.maps.map(a.peer, [bRef], false);
      if (r.ok) {
        r.mapping.page(0)[k] = n & 0xff;
        p.maps.unmap(r.mapping);
      }
      const g = p.memory.allocPages(2, (k & 1) === 0);
      if (typeof g !== 'number') {
        const ref = p.grants.grantAccess(a.peer, g[0]!, false);
        if (ref > 0) p.grants.tryEndAccess(ref);
        p.memory.freePages(g);
      }
      p.events.notify(port);
      const u = p.events.allocUnbound(0);
      if (u > 0) p.events.close(u);
    }
    bump(mb, VPROG + i);
    await yieldNow();
  }
}

export default async function main(ctx: DomainContext): Promise<void> {
  const a = ctx.args as StormArgs;
  const { mb, mapping } = mapMailbox(ctx.platform, a.mailboxRef);
  if (a.role === 'victim') await victim(ctx, a, mb);
  else if (a.role === 'pinger') await pinger(ctx, a, mb);
  else await ponger(ctx, a, mb);
  check(ctx.platform.maps.unmap(mapping) === GNTST_okay, 'mailbox unmap failed');
}

/**
 * Two domains that map each other's grants and share an event channel, both busy: each iteration
 * writes the iteration number into every page of the peer it maps (and reads it back), notifies
 * the peer and reports progress. A (role 'A') owns the port (allocated by dom0 for B), B binds.
 *
 * A runs until destroyed, or crashes when dom0 sets its CTRL word (args.crash says how). B keeps
 * going after A is gone, records what it then observes (its port's status, a fresh map or bind
 * to A), and when dom0 says so unmaps A's pages, then ends its grants and powers off.
 */
import { EVTCHNSTAT_unbound } from '../../../src/abi/event-channel.js';
import { GNTST_okay } from '../../../src/abi/grant-table.js';
import type { DomainContext, GrantMapping } from '../../../src/hypervisor/index.js';
import { alloc, check, mapMailbox, mapOrThrow, put, until, words, yieldNow } from './hv-shared.js';

/** Mailbox blocks of the two parties. */
export const BLOCK_A = 0;
export const BLOCK_B = 32;
// Words inside a block.
export const STATE = 0; // 1 granted, 2 mapped and running, 4 (B) unmapped A, 5 (B) ended everything
export const PROG = 1; // iterations
export const PORTSTAT = 2; // B: status of its port once A is gone (EVTCHNSTAT_*), else 0
export const REMAP = 3; // B: GNTST of mapping A's refs again once A is gone (+1000 so 0 means "not tried")
export const REBIND = 4; // B: result of binding to A's port again once A is gone (+1000)
export const ERRORS = 5; // read-back mismatches through the mappings
export const EVENTS = 6; // handler calls
export const CTRL = 7; // from dom0. A: 1 = crash now. B: 1 = unmap A's pages, 2 = end everything
export const PORT = 8; // A: its port (from dom0); B: its bound port
export const SEEN_DEAD_AT = 9; // B: its iteration when it saw A gone
export const REFS = 12; // 4 refs granted to the peer
export const NPAGES = 4;

export type CrashMode = 'exit' | 'timer-throw' | 'reject';

export interface MutualArgs {
  readonly role: 'A' | 'B';
  readonly mailboxRef: number;
  readonly peer: number;
  /** A: how to crash when CTRL says so (default: never; it runs until destroyed). */
  readonly crash?: CrashMode;
}

export default async function main(ctx: DomainContext): Promise<void> {
  const a = ctx.args as MutualArgs;
  const p = ctx.platform;
  const { mb, mapping: mbMap } = mapMailbox(p, a.mailboxRef);
  const me = a.role === 'A' ? BLOCK_A : BLOCK_B;
  const them = a.role === 'A' ? BLOCK_B : BLOCK_A;

  // Own pages (2 contiguous, 2 not), granted read-write to the peer.
  const gfns = [...alloc(p, 2, true), ...alloc(p, 2)];
  const refs = p.grants.grantAccessBatch(a.peer, gfns, false);
  check(typeof refs !== 'number', 'grantAccessBatch failed');
  refs.forEach((r, i) => Atomics.store(mb, me + REFS + i, r));
  put(mb, me + STATE, 1);

  await until(mb, them + STATE, (v) => v >= 1, 10_000, `${a.role}: peer grants`);
  const peerRefs = Array.from({ length: NPAGES }, (_, i) => Atomics.load(mb, them + REFS + i));
  let peerMap: GrantMapping | undefined = mapOrThrow(p, a.peer, peerRefs);
  const peerWords = Array.from({ length: NPAGES }, (_, i) => words(peerMap!.page(i)));

  let port: number;
  if (a.role === 'A') {
    port = await until(mb, me + PORT, (v) => v > 0, 10_000, 'A: its port from dom0');
  } else {
    const aPort = await until(mb, them + PORT, (v) => v > 0, 10_000, 'B: A\'s port');
    port = p.events.bindInterdomain(a.peer, aPort);
    check(port > 0, `B: bind failed: ${port}`);
    put(mb, me + PORT, port);
  }
  p.events.on(port, () => void Atomics.add(mb, me + EVENTS, 1));
  put(mb, me + STATE, 2);

  let peerGone = false;
  for (let iter = 1; ; iter++) {
    // Write through the mapping of the peer's pages and read it back: the frames stay valid even
    // once the peer is destroyed (we hold references to them).
    for (const w of peerWords) {
      Atomics.store(w, 0, iter);
      w[1 + (iter & 511)] = iter;
      if (Atomics.load(w, 0) !== iter || w[1 + (iter & 511)] !== iter) Atomics.add(mb, me + ERRORS, 1);
    }
    const rc = p.events.notify(port);
    if (rc !== 0) Atomics.add(mb, me + ERRORS, 1);
    put(mb, me + PROG, iter);

    if ((iter & 63) === 0) {
      const ctrl = Atomics.load(mb, me + CTRL);
      if (a.role === 'A' && ctrl === 1 && a.crash) {
        if (a.crash === 'exit') process.exit(3);
        if (a.crash === 'reject') throw new Error('main rejected on purpose');
        setTimeout(() => {
          throw new Error('boom from a timer');
        }, 0);
        await new Promise(() => undefined); // the timer kills the worker
      }
      if (a.role === 'B') {
        const st = p.events.status(port);
        if (!peerGone && typeof st !== 'number' && st.status === EVTCHNSTAT_unbound) {
          // A is gone: our port went back to unbound. New maps and binds to it fail.
          peerGone = true;
          put(mb, me + SEEN_DEAD_AT, iter);
          Atomics.store(mb, me + PORTSTAT, st.status);
          const r = p.maps.map(a.peer, peerRefs, false);
          if (r.ok) p.maps.unmap(r.mapping);
          Atomics.store(mb, me + REMAP, (r.ok ? GNTST_okay : r.status) + 1000);
          Atomics.store(mb, me + REBIND, p.events.bindInterdomain(a.peer, Atomics.load(mb, them + PORT)) + 1000);
        }
        if (ctrl === 1 && peerMap) {
          check(p.maps.unmap(peerMap) === GNTST_okay, 'B: unmap of A failed');
          peerMap = undefined;
          put(mb, me + STATE, 4);
          break;
        }
      }
      await yieldNow();
    }
  }
  // B only: end everything once dom0 says so.
  await until(mb, me + CTRL, (v) => v === 2, 20_000, 'B: CTRL 2');
  for (const r of refs) check(p.grants.tryEndAccess(r), `B: ref ${r} still mapped`);
  check(p.memory.freePages(gfns) === 0, 'B: freePages failed');
  p.events.off(port);
  check(p.events.close(port) === 0, 'B: close failed');
  put(mb, me + STATE, 5);
  check(p.maps.unmap(mbMap) === GNTST_okay, 'B: mailbox unmap failed');
}

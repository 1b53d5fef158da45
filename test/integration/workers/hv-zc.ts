/**
 * Zero-copy across threads. The guest allocates 4 contiguous and 3 separate pages, grants them to
 * the backend (read-write) and to dom0 (read-only), and publishes the refs in the mailbox; the
 * backend binds to the guest's port (allocated by dom0) and maps them. Then they take turns,
 * woken only by the event channel: the guest writes pattern (round, G) in the first half of
 * every page through its own views, the backend checks it through its mappings (the contiguous
 * view for the contiguous pages) and writes (round, B) in the second half, which the guest
 * checks. Last, 2000 hand-offs through two words of the last page with Atomics.wait/notify and no
 * hypercall at all. dom0 verifies the final bytes through its own mapping.
 *
 * The backend side is also exported (runBackend) for dom0 to play it in the test thread.
 */
import type { DomainContext, EmulatedPlatform } from '../../../src/hypervisor/index.js';
import { GNTST_okay } from '../../../src/abi/grant-table.js';
import {
  alloc, check, deferred, fillPattern, findMismatch, guard, mapMailbox, mapOrThrow, PAGE_SIZE, put, until,
  untilSync, within, words,
} from './hv-shared.js';

export const N_CONTIG = 4;
export const N_SCATTER = 3;
export const N_PAGES = N_CONTIG + N_SCATTER;
export const ROUNDS = 200;
export const HANDOFFS = 2000;
/** Each page: the guest writes [0, HALF), the backend [HALF, B_END); the last page's last two words are the hand-off words. */
export const HALF = 2048;
export const B_END = PAGE_SIZE - 8;
export const W_TOKEN = 1022;
export const W_ECHO = 1023;

// Mailbox words.
export const G_STATE = 0; // 1 granted and published, 2 rounds and hand-offs done, 3 ended
export const B_STATE = 1; // 1 bound and mapped, 2 rounds and hand-offs done, 3 unmapped and closed
export const TURN = 2; // 2r: guest writes round r; 2r+1: backend writes round r
export const FINISH = 3; // set by dom0 once its own mappings are gone
export const B_CONTIG = 4; // 1 if the backend got one contiguous view of the contiguous pages
export const PORT = 5; // the guest's port, allocated unbound for the backend by dom0 once both exist
export const REFS_B = 16;
export const REFS_D0 = 32;

export const seedG = (r: number): number => 2 * r + 1;
export const seedB = (r: number): number => 2 * r + 2;

export interface GuestArgs {
  readonly role: 'guest';
  readonly mailboxRef: number;
  readonly backend: number;
}

export interface BackendArgs {
  readonly role: 'backend';
  readonly mailboxRef: number;
  readonly guest: number;
}

function expectPattern(view: Uint8Array, seed: number, page: number, from: number, to: number, who: string): void {
  const bad = findMismatch(view, seed, page, from, to);
  check(bad < 0, () => `${who}: page ${page} byte ${bad} is ${view[bad]}, not pattern ${seed}`);
}

async function guest(ctx: DomainContext, a: GuestArgs): Promise<void> {
  const p = ctx.platform;
  const { mb, mapping: mbMap } = mapMailbox(p, a.mailboxRef);
  const contig = alloc(p, N_CONTIG, true);
  const scattered = alloc(p, N_SCATTER);
  const gfns = [...contig, ...scattered];
  const pages = gfns.map((g) => p.memory.page(g)!);
  // The contiguous view and the per-page views are the same memory.
  const cview = p.memory.contiguous(contig);
  check(cview !== undefined && cview.byteLength === N_CONTIG * PAGE_SIZE, 'guest: no contiguous view of contiguous pages');
  cview[3 * PAGE_SIZE + 5] = 0xa5;
  check(pages[3]![5] === 0xa5, 'guest: contiguous view and page view differ');

  const refsB = p.grants.grantAccessBatch(a.backend, gfns, false);
  const refsD0 = p.grants.grantAccessBatch(0, gfns, true);
  check(typeof refsB !== 'number' && typeof refsD0 !== 'number', 'guest: grantAccessBatch failed');
  refsB.forEach((r, i) => Atomics.store(mb, REFS_B + i, r));
  refsD0.forEach((r, i) => Atomics.store(mb, REFS_D0 + i, r));

  const port = await until(mb, PORT, (v) => v > 0, 10_000, 'guest: its port from dom0');
  const done = deferred();
  const hw = words(pages[N_PAGES - 1]!);
  p.events.on(
    port,
    guard(done, () => {
      const t = Atomics.load(mb, TURN);
      if (Atomics.load(mb, B_STATE) < 1 || t % 2 !== 0 || t / 2 > ROUNDS) return; // not our turn
      const r = t / 2;
      if (r > 0) for (let i = 0; i < N_PAGES; i++) expectPattern(pages[i]!, seedB(r - 1), i, HALF, B_END, `guest round ${r}`);
      if (r === ROUNDS) {
        put(mb, TURN, t + 1); // no more turns
        for (let k = 1; k <= HANDOFFS; k++) {
          put(hw, W_TOKEN, k);
          untilSync(hw, W_ECHO, k, 5000, `guest: echo of hand-off ${k}`);
        }
        put(mb, G_STATE, 2);
        done.resolve();
        return;
      }
      for (let i = 0; i < N_PAGES; i++) fillPattern(pages[i]!, seedG(r), i, 0, HALF);
      put(mb, TURN, t + 1);
      check(p.events.notify(port) === 0, 'guest: notify failed');
    }),
  );
  put(mb, G_STATE, 1);
  await within(done.promise, 20_000, () => `guest: rounds (turn ${Atomics.load(mb, TURN)})`);

  // Tear down once the backend and dom0 have unmapped.
  await until(mb, B_STATE, (v) => v === 3, 20_000, 'guest: backend to unmap');
  await until(mb, FINISH, (v) => v === 1, 20_000, 'guest: dom0 to unmap');
  const acct = p.hypercalls.accounting()!;
  check(acct.mapsOfMine === 0 && acct.grantEntriesPinned === 0, () => `guest: grants still mapped: ${JSON.stringify(acct)}`);
  for (const r of [...refsB, ...refsD0]) check(p.grants.tryEndAccess(r), `guest: ref ${r} still in use`);
  check(p.memory.freePages(gfns) === 0, 'guest: freePages failed');
  p.events.off(port);
  check(p.events.close(port) === 0, 'guest: close failed');
  put(mb, G_STATE, 3);
  check(p.maps.unmap(mbMap) === GNTST_okay, 'guest: mailbox unmap failed');
}

/** The backend: binds, maps, answers every round, echoes the hand-offs, and unmaps when dom0 says FINISH. */
export async function runBackend(p: EmulatedPlatform, mb: Int32Array, guestDom: number): Promise<void> {
  await until(mb, G_STATE, (v) => v >= 1, 10_000, 'backend: guest grants');
  const guestPort = Atomics.load(mb, PORT);
  const refs: number[] = [];
  for (let i = 0; i < N_PAGES; i++) refs.push(Atomics.load(mb, REFS_B + i));
  const port = p.events.bindInterdomain(guestDom, guestPort);
  check(port > 0, `backend: bindInterdomain failed: ${port}`);
  const mc = mapOrThrow(p, guestDom, refs.slice(0, N_CONTIG));
  const ms = mapOrThrow(p, guestDom, refs.slice(N_CONTIG));
  const cv = mc.contiguous;
  check(cv !== undefined, 'backend: no contiguous view of the contiguous grants');
  put(mb, B_CONTIG, 1);
  // The contiguous pages are checked and written through the single contiguous view.
  const pages = [...Array.from({ length: N_CONTIG }, (_, i) => cv.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE)), ...Array.from({ length: N_SCATTER }, (_, i) => ms.page(i))];
  const hw = words(ms.page(N_SCATTER - 1));

  const done = deferred();
  p.events.on(
    port,
    guard(done, () => {
      const t = Atomics.load(mb, TURN);
      if (t % 2 !== 1 || t > 2 * ROUNDS) return; // not our turn (or the spurious event of the bind)
      const r = (t - 1) / 2;
      for (let i = 0; i < N_PAGES; i++) expectPattern(pages[i]!, seedG(r), i, 0, HALF, `backend round ${r}`);
      for (let i = 0; i < N_PAGES; i++) fillPattern(pages[i]!, seedB(r), i, HALF, B_END);
      put(mb, TURN, t + 1);
      check(p.events.notify(port) === 0, 'backend: notify failed');
      if (r === ROUNDS - 1) {
        for (let k = 1; k <= HANDOFFS; k++) {
          untilSync(hw, W_TOKEN, k, 5000, `backend: hand-off ${k}`);
          put(hw, W_ECHO, k);
        }
        put(mb, B_STATE, 2);
        done.resolve();
      }
    }),
  );
  put(mb, B_STATE, 1);
  check(p.events.notify(port) === 0, 'backend: notify failed');
  await within(done.promise, 20_000, () => `backend: rounds (turn ${Atomics.load(mb, TURN)})`);
  await until(mb, FINISH, (v) => v === 1, 20_000, 'backend: dom0 verification');
  p.events.off(port);
  check(p.maps.unmap(mc) === GNTST_okay && p.maps.unmap(ms) === GNTST_okay, 'backend: unmap failed');
  check(p.events.close(port) === 0, 'backend: close failed');
  put(mb, B_STATE, 3);
}

export default async function main(ctx: DomainContext): Promise<void> {
  const a = ctx.args as GuestArgs | BackendArgs;
  if (a.role === 'guest') return guest(ctx, a);
  const { mb, mapping } = mapMailbox(ctx.platform, a.mailboxRef);
  await runBackend(ctx.platform, mb, a.guest);
  check(ctx.platform.maps.unmap(mapping) === GNTST_okay, 'backend: mailbox unmap failed');
}

/**
 * Grants across threads are zero-copy: a guest worker's pages, mapped by a backend worker (or by
 * dom0 in this thread), are the same bytes for both sides and for dom0's own read-only mapping.
 * See workers/hv-zc.ts for the protocol.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { GNTST_okay } from '../../src/abi/grant-table.js';
import type { DomainHandle, Machine } from '../../src/hypervisor/index.js';
import {
  B_CONTIG, B_END, B_STATE, FINISH, G_STATE, HALF, HANDOFFS, N_CONTIG, N_PAGES, PORT, REFS_D0, ROUNDS, runBackend,
  seedB, seedG, W_ECHO, W_TOKEN,
} from './workers/hv-zc.js';
import { exitOf, findMismatch, hv, Mailbox, newMachine, orExit, PAGE_SIZE, put, until, words } from './workers/hv-shared.js';

const GUEST = 11;
const BACKEND = 12;

let m: Machine | undefined;
afterEach(async () => {
  if (m) await m.close();
  m = undefined;
});

/** dom0 maps the guest's read-only refs and checks every byte the two sides wrote last. */
function verifyFromDom0(machine: Machine, mb: Int32Array): void {
  const d0 = machine.dom0.platform!;
  const refs: number[] = [];
  for (let i = 0; i < N_PAGES; i++) refs.push(Atomics.load(mb, REFS_D0 + i));
  const rc = d0.maps.map(GUEST, refs.slice(0, N_CONTIG), true);
  const rs = d0.maps.map(GUEST, refs.slice(N_CONTIG), true);
  if (!rc.ok || !rs.ok) throw new Error('dom0 could not map the guest pages');
  try {
    const cv = rc.mapping.contiguous;
    expect(cv).toBeDefined();
    const pages = [...Array.from({ length: N_CONTIG }, (_, i) => rc.mapping.page(i)), ...Array.from({ length: N_PAGES - N_CONTIG }, (_, i) => rs.mapping.page(i))];
    for (let i = 0; i < N_PAGES; i++) {
      expect(findMismatch(pages[i]!, seedG(ROUNDS - 1), i, 0, HALF), `page ${i}, guest half`).toBe(-1);
      expect(findMismatch(pages[i]!, seedB(ROUNDS - 1), i, HALF, B_END), `page ${i}, backend half`).toBe(-1);
      // The contiguous view is the same bytes as the page views.
      if (i < N_CONTIG) expect(Buffer.compare(cv!.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), pages[i]!)).toBe(0);
    }
    const hw = words(pages[N_PAGES - 1]!);
    expect([hw[W_TOKEN], hw[W_ECHO]]).toEqual([HANDOFFS, HANDOFFS]);
    // Mid-scenario accounting: 7 pages mapped by the backend and by dom0.
    const a = machine.accounting().domains;
    const g = a.find((d) => d.domid === GUEST)!;
    expect(g.mapsOfMine).toBe(2 * N_PAGES);
    expect(g.grantEntriesPinned).toBe(2 * N_PAGES);
    expect(g.grantEntriesInUse).toBe(2 * N_PAGES);
  } finally {
    expect(d0.maps.unmap(rc.mapping)).toBe(GNTST_okay);
    expect(d0.maps.unmap(rs.mapping)).toBe(GNTST_okay);
  }
}

describe('zero-copy grants across threads', () => {
  it('guest worker -> backend worker: both see each other\'s writes; dom0 sees the final bytes', async () => {
    const logs: string[] = [];
    m = newMachine(logs);
    const d0 = m.dom0.platform!;
    const base = m.accounting();
    const box = new Mailbox(d0);
    const { mb } = box;
    const hs: DomainHandle[] = [];
    hs.push(await m.createDomain({ mode: 'worker', name: 'guest', domid: GUEST, module: hv('zc'), args: { role: 'guest', mailboxRef: box.grant(GUEST), backend: BACKEND } }));
    hs.push(await m.createDomain({ mode: 'worker', name: 'backend', domid: BACKEND, module: hv('zc'), args: { role: 'backend', mailboxRef: box.grant(BACKEND), guest: GUEST } }));
    // dom0 allocates the guest's port for the backend (it may do so in any domain) and publishes it.
    const port = d0.hypercalls.evtchnAllocUnbound(BACKEND, GUEST);
    expect(port).toBeGreaterThan(0);
    put(mb, PORT, port);
    await orExit(Promise.all(hs.map((h) => h.ready)), hs);

    await orExit(until(mb, G_STATE, (v) => v === 2, 25_000, 'guest rounds'), hs);
    await orExit(until(mb, B_STATE, (v) => v === 2, 5_000, 'backend rounds'), hs);
    expect(mb[B_CONTIG]).toBe(1);
    verifyFromDom0(m, mb);
    put(mb, FINISH, 1);

    const exits = await Promise.all(hs.map((h) => exitOf(h, 10_000)));
    expect(exits.map((e) => e.reason), logs.join('\n') + JSON.stringify(exits)).toEqual(['poweroff', 'poweroff']);
    expect(mb[G_STATE]).toBe(3);
    box.release();
    expect(m.leaks(base)).toEqual([]);
  }, 30_000);

  it('guest worker -> dom0 as the backend, in the test thread', async () => {
    const logs: string[] = [];
    m = newMachine(logs);
    const d0 = m.dom0.platform!;
    const base = m.accounting();
    const box = new Mailbox(d0);
    const { mb } = box;
    const h = await m.createDomain({ mode: 'worker', name: 'guest', domid: GUEST, module: hv('zc'), args: { role: 'guest', mailboxRef: box.grant(GUEST), backend: 0 } });
    const port = d0.hypercalls.evtchnAllocUnbound(0, GUEST);
    expect(port).toBeGreaterThan(0);
    put(mb, PORT, port);
    await orExit(h.ready, [h]);
    const backend = runBackend(d0, mb, GUEST);
    backend.catch(() => undefined);
    await orExit(until(mb, G_STATE, (v) => v === 2, 25_000, 'guest rounds'), [h]);
    await orExit(until(mb, B_STATE, (v) => v === 2, 5_000, 'dom0 backend rounds'), [h]);
    verifyFromDom0(m, mb);
    put(mb, FINISH, 1);
    await backend;
    const e = await exitOf(h, 10_000);
    expect(e.reason, logs.join('\n') + (e.error ?? '')).toBe('poweroff');
    box.release();
    expect(m.leaks(base)).toEqual([]);
  }, 30_000);
});

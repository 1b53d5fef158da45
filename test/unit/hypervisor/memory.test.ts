// Bad inputs tried: quota and machine exhaustion, gfns out of range / negative / fractional / already populated / repeated, releasing holes and foreign-mapped gfns, zero and fractional counts, gfn space exhaustion, calls after destroy.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { XEN_ERRNO } from '../../../src/abi/xen-errno.js';
import type { Machine, MachineAccounting } from '../../../src/hypervisor/index.js';
import { PAGE_SIZE } from '../../../src/hypervisor/index.js';
import { acct, ballooned, grant, guest, newMachine, pages, view } from './helpers.js';

const { EINVAL, ENOMEM, ESRCH } = XEN_ERRNO;

describe('guest memory', () => {
  let m: Machine;
  let base: MachineAccounting;

  beforeEach(() => {
    m = newMachine(16);
    base = m.accounting();
  });

  afterEach(async () => {
    await m.close();
  });

  it('populates and releases pages, counting frames', async () => {
    const g = await guest(m, 'g');
    const p = g.platform;
    const before = m.accounting();
    const gfns = pages(p, 4);
    expect(Array.from(gfns)).toEqual([0, 1, 2, 3]);
    const mid = m.accounting();
    const leafFrames = acct(m, g.domid).xenFrames - before.domains.find((d) => d.domid === g.domid)!.xenFrames;
    expect(leafFrames).toBe(1); // one p2m leaf
    expect(acct(m, g.domid).pages).toBe(4);
    expect(mid.freeFrames).toBe(before.freeFrames - 4 - leafFrames);
    expect(p.pages.counts).toEqual({ populated: 4, ballooned: 0 });
    for (const gfn of gfns) expect(view(p, gfn).every((b) => b === 0)).toBe(true);

    expect(p.memory.freePages(gfns.subarray(0, 2))).toBe(0);
    expect(acct(m, g.domid).pages).toBe(2);
    expect(m.accounting().freeFrames).toBe(before.freeFrames - 2 - leafFrames);
    expect(p.memory.page(0)).toBeUndefined();
    expect(p.memory.page(2)).toBeDefined();
    expect(p.hypercalls.gfnToMfn(0)).toBe(-1);

    // The freed gfns are handed out again.
    const again = pages(p, 2);
    expect(Array.from(again).sort()).toEqual([0, 1]);
    expect(acct(m, g.domid).pages).toBe(4);
    expect(p.memory.freePages([...gfns.subarray(2), ...again])).toBe(0);
    expect(acct(m, g.domid).pages).toBe(0);
    await m.destroyDomain(g.domid);
    expect(m.leaks(base)).toEqual([]);
  });

  it('populate_physmap: -EINVAL for bad or populated gfns, partial counts, -EINVAL releasing holes', async () => {
    const g = await guest(m, 'g', { limits: { gfnLimit: 64 } });
    const hc = g.platform.hypercalls;
    expect(hc.populatePhysmap([5])).toBe(1);
    expect(hc.populatePhysmap([5])).toBe(-EINVAL); // already populated
    expect(hc.populatePhysmap([64])).toBe(-EINVAL); // == gfnLimit
    expect(hc.populatePhysmap([-1])).toBe(-EINVAL);
    expect(hc.populatePhysmap([1.5])).toBe(-EINVAL);
    expect(hc.populatePhysmap([NaN])).toBe(-EINVAL);
    expect(hc.populatePhysmap([])).toBe(0);
    // Stops at the first bad gfn and says how many were done.
    expect(hc.populatePhysmap([6, 7, 5, 8])).toBe(2);
    expect(acct(m, g.domid).pages).toBe(3);
    expect(hc.gfnToMfn(8)).toBe(-1);
    // Contiguous: all or nothing, a repeated or populated gfn is -EINVAL.
    expect(hc.populatePhysmap([10, 11, 10], true)).toBe(-EINVAL);
    expect(hc.populatePhysmap([10, 11, 5], true)).toBe(-EINVAL);
    expect(hc.populatePhysmap([], true)).toBe(0);
    expect(hc.gfnToMfn(10)).toBe(-1);
    expect(acct(m, g.domid).pages).toBe(3);

    expect(hc.decreaseReservation([9])).toBe(-EINVAL); // a hole
    expect(hc.decreaseReservation([64])).toBe(-EINVAL);
    expect(hc.decreaseReservation([-3])).toBe(-EINVAL);
    expect(hc.decreaseReservation([5, 9, 6])).toBe(1); // stops at the hole
    expect(hc.decreaseReservation([6, 7])).toBe(2);
    expect(acct(m, g.domid).pages).toBe(0);
    expect(g.platform.memory.freePages([5])).toBe(-EINVAL);
    await m.destroyDomain(g.domid);
    expect(m.leaks(base)).toEqual([]);
  });

  it('-ENOMEM at the page quota, nothing half-allocated', async () => {
    const g = await guest(m, 'g', { limits: { maxPages: 8 } });
    const p = g.platform;
    const first = pages(p, 6);
    const free = m.accounting().freeFrames;
    // Low level: a partial count.
    expect(p.hypercalls.populatePhysmap([100, 101, 102])).toBe(2);
    expect(acct(m, g.domid).pages).toBe(8);
    expect(p.hypercalls.populatePhysmap([103])).toBe(-ENOMEM);
    expect(p.hypercalls.populatePhysmap([103, 104], true)).toBe(-ENOMEM);
    expect(p.hypercalls.decreaseReservation([100, 101])).toBe(2);
    expect(m.accounting().freeFrames).toBe(free);
    // The allocator: all or nothing.
    expect(p.memory.allocPages(3)).toBe(-ENOMEM);
    expect(acct(m, g.domid).pages).toBe(6);
    expect(m.accounting().freeFrames).toBe(free);
    expect(p.memory.allocPages(3, true)).toBe(-ENOMEM);
    expect(acct(m, g.domid).pages).toBe(6);
    const last = pages(p, 2);
    expect(acct(m, g.domid).pages).toBe(8);
    expect(p.memory.allocPages(1)).toBe(-ENOMEM);
    expect(p.memory.freePages(first)).toBe(0);
    expect(p.memory.freePages(last)).toBe(0);
    expect(p.pages.counts.populated).toBe(0);
    await m.destroyDomain(g.domid);
    expect(m.leaks(base)).toEqual([]);
  });

  it('-ENOMEM when machine memory runs out, and everything comes back', async () => {
    const small = newMachine(1);
    try {
      const sbase = small.accounting();
      const g = await guest(small, 'g');
      const free = small.accounting().freeFrames;
      expect(g.platform.memory.allocPages(free + 1)).toBe(-ENOMEM);
      expect(g.platform.memory.allocPages(free + 1, true)).toBe(-ENOMEM);
      expect(acct(small, g.domid).pages).toBe(0);
      // Leaves allocated on the way may stay until teardown; RAM does not.
      expect(small.accounting().freeFrames).toBeGreaterThanOrEqual(free - 1);
      const all = g.platform.memory.allocPages(free - 1);
      expect(typeof all).not.toBe('number');
      expect(small.accounting().freeFrames).toBe(0);
      expect(g.platform.hypercalls.populatePhysmap([5000])).toBe(-ENOMEM);
      await small.destroyDomain(g.domid);
      expect(small.leaks(sbase)).toEqual([]);
    } finally {
      await small.close();
    }
  });

  it('a contiguous allocation is one view with the same bytes as the page views', async () => {
    const g = await guest(m, 'g');
    const p = g.platform;
    pages(p, 1); // shift the gfns off zero
    const gfns = pages(p, 4, true);
    const mfns = Array.from(p.hypercalls.gfnsToMfns(gfns));
    for (let i = 1; i < 4; i++) expect(mfns[i]).toBe(mfns[0]! + i);
    const all = p.memory.contiguous(gfns);
    expect(all).toBeDefined();
    expect(all!.byteLength).toBe(4 * PAGE_SIZE);
    for (let i = 0; i < 4; i++) view(p, gfns[i]!).fill(0x10 + i);
    for (let i = 0; i < 4; i++) expect(all!.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE).every((b) => b === 0x10 + i)).toBe(true);
    all![3 * PAGE_SIZE + 17] = 0xee;
    expect(view(p, gfns[3]!)[17]).toBe(0xee);
    // Not in order, with a hole, or empty: no single view.
    expect(p.memory.contiguous([gfns[1]!, gfns[0]!])).toBeUndefined();
    expect(p.memory.contiguous([gfns[0]!, 999])).toBeUndefined();
    expect(p.memory.contiguous([])).toBeUndefined();
    expect(p.memory.contiguous(gfns.subarray(1, 3))).toBeDefined();
    expect(acct(m, g.domid).pages).toBe(5);
    await m.destroyDomain(g.domid);
    expect(m.leaks(base)).toEqual([]);
  });

  it('frames are zeroed when another domain gets them (freed pages and destroyed domains)', async () => {
    const small = newMachine(1);
    try {
      const sbase = small.accounting();
      const a = await guest(small, 'a');
      const b = await guest(small, 'b');
      // a takes (nearly) all memory, fills it, frees it.
      const n = small.accounting().freeFrames - 2;
      const ga = pages(a.platform, n);
      const mfnsA = new Set(a.platform.hypercalls.gfnsToMfns(ga));
      for (const gfn of ga) view(a.platform, gfn).fill(0xa5);
      expect(a.platform.memory.freePages(ga)).toBe(0);
      // b must now reuse a's frames.
      const gb = pages(b.platform, n);
      const mfnsB = b.platform.hypercalls.gfnsToMfns(gb);
      expect(mfnsB.some((x) => mfnsA.has(x))).toBe(true);
      for (const gfn of gb) expect(view(b.platform, gfn).every((x) => x === 0)).toBe(true);
      // b fills its pages and is destroyed; a gets them back zeroed.
      for (const gfn of gb) view(b.platform, gfn).fill(0x5a);
      await small.destroyDomain(b.domid);
      const ga2 = pages(a.platform, n);
      for (const gfn of ga2) expect(view(a.platform, gfn).every((x) => x === 0)).toBe(true);
      await small.destroyDomain(a.domid);
      expect(small.leaks(sbase)).toEqual([]);
    } finally {
      await small.close();
    }
  });

  it('ballooned gfns: no memory behind them, no quota spent, not releasable', async () => {
    const g = await guest(m, 'g', { limits: { gfnLimit: 16 } });
    const p = g.platform;
    const free = m.accounting().freeFrames;
    const b = ballooned(p, 3);
    expect(Array.from(b)).toEqual([0, 1, 2]);
    expect(p.pages.counts).toEqual({ populated: 0, ballooned: 3 });
    expect(acct(m, g.domid).pages).toBe(0);
    expect(m.accounting().freeFrames).toBe(free);
    for (const gfn of b) {
      expect(p.memory.page(gfn)).toBeUndefined();
      expect(p.hypercalls.gfnToMfn(gfn)).toBe(-1);
    }
    expect(p.memory.freePages(b)).toBe(-EINVAL);
    expect(p.memory.allocBallooned(0)).toBe(-EINVAL);
    expect(p.memory.allocBallooned(-2)).toBe(-EINVAL);
    expect(p.memory.allocBallooned(1.5)).toBe(-EINVAL);
    expect(p.memory.allocPages(0)).toBe(-EINVAL);
    expect(p.memory.allocPages(2.5)).toBe(-EINVAL);
    // Guest-physical space: 16 gfns, 3 ballooned.
    expect(p.memory.allocBallooned(14)).toBe(-ENOMEM);
    const rest = pages(p, 13);
    expect(p.memory.allocPages(1)).toBe(-ENOMEM);
    expect(p.memory.allocBallooned(1)).toBe(-ENOMEM);
    p.memory.freeBallooned(b);
    expect(p.pages.counts.ballooned).toBe(0);
    // Given back twice, or gfns never handed out as ballooned: nothing more is counted.
    p.memory.freeBallooned(b);
    p.memory.freeBallooned([rest[0]! + 100_000, -1]);
    expect(p.pages.counts.ballooned).toBe(0);
    // Given back: now usable for RAM.
    const reused = pages(p, 3);
    expect(Array.from(reused).sort()).toEqual([0, 1, 2]);
    expect(p.memory.freePages(rest)).toBe(0);
    expect(p.memory.freePages(reused)).toBe(0);
    await m.destroyDomain(g.domid);
    expect(m.leaks(base)).toEqual([]);
  });

  it('a gfn with a foreign grant mapped there is neither populatable nor releasable', async () => {
    const a = await guest(m, 'a');
    const b = await guest(m, 'b');
    const [ga] = pages(a.platform, 1);
    const ref = grant(a.platform, b.domid, ga!);
    const [host] = ballooned(b.platform, 1);
    const r = b.platform.maps.map(a.domid, [ref], false, [host!]);
    expect(r.ok).toBe(true);
    expect(b.platform.hypercalls.populatePhysmap([host!])).toBe(-EINVAL);
    expect(b.platform.hypercalls.decreaseReservation([host!])).toBe(-EINVAL);
    expect(b.platform.memory.freePages([host!])).toBe(-EINVAL);
    expect(acct(m, b.domid).pages).toBe(0);
    if (r.ok) expect(b.platform.maps.unmap(r.mapping)).toBe(0);
    expect(b.platform.hypercalls.populatePhysmap([host!])).toBe(1);
    expect(b.platform.hypercalls.decreaseReservation([host!])).toBe(1);
    await m.destroyDomain(a.domid);
    await m.destroyDomain(b.domid);
    expect(m.leaks(base)).toEqual([]);
  });

  it('memory hypercalls of a destroyed domain fail with -ESRCH', async () => {
    const g = await guest(m, 'g');
    const p = g.platform;
    const gfns = pages(p, 2);
    await m.destroyDomain(g.domid);
    expect(p.hypercalls.alive).toBe(false);
    expect(p.hypercalls.populatePhysmap([10])).toBe(-ESRCH);
    expect(p.hypercalls.decreaseReservation(gfns)).toBe(-ESRCH);
    expect(p.memory.allocPages(1)).toBe(-ESRCH);
    expect(p.memory.page(gfns[0]!)).toBeUndefined();
    expect(p.memory.contiguous(gfns)).toBeUndefined();
    expect(p.hypercalls.accounting()).toBeUndefined();
    expect(m.leaks(base)).toEqual([]);
  });
});

describe('page allocator reuse', () => {
  it('reuses given-back gfns for contiguous and ballooned allocations: the gfn space stays at its peak', async () => {
    const m = newMachine(16);
    const g = await guest(m, 'g', { limits: { gfnLimit: 4096 } });
    const p = g.platform;
    const once = (): void => {
      const c = p.memory.allocPages(1000, true);
      const b = p.memory.allocBallooned(1000);
      const s = p.memory.allocPages(500);
      if (typeof c === 'number' || typeof b === 'number' || typeof s === 'number') throw new Error(`allocation failed: ${String(c)} ${String(b)} ${String(s)}`);
      expect(p.memory.contiguous(c)).toBeDefined();
      p.memory.freePages(c);
      p.memory.freeBallooned(b);
      p.memory.freePages(s);
    };
    once();
    const base = m.accounting();
    // 100 cycles of 2,500 gfns each would need 250,000 gfns without reuse: far beyond 4096.
    for (let i = 0; i < 100; i++) once();
    expect(m.leaks(base)).toEqual([]);
    expect(acct(m, g.domid).pages).toBe(0);
    await m.close();
  });

  it('finds a run among given-back gfns between ones still in use', async () => {
    const m = newMachine(16);
    const g = await guest(m, 'g', { limits: { gfnLimit: 2048 } });
    const p = g.platform;
    const a = p.memory.allocPages(10) as Int32Array;
    const hole = p.memory.allocPages(8, true) as Int32Array;
    const b = p.memory.allocPages(10) as Int32Array;
    p.memory.freePages(hole);
    const again = p.memory.allocPages(8, true) as Int32Array;
    expect(Array.from(again)).toEqual(Array.from(hole));
    p.memory.freePages(a);
    p.memory.freePages(b);
    p.memory.freePages(again);
    await m.close();
  });
});

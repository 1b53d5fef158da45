// Bad inputs tried: reserved refs 0..7, growing past maxGrantFrames, negative/fractional counts, bad domids and gfns in (batch) grants, ending access while mapped, revoking or freeing a mapped page, retry budgets and starvation, 60 failed retries.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  GNTST_general_error, GNTST_okay, GNTTAB_NR_RESERVED_ENTRIES, GTF_permit_access, GTF_readonly, GTF_reading, GTF_writing,
} from '../../../src/abi/grant-table.js';
import { XEN_ERRNO } from '../../../src/abi/xen-errno.js';
import type { DeferredOptions, EmulatedPlatform, GrantMapping, Machine, MachineAccounting } from '../../../src/hypervisor/index.js';
import { acct, grant, guest, newMachine, pages, view } from './helpers.js';

const { EINVAL, ENOSPC } = XEN_ERRNO;

describe('guest grant table client', () => {
  let m: Machine;
  let base: MachineAccounting;
  let A: number;
  let B: number;
  let a: EmulatedPlatform;
  let b: EmulatedPlatform;

  async function setup(maxGrantFrames = 1, deferred: DeferredOptions = { retryMs: 0 }): Promise<void> {
    const ha = await guest(m, 'a', { limits: { maxGrantFrames }, platform: { deferred } });
    const hb = await guest(m, 'b');
    [A, B, a, b] = [ha.domid, hb.domid, ha.platform, hb.platform];
  }

  function mapOne(ref: number, readonly = false): GrantMapping {
    const r = b.maps.map(A, [ref], readonly);
    if (!r.ok) throw new Error(`map failed: ${r.status}`);
    return r.mapping;
  }

  beforeEach(() => {
    m = newMachine(16);
    base = m.accounting();
  });

  afterEach(async () => {
    for (const d of [A, B]) if (m.handles.has(d)) await m.destroyDomain(d);
    expect(m.leaks(base)).toEqual([]);
    await m.close();
  });

  it('refs start at 8 and the reserved entries are never handed out', async () => {
    await setup(1);
    const [gfn] = pages(a, 1);
    expect(a.grants.freeCount).toBe(512 - GNTTAB_NR_RESERVED_ENTRIES);
    expect(grant(a, B, gfn!)).toBe(8);
    expect(grant(a, B, gfn!)).toBe(9);
    const all = a.grants.reserve(502);
    expect(Array.isArray(all)).toBe(true);
    if (!Array.isArray(all)) return;
    expect(all[0]).toBe(10);
    expect(Math.min(...all)).toBeGreaterThanOrEqual(8);
    expect(Math.max(...all)).toBe(511);
    expect(new Set(all).size).toBe(502);
    expect(a.grants.freeCount).toBe(0);
    expect(a.grants.grantAccess(B, gfn!, false)).toBe(-ENOSPC);
    expect(a.grants.reserve(1)).toBe(-ENOSPC);
    expect(acct(m, A).grantFrames).toBe(1);
    // Reserved entries cannot be ended through the client either.
    expect(a.grants.endAccessRef(0)).toBe(false);
    expect(a.grants.tryEndAccess(7)).toBe(false);
    a.grants.unreserve(all);
    expect(a.grants.freeCount).toBe(502);
  });

  it('the table grows a frame at a time up to maxGrantFrames, then -ENOSPC', async () => {
    await setup(3);
    const [gfn] = pages(a, 1);
    const x0 = acct(m, A).xenFrames;
    const free0 = m.accounting().freeFrames;
    expect(a.hypercalls.gnttabQuerySize()).toEqual({ status: GNTST_okay, nrFrames: 1, maxNrFrames: 3 });
    const first = a.grants.reserve(504);
    expect(Array.isArray(first) && first.length).toBe(504);
    expect(acct(m, A).grantFrames).toBe(1);
    const r = grant(a, B, gfn!);
    expect(r).toBe(512);
    expect(acct(m, A).grantFrames).toBe(2);
    expect(acct(m, A).xenFrames).toBe(x0 + 3); // entries frame + 2 active-entry frames
    expect(m.accounting().freeFrames).toBe(free0 - 3);
    expect(a.grants.freeCount).toBe(511);
    // A reservation bigger than what is free grows as needed.
    const more = a.grants.reserve(600);
    expect(Array.isArray(more) && more.length).toBe(600);
    expect(acct(m, A).grantFrames).toBe(3);
    expect(a.grants.freeCount).toBe(511 + 512 - 600);
    expect(a.grants.reserve(512)).toBe(-ENOSPC);
    const rest = a.grants.reserve(a.grants.freeCount);
    expect(Array.isArray(rest)).toBe(true);
    expect(a.grants.grantAccess(B, gfn!, false)).toBe(-ENOSPC);
    expect(a.grants.grantAccessBatch(B, [gfn!], false)).toBe(-ENOSPC);
    expect(acct(m, A).grantFrames).toBe(3);
    expect(a.hypercalls.gnttabSetupTable(4)).toBe(GNTST_general_error);
    expect(a.hypercalls.gnttabSetupTable(-1)).toBe(GNTST_general_error);
    expect(a.hypercalls.gnttabSetupTable(2)).toBe(GNTST_okay); // never shrinks
    expect(a.hypercalls.gnttabQuerySize().nrFrames).toBe(3);
    // Grants in the grown frames work like the others.
    const mp = mapOne(r);
    expect(a.grants.flags(r)).toBe(GTF_permit_access | GTF_reading | GTF_writing);
    b.maps.unmap(mp);
  });

  it('reserve / unreserve and bad arguments', async () => {
    await setup(1);
    const [gfn] = pages(a, 1);
    expect(a.grants.reserve(-1)).toBe(-EINVAL);
    expect(a.grants.reserve(1.5)).toBe(-EINVAL);
    expect(a.grants.reserve(0)).toEqual([]);
    const refs = a.grants.reserve(3);
    expect(refs).toEqual([8, 9, 10]);
    if (!Array.isArray(refs)) return;
    // Reserved refs are not granted yet.
    expect(acct(m, A).grantEntriesInUse).toBe(0);
    a.grants.grantAccessRef(refs[1]!, B, gfn!, true);
    expect(a.grants.flags(9)).toBe(GTF_permit_access | GTF_readonly);
    expect(acct(m, A).grantEntriesInUse).toBe(1);
    expect(grant(a, B, gfn!)).toBe(11);
    a.grants.unreserve([refs[0]!, refs[2]!]);
    expect(grant(a, B, gfn!)).toBe(10);
    expect(grant(a, B, gfn!)).toBe(8);
    for (const bad of [-1, 0x7ff0, 0xffff, 1.5, NaN]) expect(a.grants.grantAccess(bad, gfn!, false)).toBe(-EINVAL);
    for (const bad of [-1, 2 ** 32, 0.5]) expect(a.grants.grantAccess(B, bad, false)).toBe(-EINVAL);
    expect(acct(m, A).grantEntriesInUse).toBe(4);
  });

  it('grantAccessBatch is all or nothing', async () => {
    await setup(1);
    const gfns = pages(a, 3);
    const free = a.grants.freeCount;
    expect(a.grants.grantAccessBatch(B, [gfns[0]!, -5, gfns[2]!], false)).toBe(-EINVAL);
    expect(a.grants.grantAccessBatch(-1, gfns, false)).toBe(-EINVAL);
    expect(a.grants.grantAccessBatch(B, new Array<number>(free + 1).fill(gfns[0]!), false)).toBe(-ENOSPC);
    expect(a.grants.freeCount).toBe(free);
    expect(acct(m, A).grantEntriesInUse).toBe(0);
    const refs = a.grants.grantAccessBatch(B, gfns, true);
    expect(refs).toEqual([8, 9, 10]);
    if (!Array.isArray(refs)) return;
    for (const r of refs) expect(a.grants.flags(r)).toBe(GTF_permit_access | GTF_readonly);
    expect(acct(m, A).grantEntriesInUse).toBe(3);
    const res = b.maps.map(A, refs, true);
    expect(res.ok).toBe(true);
    if (res.ok) {
      b.maps.unmap(res.mapping);
    }
    for (const r of refs) expect(a.grants.endAccess(r)).toBe(true);
    expect(acct(m, A).grantEntriesInUse).toBe(0);
  });

  it('endAccess of an unmapped grant ends at once and the ref is reused', async () => {
    await setup(1);
    const [gfn] = pages(a, 1);
    const r = grant(a, B, gfn!);
    const released = vi.fn();
    expect(a.grants.endAccess(r, released)).toBe(true);
    expect(released).toHaveBeenCalledTimes(1);
    expect(a.grants.flags(r)).toBe(0);
    expect(a.grants.deferredCount).toBe(0);
    expect(b.maps.map(A, [r], true)).toEqual({ ok: false, status: GNTST_general_error, index: 0 });
    expect(grant(a, B, gfn!)).toBe(r);
  });

  it('endAccess while mapped is deferred and completes after the unmap', async () => {
    await setup(1);
    const [gfn] = pages(a, 1);
    const r = grant(a, B, gfn!);
    const mp = mapOne(r, true);
    const released = vi.fn();
    expect(a.grants.endAccess(r, released)).toBe(false);
    expect(released).not.toHaveBeenCalled();
    expect(a.grants.deferredCount).toBe(1);
    expect(a.grants.flags(r)).toBe(GTF_permit_access | GTF_reading);
    expect(a.grants.retryDeferred()).toBe(0);
    expect(a.grants.retryDeferred(true)).toBe(0);
    expect(a.grants.deferredCount).toBe(1);
    expect(released).not.toHaveBeenCalled();
    expect(acct(m, A).grantEntriesInUse).toBe(1);
    // The ref is not handed out while deferred.
    const other = grant(a, B, gfn!);
    expect(other).not.toBe(r);
    expect(a.grants.endAccess(other)).toBe(true);
    // The mapper still sees the page.
    view(a, gfn!)[0] = 0x33;
    expect(mp.page(0)[0]).toBe(0x33);
    expect(b.maps.unmap(mp)).toBe(GNTST_okay);
    expect(a.grants.flags(r)).toBe(GTF_permit_access);
    expect(a.grants.retryDeferred()).toBe(1);
    expect(released).toHaveBeenCalledTimes(1);
    expect(a.grants.deferredCount).toBe(0);
    expect(a.grants.flags(r)).toBe(0);
    expect(acct(m, A).grantEntriesInUse).toBe(0);
    expect(a.grants.retryDeferred()).toBe(0);
    expect(released).toHaveBeenCalledTimes(1);
    // The ref is reusable (and the page can now be freed, as onReleased would).
    expect(grant(a, B, gfn!)).toBe(r);
    expect(grant(a, B, gfn!)).toBe(other);
    expect(a.memory.freePages([gfn!])).toBe(0);
  });

  it('tryEndAccess fails while mapped (RO or RW) and succeeds after', async () => {
    await setup(1);
    const [gfn] = pages(a, 1);
    const r = grant(a, B, gfn!);
    const rw = mapOne(r);
    expect(a.grants.tryEndAccess(r)).toBe(false);
    expect(a.grants.endAccessRef(r)).toBe(false);
    expect(a.grants.flags(r)).toBe(GTF_permit_access | GTF_reading | GTF_writing);
    b.maps.unmap(rw);
    const ro = mapOne(r, true);
    expect(a.grants.tryEndAccess(r)).toBe(false);
    b.maps.unmap(ro);
    expect(a.grants.tryEndAccess(r)).toBe(true);
    expect(a.grants.flags(r)).toBe(0);
    expect(a.grants.deferredCount).toBe(0);
  });

  it('perIteration limits the entries retried per tick (0 = all)', async () => {
    await setup(1, { retryMs: 0, perIteration: 2 });
    const gfns = pages(a, 5);
    const refs = Array.from(gfns, (g) => grant(a, B, g));
    const maps = refs.map((r) => mapOne(r, true));
    const released: number[] = [];
    for (const r of refs) expect(a.grants.endAccess(r, () => released.push(r))).toBe(false);
    expect(a.grants.deferredCount).toBe(5);
    for (const mp of maps) b.maps.unmap(mp);
    expect(a.grants.retryDeferred()).toBe(2);
    expect(a.grants.deferredCount).toBe(3);
    expect(a.grants.retryDeferred()).toBe(2);
    expect(a.grants.retryDeferred()).toBe(1);
    expect(a.grants.deferredCount).toBe(0);
    expect(released.sort()).toEqual([...refs].sort());
    // retryDeferred(true) ignores the budget.
    const again = refs.map(() => grant(a, B, gfns[0]!));
    const maps2 = again.map((r) => mapOne(r, true));
    for (const r of again) a.grants.endAccess(r);
    for (const mp of maps2) b.maps.unmap(mp);
    expect(a.grants.retryDeferred(true)).toBe(5);
    expect(a.grants.deferredCount).toBe(0);
  });

  it('perIteration 0 retries every entry', async () => {
    await setup(1, { retryMs: 0, perIteration: 0 });
    const gfns = pages(a, 12);
    const refs = Array.from(gfns, (g) => grant(a, B, g));
    const maps = refs.map((r) => mapOne(r, true));
    for (const r of refs) a.grants.endAccess(r);
    for (const mp of maps) b.maps.unmap(mp);
    expect(a.grants.retryDeferred()).toBe(12);
  });

  it('an entry still mapped does not starve the entries behind it (Linux moves it to the tail)', async () => {
    await setup(1, { retryMs: 0, perIteration: 1 });
    const gfns = pages(a, 2);
    const [stuck, ready] = Array.from(gfns, (g) => grant(a, B, g)) as [number, number];
    const stuckMap = mapOne(stuck, true);
    const readyMap = mapOne(ready, true);
    const released = vi.fn();
    expect(a.grants.endAccess(stuck)).toBe(false);
    expect(a.grants.endAccess(ready, released)).toBe(false);
    b.maps.unmap(readyMap);
    // Two ticks of one entry each: the second reaches `ready`.
    a.grants.retryDeferred();
    a.grants.retryDeferred();
    expect(released).toHaveBeenCalledTimes(1);
    expect(a.grants.deferredCount).toBe(1);
    b.maps.unmap(stuckMap);
  });

  it('onStillPending is called once, after 60 failed retries', async () => {
    const pending = vi.fn();
    await setup(1, { retryMs: 0, onStillPending: pending });
    const [gfn] = pages(a, 1);
    const r = grant(a, B, gfn!);
    const mp = mapOne(r);
    expect(a.grants.endAccess(r)).toBe(false);
    for (let i = 0; i < 59; i++) a.grants.retryDeferred();
    expect(pending).not.toHaveBeenCalled();
    a.grants.retryDeferred();
    expect(pending).toHaveBeenCalledTimes(1);
    expect(pending).toHaveBeenCalledWith(r);
    for (let i = 0; i < 100; i++) a.grants.retryDeferred();
    expect(pending).toHaveBeenCalledTimes(1);
    expect(a.grants.deferredCount).toBe(1);
    b.maps.unmap(mp);
    expect(a.grants.retryDeferred()).toBe(1);
  });

  it('an onReleased that throws during a retry is reported and does not leave the ended entry on the deferred list', async () => {
    const errors: unknown[] = [];
    await setup(1, { retryMs: 0, onError: (e) => errors.push(e) });
    const [gfn] = pages(a, 1);
    const r = grant(a, B, gfn!);
    const mp = mapOne(r, true);
    const released = vi.fn(() => {
      throw new Error('release failed');
    });
    expect(a.grants.endAccess(r, released)).toBe(false);
    b.maps.unmap(mp);
    expect(a.grants.retryDeferred()).toBe(1);
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toContain('release failed');
    expect(released).toHaveBeenCalledTimes(1);
    expect(a.grants.deferredCount).toBe(0);
    // The ref was freed: a new grant reuses it, and a later retry must not end that new grant.
    const again = grant(a, B, gfn!);
    expect(again).toBe(r);
    expect(a.grants.retryDeferred()).toBe(0);
    expect(a.grants.flags(again)).toBe(GTF_permit_access);
    expect(released).toHaveBeenCalledTimes(1);
    expect(a.grants.freeCount).toBe(503);
  });

  it('a ref is never freed twice: ending or unreserving a ref that is not handed out does nothing', async () => {
    await setup(1);
    const [gfn] = pages(a, 1);
    const r = grant(a, B, gfn!);
    const free = a.grants.freeCount;
    expect(a.grants.endAccess(r)).toBe(true);
    expect(a.grants.freeCount).toBe(free + 1);
    // Second end, try-end and unreserve of the same ref; reserved and out-of-table refs.
    expect(a.grants.endAccess(r)).toBe(false);
    expect(a.grants.tryEndAccess(r)).toBe(false);
    a.grants.unreserve([r, 0, 7, 1 << 20, -1, 1.5]);
    expect(a.grants.endAccess(3)).toBe(false);
    expect(a.grants.endAccess(1 << 20)).toBe(false);
    expect(a.grants.deferredCount).toBe(0);
    expect(a.grants.freeCount).toBe(free + 1);
    // Deferring the same ref twice keeps one entry.
    const r2 = grant(a, B, gfn!);
    const mp = mapOne(r2);
    expect(a.grants.endAccess(r2)).toBe(false);
    expect(a.grants.endAccess(r2)).toBe(false);
    expect(a.grants.deferredCount).toBe(1);
    b.maps.unmap(mp);
    expect(a.grants.retryDeferred()).toBe(1);
  });

  it('grantAccessRef only fills refs reserved here; flags() of a ref beyond the table is -1', async () => {
    await setup(1);
    const [gfn] = pages(a, 1);
    expect(a.grants.grantAccessRef(9, B, gfn!, false)).toBe(-EINVAL); // never reserved
    const refs = a.grants.reserve(1) as number[];
    expect(a.grants.grantAccessRef(refs[0]!, 0x7ff0, gfn!, false)).toBe(-EINVAL);
    expect(a.grants.grantAccessRef(refs[0]!, B, -1, false)).toBe(-EINVAL);
    expect(a.grants.grantAccessRef(refs[0]!, B, gfn!, true)).toBe(0);
    expect(a.grants.flags(refs[0]!)).toBe(GTF_permit_access | GTF_readonly);
    expect(a.grants.flags(1 << 20)).toBe(-1);
    expect(a.grants.flags(-3)).toBe(-1);
    expect(a.grants.endAccess(refs[0]!)).toBe(true);
  });

  it('the retry timer ends deferred entries by itself', async () => {
    await setup(1, { retryMs: 5 });
    const [gfn] = pages(a, 1);
    const r = grant(a, B, gfn!);
    const mp = mapOne(r);
    const released = vi.fn();
    expect(a.grants.endAccess(r, released)).toBe(false);
    await new Promise((res) => setTimeout(res, 20));
    expect(released).not.toHaveBeenCalled();
    b.maps.unmap(mp);
    await vi.waitFor(() => expect(released).toHaveBeenCalledTimes(1), { timeout: 2000, interval: 5 });
    expect(a.grants.deferredCount).toBe(0);
  });

  describe('revoking a mapped grant', () => {
    it('the granter ends access then frees the page in onReleased: the frame lives until the unmap', async () => {
      await setup(1);
      const [gfn] = pages(a, 1);
      view(a, gfn!).fill(0x5e);
      const r = grant(a, B, gfn!);
      const mp = mapOne(r);
      const free0 = m.accounting().freeFrames;
      let freed = -1;
      expect(a.grants.endAccess(r, () => (freed = a.memory.freePages([gfn!])))).toBe(false);
      expect(freed).toBe(-1);
      expect(acct(m, A).pages).toBe(1);
      b.maps.unmap(mp);
      expect(a.grants.retryDeferred()).toBe(1);
      expect(freed).toBe(0);
      expect(acct(m, A).pages).toBe(0);
      expect(m.accounting().freeFrames).toBe(free0 + 1);
    });

    it('the granter frees the page while mapped: the mapper keeps the frame until it unmaps', async () => {
      await setup(1);
      const [gfn] = pages(a, 1);
      view(a, gfn!).fill(0x6f);
      const r = grant(a, B, gfn!);
      const mp = mapOne(r);
      const mfn = a.hypercalls.gfnToMfn(gfn!);
      const free0 = m.accounting().freeFrames;
      expect(a.memory.freePages([gfn!])).toBe(0);
      expect(acct(m, A).pages).toBe(0);
      expect(a.memory.page(gfn!)).toBeUndefined();
      // Still allocated: the mapping holds a reference.
      expect(m.accounting().freeFrames).toBe(free0);
      expect(mp.page(0)[100]).toBe(0x6f);
      mp.page(0)[100] = 1;
      expect(acct(m, A).grantEntriesPinned).toBe(1);
      expect(acct(m, A).mapsOfMine).toBe(1);
      // a repopulates the gfn: a new frame, not the mapped one.
      const again = pages(a, 1);
      expect(again[0]).toBe(gfn);
      expect(a.hypercalls.gfnToMfn(gfn!)).not.toBe(mfn);
      expect(view(a, gfn!)[100]).toBe(0);
      expect(m.accounting().freeFrames).toBe(free0 - 1);
      expect(b.maps.unmap(mp)).toBe(GNTST_okay);
      expect(m.accounting().freeFrames).toBe(free0);
      expect(a.grants.tryEndAccess(r)).toBe(true);
      expect(a.memory.freePages(again)).toBe(0);
      expect(m.accounting().freeFrames).toBe(free0 + 1);
    });
  });
});

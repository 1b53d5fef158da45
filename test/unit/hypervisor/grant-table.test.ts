// Bad inputs tried: refs beyond the table, grants to another domid, invalid/sub-page/transfer entries, RW maps of RO grants, unknown/destroyed/DOMID_SELF granters, missing map flags, bad host gfns, the map quota, unpopulated granted gfns, bad/stale/double unmap handles, bad copy offsets/lengths/flags/sides.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DOMID_SELF } from '../../../src/abi/event-channel.js';
import {
  GNTCOPY_dest_gref, GNTCOPY_source_gref, GNTMAP_device_map, GNTMAP_host_map, GNTMAP_readonly,
  GNTST_bad_copy_arg, GNTST_bad_domain, GNTST_bad_gntref, GNTST_bad_handle, GNTST_bad_page,
  GNTST_bad_virt_addr, GNTST_general_error, GNTST_no_space, GNTST_okay, GNTST_permission_denied,
  GTF_accept_transfer, GTF_permit_access, GTF_readonly, GTF_reading, GTF_sub_page, GTF_writing,
} from '../../../src/abi/grant-table.js';
import type { EmulatedPlatform, GrantCopyOp, Machine, MachineAccounting } from '../../../src/hypervisor/index.js';
import { GrantMapBatch, GrantUnmapBatch, PAGE_SIZE } from '../../../src/hypervisor/index.js';
import { acct, ballooned, grant, guest, newMachine, pages, view } from './helpers.js';

interface Op {
  dom: number;
  ref: number;
  flags: number;
  hostGfn?: number;
}

function mapOps(p: EmulatedPlatform, ops: Op[]): GrantMapBatch {
  const b = new GrantMapBatch(ops.length);
  ops.forEach((o, i) => {
    b.dom[i] = o.dom;
    b.ref[i] = o.ref;
    b.flags[i] = o.flags;
    if (o.hostGfn !== undefined) b.hostGfn[i] = o.hostGfn;
  });
  p.hypercalls.gnttabMap(b);
  return b;
}

function unmapHandles(p: EmulatedPlatform, handles: number[]): number[] {
  const u = GrantUnmapBatch.of(handles);
  p.hypercalls.gnttabUnmap(u);
  return Array.from(u.status);
}

const DEV = GNTMAP_device_map;
const DEV_RO = GNTMAP_device_map | GNTMAP_readonly;

/** Writes a raw grant entry (flags, domid, frame) in the domain's own table. */
function writeEntry(p: EmulatedPlatform, ref: number, flags: number, domid: number, gfn: number): void {
  const f = p.hypercalls.gnttabFrames()[ref >>> 9]!;
  Atomics.store(f, (ref & 511) * 2 + 1, gfn);
  Atomics.store(f, (ref & 511) * 2, flags | (domid << 16));
}

describe('grant table hypercalls', () => {
  let m: Machine;
  let base: MachineAccounting;
  let a: EmulatedPlatform; // granter
  let b: EmulatedPlatform; // mapper
  let c: EmulatedPlatform; // a third party
  let A: number;
  let B: number;
  let C: number;
  let gfns: Int32Array;

  beforeEach(async () => {
    m = newMachine(16);
    base = m.accounting();
    const ha = await guest(m, 'a');
    const hb = await guest(m, 'b', { limits: { maxMaps: 4, gfnLimit: 64 } });
    const hc = await guest(m, 'c');
    [a, b, c] = [ha.platform, hb.platform, hc.platform];
    [A, B, C] = [ha.domid, hb.domid, hc.domid];
    gfns = pages(a, 4);
    gfns.forEach((g, i) => view(a, g).fill(0x40 + i));
  });

  afterEach(async () => {
    for (const d of [A, B, C]) if (m.handles.has(d)) await m.destroyDomain(d);
    expect(m.leaks(base)).toEqual([]);
    await m.close();
  });

  describe('map statuses', () => {
    it('ref beyond the table -> bad_gntref', () => {
      const r = grant(a, B, gfns[0]!);
      const st = mapOps(b, [
        { dom: A, ref: 512, flags: DEV },
        { dom: A, ref: 0xffffffff, flags: DEV },
        { dom: A, ref: r, flags: DEV },
      ]);
      expect(Array.from(st.status)).toEqual([GNTST_bad_gntref, GNTST_bad_gntref, GNTST_okay]);
      expect(st.handle[0]).toBe(0);
      expect(st.mfn[0]).toBe(-1);
      expect(acct(m, B).mapsHeld).toBe(1);
      expect(unmapHandles(b, [st.handle[2]!])).toEqual([GNTST_okay]);
    });

    it('entry granted to another domid, invalid, ended, transfer or sub-page entries -> general_error', () => {
      const toC = grant(a, C, gfns[0]!);
      const ended = grant(a, B, gfns[1]!);
      expect(a.grants.endAccess(ended)).toBe(true);
      const transfer = 300;
      writeEntry(a, transfer, GTF_accept_transfer, B, gfns[2]!);
      const sub = 301;
      writeEntry(a, sub, GTF_permit_access | GTF_sub_page, B, gfns[2]!);
      const st = mapOps(b, [
        { dom: A, ref: toC, flags: DEV_RO },
        { dom: A, ref: 100, flags: DEV_RO }, // never granted: GTF_invalid
        { dom: A, ref: ended, flags: DEV },
        { dom: A, ref: transfer, flags: DEV },
        { dom: A, ref: sub, flags: DEV_RO },
        { dom: A, ref: 0, flags: DEV }, // reserved entry, GTF_invalid
      ]);
      expect(Array.from(st.status)).toEqual(Array(6).fill(GNTST_general_error));
      expect(acct(m, B).mapsHeld).toBe(0);
      expect(acct(m, A).grantEntriesPinned).toBe(0);
      expect(a.grants.flags(toC)).toBe(GTF_permit_access);
      expect(a.grants.flags(sub)).toBe(GTF_permit_access | GTF_sub_page);
      // c, the real grantee, can map it.
      const ok = mapOps(c, [{ dom: A, ref: toC, flags: DEV_RO }]);
      expect(ok.status[0]).toBe(GNTST_okay);
      expect(unmapHandles(c, [ok.handle[0]!])).toEqual([GNTST_okay]);
      writeEntry(a, transfer, 0, 0, 0);
      writeEntry(a, sub, 0, 0, 0);
    });

    it('writable map of a GTF_readonly grant -> general_error; read-only map works', () => {
      const ro = grant(a, B, gfns[0]!, true);
      expect(a.grants.flags(ro)).toBe(GTF_permit_access | GTF_readonly);
      const st = mapOps(b, [
        { dom: A, ref: ro, flags: DEV },
        { dom: A, ref: ro, flags: DEV_RO },
      ]);
      expect(Array.from(st.status)).toEqual([GNTST_general_error, GNTST_okay]);
      expect(a.grants.flags(ro)).toBe(GTF_permit_access | GTF_readonly | GTF_reading);
      // Upgrade attempt while pinned read-only is refused too.
      const up = mapOps(b, [{ dom: A, ref: ro, flags: DEV }]);
      expect(up.status[0]).toBe(GNTST_general_error);
      expect(a.grants.flags(ro)).toBe(GTF_permit_access | GTF_readonly | GTF_reading);
      expect(acct(m, B).mapsHeld).toBe(1);
      expect(unmapHandles(b, [st.handle[1]!])).toEqual([GNTST_okay]);
      expect(a.grants.flags(ro)).toBe(GTF_permit_access | GTF_readonly);
    });

    it('unknown, destroyed or DOMID_SELF granter -> bad_domain', async () => {
      const r = grant(c, B, pages(c, 1)[0]!);
      await m.destroyDomain(C);
      const st = mapOps(b, [
        { dom: 999, ref: 8, flags: DEV },
        { dom: C, ref: r, flags: DEV },
        { dom: DOMID_SELF, ref: 8, flags: DEV },
      ]);
      expect(Array.from(st.status)).toEqual([GNTST_bad_domain, GNTST_bad_domain, GNTST_bad_domain]);
      expect(acct(m, B).mapsHeld).toBe(0);
    });

    it('neither host_map nor device_map -> bad_gntref (checked before anything else)', () => {
      const r = grant(a, B, gfns[0]!);
      const st = mapOps(b, [
        { dom: A, ref: r, flags: 0 },
        { dom: A, ref: r, flags: GNTMAP_readonly },
        { dom: 999, ref: 9999, flags: 0 },
      ]);
      expect(Array.from(st.status)).toEqual([GNTST_bad_gntref, GNTST_bad_gntref, GNTST_bad_gntref]);
      expect(a.grants.flags(r)).toBe(GTF_permit_access);
    });

    it('host_map at a populated, out-of-range or already mapped gfn -> bad_virt_addr', () => {
      const r0 = grant(a, B, gfns[0]!);
      const r1 = grant(a, B, gfns[1]!);
      const [own] = pages(b, 1);
      const [hole] = ballooned(b, 1);
      const st = mapOps(b, [
        { dom: A, ref: r0, flags: GNTMAP_host_map, hostGfn: own! },
        { dom: A, ref: r0, flags: GNTMAP_host_map, hostGfn: 64 }, // == gfnLimit
        { dom: A, ref: r0, flags: GNTMAP_host_map, hostGfn: -1 },
        { dom: A, ref: r0, flags: GNTMAP_host_map, hostGfn: hole! },
        { dom: A, ref: r1, flags: GNTMAP_host_map, hostGfn: hole! }, // already has r0
      ]);
      expect(Array.from(st.status)).toEqual([GNTST_bad_virt_addr, GNTST_bad_virt_addr, GNTST_bad_virt_addr, GNTST_okay, GNTST_bad_virt_addr]);
      expect(view(b, own!).every((x) => x === 0)).toBe(true);
      expect(view(b, hole!)[0]).toBe(0x40);
      expect(acct(m, B).mapsHeld).toBe(1);
      expect(a.grants.flags(r1)).toBe(GTF_permit_access);
      expect(unmapHandles(b, [st.handle[3]!])).toEqual([GNTST_okay]);
      expect(b.memory.page(hole!)).toBeUndefined();
    });

    it('the mapping quota -> no_space, and the slot is usable again after an unmap', () => {
      const refs = Array.from(gfns, (g) => grant(a, B, g));
      const extra = grant(a, B, pages(a, 1)[0]!);
      const st = mapOps(b, [...refs, extra].map((ref) => ({ dom: A, ref, flags: DEV })));
      expect(Array.from(st.status)).toEqual([0, 0, 0, 0, GNTST_no_space]);
      expect(acct(m, B).mapsHeld).toBe(4);
      expect(acct(m, A).mapsOfMine).toBe(4);
      expect(acct(m, A).grantEntriesPinned).toBe(4);
      expect(a.grants.flags(extra)).toBe(GTF_permit_access);
      expect(unmapHandles(b, [st.handle[0]!])).toEqual([0]);
      const again = mapOps(b, [{ dom: A, ref: extra, flags: DEV }]);
      expect(again.status[0]).toBe(GNTST_okay);
      expect(unmapHandles(b, [st.handle[1]!, st.handle[2]!, st.handle[3]!, again.handle[0]!])).toEqual([0, 0, 0, 0]);
      expect(acct(m, B).mapsHeld).toBe(0);
      expect(acct(m, A).mapsOfMine).toBe(0);
      expect(acct(m, A).grantEntriesPinned).toBe(0);
    });

    it('granted gfn not populated -> bad_page, and the entry is left unpinned', () => {
      const [hole] = ballooned(a, 1);
      const r = grant(a, B, hole!);
      const gone = grant(a, B, gfns[3]!);
      expect(a.memory.freePages([gfns[3]!])).toBe(0);
      const st = mapOps(b, [
        { dom: A, ref: r, flags: DEV },
        { dom: A, ref: gone, flags: DEV_RO },
      ]);
      expect(Array.from(st.status)).toEqual([GNTST_bad_page, GNTST_bad_page]);
      expect(a.grants.flags(r)).toBe(GTF_permit_access);
      expect(a.grants.flags(gone)).toBe(GTF_permit_access);
      expect(acct(m, A).grantEntriesPinned).toBe(0);
      expect(acct(m, B).mapsHeld).toBe(0);
      expect(a.grants.endAccess(r)).toBe(true);
    });

    it('a mixed batch: failures do not stop the others, which get handles', () => {
      const r0 = grant(a, B, gfns[0]!);
      const r1 = grant(a, B, gfns[1]!, true);
      const toC = grant(a, C, gfns[2]!);
      const st = mapOps(b, [
        { dom: A, ref: r0, flags: DEV },
        { dom: A, ref: 4096, flags: DEV },
        { dom: A, ref: r1, flags: DEV_RO },
        { dom: A, ref: toC, flags: DEV },
        { dom: 777, ref: r0, flags: DEV },
        { dom: A, ref: r1, flags: DEV },
      ]);
      expect(Array.from(st.status)).toEqual([GNTST_okay, GNTST_bad_gntref, GNTST_okay, GNTST_general_error, GNTST_bad_domain, GNTST_general_error]);
      expect(st.handle[0]).not.toBe(st.handle[2]);
      expect(st.mfn[0]).toBe(a.hypercalls.gfnToMfn(gfns[0]!));
      expect(st.mfn[2]).toBe(a.hypercalls.gfnToMfn(gfns[1]!));
      expect(acct(m, B).mapsHeld).toBe(2);
      expect(acct(m, A).mapsOfMine).toBe(2);
      expect(acct(m, A).grantEntriesPinned).toBe(2);
      expect(a.grants.flags(r0)).toBe(GTF_permit_access | GTF_reading | GTF_writing);
      expect(a.grants.flags(r1)).toBe(GTF_permit_access | GTF_readonly | GTF_reading);
      expect(a.grants.flags(toC)).toBe(GTF_permit_access);
      expect(unmapHandles(b, [st.handle[0]!, st.handle[2]!])).toEqual([0, 0]);
      expect(a.grants.flags(r0)).toBe(GTF_permit_access);
      expect(a.grants.flags(r1)).toBe(GTF_permit_access | GTF_readonly);
    });

    it('a map by a destroyed domain -> bad_domain for every op', async () => {
      const r = grant(a, B, gfns[0]!);
      await m.destroyDomain(B);
      const st = mapOps(b, [{ dom: A, ref: r, flags: DEV }, { dom: A, ref: r, flags: DEV_RO }]);
      expect(Array.from(st.status)).toEqual([GNTST_bad_domain, GNTST_bad_domain]);
      expect(unmapHandles(b, [0])).toEqual([GNTST_bad_domain]);
      expect(a.grants.flags(r)).toBe(GTF_permit_access);
    });
  });

  describe('pins and flags', () => {
    it('RO then RW: writing goes with the last writer, reading with the last pin', () => {
      const r = grant(a, B, gfns[0]!);
      const ro = mapOps(b, [{ dom: A, ref: r, flags: DEV_RO }]);
      expect(a.grants.flags(r)).toBe(GTF_permit_access | GTF_reading);
      const rw1 = mapOps(b, [{ dom: A, ref: r, flags: DEV }]);
      const rw2 = mapOps(b, [{ dom: A, ref: r, flags: DEV }]);
      expect(a.grants.flags(r)).toBe(GTF_permit_access | GTF_reading | GTF_writing);
      expect(acct(m, A).grantEntriesPinned).toBe(1);
      expect(acct(m, A).mapsOfMine).toBe(3);
      expect(rw1.mfn[0]).toBe(ro.mfn[0]);
      expect(a.grants.tryEndAccess(r)).toBe(false);
      expect(unmapHandles(b, [rw1.handle[0]!])).toEqual([0]);
      expect(a.grants.flags(r)).toBe(GTF_permit_access | GTF_reading | GTF_writing);
      expect(unmapHandles(b, [rw2.handle[0]!])).toEqual([0]);
      expect(a.grants.flags(r)).toBe(GTF_permit_access | GTF_reading);
      expect(a.grants.tryEndAccess(r)).toBe(false);
      expect(unmapHandles(b, [ro.handle[0]!])).toEqual([0]);
      expect(a.grants.flags(r)).toBe(GTF_permit_access);
      expect(acct(m, A).grantEntriesPinned).toBe(0);
      expect(a.grants.tryEndAccess(r)).toBe(true);
      expect(a.grants.flags(r)).toBe(0);
    });

    it('RW then RO, RW unmapped first: reading stays until the RO pin goes', () => {
      const r = grant(a, B, gfns[0]!);
      const rw = mapOps(b, [{ dom: A, ref: r, flags: DEV }]);
      expect(a.grants.flags(r)).toBe(GTF_permit_access | GTF_reading | GTF_writing);
      const ro = mapOps(b, [{ dom: A, ref: r, flags: DEV_RO }]);
      expect(unmapHandles(b, [rw.handle[0]!])).toEqual([0]);
      expect(a.grants.flags(r)).toBe(GTF_permit_access | GTF_reading);
      expect(unmapHandles(b, [ro.handle[0]!])).toEqual([0]);
      expect(a.grants.flags(r)).toBe(GTF_permit_access);
    });

    it('a second grantee cannot pin an entry pinned by the first (after the entry is re-pointed)', () => {
      const r = grant(a, B, gfns[0]!);
      const h = mapOps(b, [{ dom: A, ref: r, flags: DEV_RO }]);
      // The granter (wrongly) rewrites the entry for c while b maps it.
      writeEntry(a, r, GTF_permit_access | GTF_reading, C, gfns[0]!);
      const st = mapOps(c, [{ dom: A, ref: r, flags: DEV_RO }]);
      expect(st.status[0]).toBe(GNTST_general_error);
      expect(unmapHandles(b, [h.handle[0]!])).toEqual([0]);
      writeEntry(a, r, 0, 0, 0);
    });

    it('bad, stale and double unmaps -> bad_handle; a bad handle does not stop the batch', () => {
      const r = grant(a, B, gfns[0]!);
      expect(unmapHandles(b, [0])).toEqual([GNTST_bad_handle]); // nothing mapped yet
      const st = mapOps(b, [{ dom: A, ref: r, flags: DEV }, { dom: A, ref: r, flags: DEV_RO }]);
      expect(unmapHandles(b, [12345, st.handle[0]!, 0xffffffff, st.handle[0]!])).toEqual([GNTST_bad_handle, GNTST_okay, GNTST_bad_handle, GNTST_bad_handle]);
      expect(acct(m, B).mapsHeld).toBe(1);
      expect(a.grants.flags(r)).toBe(GTF_permit_access | GTF_reading);
      expect(unmapHandles(b, [st.handle[1]!])).toEqual([GNTST_okay]);
      expect(unmapHandles(b, [st.handle[1]!])).toEqual([GNTST_bad_handle]);
      // A handle of another domain's maptrack means nothing here.
      const cm = mapOps(c, [{ dom: A, ref: grant(a, C, gfns[1]!), flags: DEV }]);
      expect(cm.status[0]).toBe(GNTST_okay);
      expect(unmapHandles(b, [cm.handle[0]!])).toEqual([GNTST_bad_handle]);
      expect(acct(m, C).mapsHeld).toBe(1);
      expect(unmapHandles(c, [cm.handle[0]!])).toEqual([GNTST_okay]);
      expect(acct(m, A).grantEntriesPinned).toBe(0);
    });
  });

  describe('zero copy', () => {
    it('writes through a mapping show in the granter memory and back', () => {
      const r = grant(a, B, gfns[2]!);
      const res = b.maps.map(A, [r], false);
      expect(res.ok).toBe(true);
      if (!res.ok) return;
      const mp = res.mapping;
      expect(mp.count).toBe(1);
      expect(mp.domid).toBe(A);
      expect(mp.hostGfns).toBeUndefined();
      expect(mp.page(0)[0]).toBe(0x42);
      mp.page(0)[10] = 0x99;
      expect(view(a, gfns[2]!)[10]).toBe(0x99);
      view(a, gfns[2]!)[4095] = 0x77;
      expect(mp.page(0)[4095]).toBe(0x77);
      expect(() => mp.page(1)).toThrow(RangeError);
      expect(b.maps.unmap(mp)).toBe(GNTST_okay);
      expect(() => mp.page(0)).toThrow(RangeError);
      expect(mp.contiguous).toBeUndefined();
    });

    it('hostGfns: the mapper memory.page(hostGfn) is the granter page', () => {
      const refs = [grant(a, B, gfns[0]!), grant(a, B, gfns[1]!, true)];
      const hosts = ballooned(b, 2);
      const rw = b.maps.map(A, [refs[0]!], false, [hosts[0]!]);
      const ro = b.maps.map(A, [refs[1]!], true, [hosts[1]!]);
      expect(rw.ok && ro.ok).toBe(true);
      if (!rw.ok || !ro.ok) return;
      expect(Array.from(rw.mapping.hostGfns!)).toEqual([hosts[0]]);
      expect(b.hypercalls.gfnToMfn(hosts[0]!)).toBe(a.hypercalls.gfnToMfn(gfns[0]!));
      view(b, hosts[0]!)[1] = 0xab;
      expect(view(a, gfns[0]!)[1]).toBe(0xab);
      view(a, gfns[1]!)[2] = 0xcd;
      expect(view(b, hosts[1]!)[2]).toBe(0xcd);
      expect(acct(m, B).pages).toBe(0);
      expect(b.maps.unmap(rw.mapping)).toBe(0);
      expect(b.maps.unmap(ro.mapping)).toBe(0);
      expect(b.memory.page(hosts[0]!)).toBeUndefined();
      expect(b.memory.page(hosts[1]!)).toBeUndefined();
      b.memory.freeBallooned(hosts);
    });

    it('grants of contiguous pages map as one contiguous view', () => {
      const cg = pages(a, 3, true);
      cg.forEach((g, i) => view(a, g).fill(0x70 + i));
      const refs = a.grants.grantAccessBatch(B, cg, false);
      expect(Array.isArray(refs)).toBe(true);
      if (!Array.isArray(refs)) return;
      const res = b.maps.map(A, refs, false);
      expect(res.ok).toBe(true);
      if (!res.ok) return;
      const all = res.mapping.contiguous;
      expect(all?.byteLength).toBe(3 * PAGE_SIZE);
      expect(all![2 * PAGE_SIZE]).toBe(0x72);
      all![PAGE_SIZE + 5] = 1;
      expect(view(a, cg[1]!)[5]).toBe(1);
      expect(b.maps.unmap(res.mapping)).toBe(0);
      // In reverse order the pages are not adjacent.
      const rev = b.maps.map(A, [...refs].reverse(), true);
      expect(rev.ok).toBe(true);
      if (rev.ok) {
        expect(rev.mapping.contiguous).toBeUndefined();
        expect(rev.mapping.page(0)[0]).toBe(0x72);
        expect(b.maps.unmap(rev.mapping)).toBe(0);
      }
    });
  });

  describe('platform maps.map: all or nothing', () => {
    it('a bad ref in the middle leaves nothing mapped', () => {
      const refs = [grant(a, B, gfns[0]!), 9999, grant(a, B, gfns[2]!)];
      const r = b.maps.map(A, refs, false);
      expect(r).toEqual({ ok: false, status: GNTST_bad_gntref, index: 1 });
      expect(acct(m, B).mapsHeld).toBe(0);
      expect(acct(m, A).mapsOfMine).toBe(0);
      expect(acct(m, A).grantEntriesPinned).toBe(0);
      expect(a.grants.flags(refs[0]!)).toBe(GTF_permit_access);
      expect(a.grants.flags(refs[2]!)).toBe(GTF_permit_access);
    });

    it('a RO grant in a RW map, or a bad host gfn, fails at its index and unmaps the others', () => {
      const refs = [grant(a, B, gfns[0]!), grant(a, B, gfns[1]!), grant(a, B, gfns[2]!, true)];
      expect(b.maps.map(A, refs, false)).toEqual({ ok: false, status: GNTST_general_error, index: 2 });
      const hosts = ballooned(b, 3);
      const [own] = pages(b, 1);
      const r = b.maps.map(A, refs, true, [hosts[0]!, own!, hosts[2]!]);
      expect(r).toEqual({ ok: false, status: GNTST_bad_virt_addr, index: 1 });
      expect(b.memory.page(hosts[0]!)).toBeUndefined();
      expect(b.memory.page(hosts[2]!)).toBeUndefined();
      expect(acct(m, B).mapsHeld).toBe(0);
      for (const ref of refs) expect(a.grants.flags(ref) & (GTF_reading | GTF_writing)).toBe(0);
      // The quota: 5 refs with maxMaps 4.
      const five = [...Array.from(gfns, (g) => grant(a, B, g)), refs[0]!];
      expect(b.maps.map(A, five, true)).toEqual({ ok: false, status: GNTST_no_space, index: 4 });
      expect(acct(m, B).mapsHeld).toBe(0);
      expect(acct(m, A).grantEntriesPinned).toBe(0);
    });

    it('unmapping a mapping twice -> bad_handle', () => {
      const r = b.maps.map(A, [grant(a, B, gfns[0]!), grant(a, B, gfns[1]!)], false);
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      expect(b.maps.unmap(r.mapping)).toBe(GNTST_okay);
      expect(b.maps.unmap(r.mapping)).toBe(GNTST_bad_handle);
      expect(acct(m, B).mapsHeld).toBe(0);
    });

    it('unmapping a stale mapping does not unmap a newer mapping that reuses its handles', () => {
      const r0 = grant(a, B, gfns[0]!);
      const r1 = grant(a, B, gfns[1]!);
      const first = b.maps.map(A, [r0], false);
      expect(first.ok).toBe(true);
      if (!first.ok) return;
      expect(b.maps.unmap(first.mapping)).toBe(GNTST_okay);
      const second = b.maps.map(A, [r1], false);
      expect(second.ok).toBe(true);
      if (!second.ok) return;
      // The stale object is dead: unmapping it again must not touch `second`.
      expect(b.maps.unmap(first.mapping)).toBe(GNTST_bad_handle);
      expect(acct(m, B).mapsHeld).toBe(1);
      expect(a.grants.flags(r1)).toBe(GTF_permit_access | GTF_reading | GTF_writing);
      expect(second.mapping.page(0)[0]).toBe(0x41);
      b.maps.unmap(second.mapping);
    });

    it('hostGfns longer than refs are rejected without throwing', () => {
      const ref = grant(a, B, gfns[0]!);
      const hosts = ballooned(b, 2);
      let r: ReturnType<EmulatedPlatform['maps']['map']> | undefined;
      expect(() => (r = b.maps.map(A, [ref], false, hosts))).not.toThrow();
      if (r?.ok) b.maps.unmap(r.mapping);
      expect(acct(m, B).mapsHeld).toBe(0);
    });
  });

  describe('grant copy', () => {
    const src = (ref: number, domid: number, offset = 0) => ({ ref, domid, offset });

    function expectNoPins(refs: number[]): void {
      expect(acct(m, A).grantEntriesPinned).toBe(0);
      for (const r of refs) expect(a.grants.flags(r) & (GTF_reading | GTF_writing)).toBe(0);
    }

    it('gref -> local, local -> gref, gref -> gref', () => {
      const rSrc = grant(a, B, gfns[0]!, true);
      const rDst = grant(a, B, gfns[1]!);
      const [local] = pages(b, 1);
      view(b, local!).fill(0x11);
      const ops: GrantCopyOp[] = [
        { source: src(rSrc, A, 100), dest: src(local!, DOMID_SELF, 200), len: 50, flags: GNTCOPY_source_gref },
        { source: src(local!, B, 0), dest: src(rDst, A, 4000), len: 96, flags: GNTCOPY_dest_gref },
        { source: src(rSrc, A, 0), dest: src(rDst, A, 0), len: 8, flags: GNTCOPY_source_gref | GNTCOPY_dest_gref },
        { source: src(rSrc, A, 4096), dest: src(local!, DOMID_SELF, 4096), len: 0, flags: GNTCOPY_source_gref },
      ];
      expect(Array.from(b.maps.copy(ops))).toEqual([0, 0, 0, 0]);
      const lv = view(b, local!);
      expect(lv[199]).toBe(0x11);
      expect(lv.subarray(200, 250).every((x) => x === 0x40)).toBe(true);
      expect(lv[250]).toBe(0x11);
      const dv = view(a, gfns[1]!);
      expect(dv.subarray(4000, 4096).every((x) => x === 0x11)).toBe(true);
      expect(dv[3999]).toBe(0x41);
      expect(dv.subarray(0, 8).every((x) => x === 0x40)).toBe(true);
      expect(dv[8]).toBe(0x41);
      expectNoPins([rSrc, rDst]);
      expect(a.grants.flags(rSrc)).toBe(GTF_permit_access | GTF_readonly);
    });

    it('copy statuses: bad_copy_arg, general_error, permission_denied, bad_page, bad_domain, bad_gntref', async () => {
      const r = grant(a, B, gfns[0]!);
      const ro = grant(a, B, gfns[1]!, true);
      const toC = grant(a, C, gfns[2]!);
      const [hole] = ballooned(a, 1);
      const unpop = grant(a, B, hole!);
      const [local] = pages(b, 1);
      const [bHole] = ballooned(b, 1);
      const dead = grant(c, B, pages(c, 1)[0]!);
      await m.destroyDomain(C);
      const S = GNTCOPY_source_gref;
      const D = GNTCOPY_dest_gref;
      const cases: [GrantCopyOp, number][] = [
        [{ source: src(r, A, 4000), dest: src(local!, DOMID_SELF), len: 200, flags: S }, GNTST_bad_copy_arg],
        [{ source: src(r, A), dest: src(local!, DOMID_SELF, 4090), len: 7, flags: S }, GNTST_bad_copy_arg],
        [{ source: src(r, A), dest: src(local!, DOMID_SELF), len: 4097, flags: S }, GNTST_bad_copy_arg],
        [{ source: src(r, A), dest: src(local!, DOMID_SELF), len: -1, flags: S }, GNTST_bad_copy_arg],
        [{ source: src(r, A, -1), dest: src(local!, DOMID_SELF), len: 1, flags: S }, GNTST_bad_copy_arg],
        [{ source: src(r, A), dest: src(local!, DOMID_SELF, 1.5), len: 1, flags: S }, GNTST_bad_copy_arg],
        [{ source: src(local!, DOMID_SELF), dest: src(ro, A), len: 1, flags: D }, GNTST_general_error], // dest read-only
        [{ source: src(toC, A), dest: src(local!, DOMID_SELF), len: 1, flags: S }, GNTST_general_error], // granted to c
        [{ source: src(100, A), dest: src(local!, DOMID_SELF), len: 1, flags: S }, GNTST_general_error], // GTF_invalid
        [{ source: src(r, A), dest: src(local!, DOMID_SELF), len: 1, flags: S | 4 }, GNTST_general_error], // unknown flag
        [{ source: src(gfns[0]!, A), dest: src(local!, DOMID_SELF), len: 1, flags: 0 }, GNTST_permission_denied],
        [{ source: src(r, A), dest: src(local!, A), len: 1, flags: S }, GNTST_permission_denied],
        [{ source: src(r, A), dest: src(bHole!, DOMID_SELF), len: 1, flags: S }, GNTST_bad_page],
        [{ source: src(bHole!, DOMID_SELF), dest: src(r, A), len: 1, flags: D }, GNTST_bad_page],
        [{ source: src(unpop, A), dest: src(local!, DOMID_SELF), len: 1, flags: S }, GNTST_bad_page],
        [{ source: src(r, 999), dest: src(local!, DOMID_SELF), len: 1, flags: S }, GNTST_bad_domain],
        [{ source: src(dead, C), dest: src(local!, DOMID_SELF), len: 1, flags: S }, GNTST_bad_domain],
        [{ source: src(r, A), dest: src(512, A), len: 1, flags: S | D }, GNTST_bad_gntref],
        [{ source: src(-1, A), dest: src(local!, DOMID_SELF), len: 1, flags: S }, GNTST_bad_gntref],
      ];
      const st = b.maps.copy(cases.map(([op]) => op));
      expect(Array.from(st)).toEqual(cases.map(([, s]) => s));
      expect(view(b, local!).every((x) => x === 0)).toBe(true);
      expect(view(a, gfns[1]!).every((x) => x === 0x41)).toBe(true);
      expectNoPins([r, ro, toC, unpop]);
      expect(acct(m, A).mapsOfMine).toBe(0);
    });

    it('copy while the entry is mapped keeps the mapping pins; a copy by a destroyed domain -> bad_domain', async () => {
      const r = grant(a, B, gfns[0]!);
      const [local] = pages(b, 1);
      const mp = mapOps(b, [{ dom: A, ref: r, flags: DEV_RO }]);
      const st = b.maps.copy([{ source: src(local!, DOMID_SELF), dest: src(r, A, 0), len: 4, flags: GNTCOPY_dest_gref }]);
      expect(st[0]).toBe(GNTST_okay);
      expect(a.grants.flags(r)).toBe(GTF_permit_access | GTF_reading);
      expect(acct(m, A).grantEntriesPinned).toBe(1);
      expect(unmapHandles(b, [mp.handle[0]!])).toEqual([0]);
      expect(acct(m, A).grantEntriesPinned).toBe(0);
      await m.destroyDomain(B);
      const dead = b.maps.copy([{ source: src(r, A), dest: src(local!, DOMID_SELF), len: 4, flags: GNTCOPY_source_gref }]);
      expect(Array.from(dead)).toEqual([GNTST_bad_domain]);
    });

    it('a sub-page entry can be copied but not mapped', () => {
      const sub = 200;
      writeEntry(a, sub, GTF_permit_access | GTF_sub_page, B, gfns[3]!);
      const [local] = pages(b, 1);
      expect(b.maps.map(A, [sub], true)).toEqual({ ok: false, status: GNTST_general_error, index: 0 });
      const st = b.maps.copy([{ source: src(sub, A, 8), dest: src(local!, DOMID_SELF, 0), len: 8, flags: GNTCOPY_source_gref }]);
      expect(st[0]).toBe(GNTST_okay);
      expect(view(b, local!)[0]).toBe(0x43);
      expect(a.grants.flags(sub)).toBe(GTF_permit_access | GTF_sub_page);
      writeEntry(a, sub, 0, 0, 0);
    });
  });

  it('accounting of grants in use, pinned entries and mappings', () => {
    const before = acct(m, A);
    expect(before.grantEntriesInUse).toBe(0);
    const refs = Array.from(gfns, (g) => grant(a, B, g));
    expect(acct(m, A).grantEntriesInUse).toBe(4);
    const r = b.maps.map(A, refs.slice(0, 3), true);
    expect(r.ok).toBe(true);
    const now = acct(m, A);
    expect(now.grantEntriesPinned).toBe(3);
    expect(now.mapsOfMine).toBe(3);
    expect(acct(m, B).mapsHeld).toBe(3);
    // The maptrack frame is b's hypervisor memory.
    expect(acct(m, B).xenFrames).toBe(9);
    if (r.ok) b.maps.unmap(r.mapping);
    for (const ref of refs) expect(a.grants.endAccess(ref)).toBe(true);
    expect(acct(m, A).grantEntriesInUse).toBe(0);
    expect(acct(m, A).grantEntriesPinned).toBe(0);
    expect(acct(m, B).mapsHeld).toBe(0);
  });
});


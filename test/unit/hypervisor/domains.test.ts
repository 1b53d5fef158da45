// Bad inputs tried: destroying domains with live mappings both ways, hypercalls by and on destroyed domains, duplicate / reserved / negative domids, too many domains, bad limits, domids of zombies, mains that throw or fail to load, destroying unknown domains.
import { describe, expect, it } from 'vitest';
import { DOMID_SELF, EVTCHNSTAT_unbound } from '../../../src/abi/event-channel.js';
import {
  GNTCOPY_source_gref, GNTST_bad_domain, GNTST_okay, GTF_permit_access, GTF_reading, GTF_writing,
} from '../../../src/abi/grant-table.js';
import { XEN_ERRNO } from '../../../src/abi/xen-errno.js';
import type { DomainContext, Machine } from '../../../src/hypervisor/index.js';
import { Machine as MachineClass, MachineError } from '../../../src/hypervisor/index.js';
import { acct, ballooned, grant, guest, hasSlot, newMachine, pages, view } from './helpers.js';

const { EEXIST, EINVAL, ENOSPC, ESRCH } = XEN_ERRNO;

async function rejectsWith(p: Promise<unknown>, errno: number | undefined): Promise<MachineError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(MachineError);
  expect((err as MachineError).errno).toBe(errno);
  return err as MachineError;
}

describe('domains', () => {
  it('destroying a domain with live mappings both ways: zombie until the peer unmaps', async () => {
    const m = newMachine(16);
    const base = m.accounting();
    const ha = await guest(m, 'a');
    const hb = await guest(m, 'b');
    const [a, b, A, B] = [ha.platform, hb.platform, ha.domid, hb.domid];
    // b maps a's page at a ballooned gfn; a maps b's page; they share a channel.
    const [ga] = pages(a, 1);
    view(a, ga!).fill(0xa1);
    const refA = grant(a, B, ga!);
    const [host] = ballooned(b, 1);
    const bMapsA = b.maps.map(A, [refA], false, [host!]);
    const [gb] = pages(b, 1);
    view(b, gb!).fill(0xb1);
    const refB = grant(b, A, gb!);
    const aMapsB = a.maps.map(B, [refB], false);
    expect(bMapsA.ok && aMapsB.ok).toBe(true);
    if (!bMapsA.ok || !aMapsB.ok) return;
    const pa = a.events.allocUnbound(B);
    const pb = b.events.bindInterdomain(A, pa);
    expect(pb).toBeGreaterThan(0);
    expect(b.grants.flags(refB)).toBe(GTF_permit_access | GTF_reading | GTF_writing);
    const beforeDestroy = m.accounting();

    expect(await m.destroyDomain(A)).toEqual({ reason: 'destroyed' });
    expect(ha.exit).toEqual({ reason: 'destroyed' });
    expect(m.handles.has(A)).toBe(false);
    const z = acct(m, A);
    expect(z).toMatchObject({ state: 'zombie', pages: 0, ports: 0, mapsHeld: 0, mapsOfMine: 1, grantEntriesPinned: 1, grantFrames: 1 });
    expect(z.xenFrames).toBe(3); // only the grant table (entries + active entries) is left
    // a's mapping of b's grant was torn down.
    expect(b.grants.flags(refB)).toBe(GTF_permit_access);
    expect(acct(m, B).mapsOfMine).toBe(0);
    expect(acct(m, B).grantEntriesPinned).toBe(0);
    expect(acct(m, B).mapsHeld).toBe(1);
    // Everything of a's went back except the mapped page and the grant table (3 frames):
    // its event channel frames (5), p2m leaf (1) and maptrack frame (1).
    const aBefore = beforeDestroy.domains.find((d) => d.domid === A)!;
    expect(aBefore).toMatchObject({ xenFrames: 8 + 1 + 1, pages: 1, mapsHeld: 1, mapsOfMine: 1, ports: 1 });
    expect(m.accounting().freeFrames).toBe(beforeDestroy.freeFrames + aBefore.xenFrames - 3);
    expect(m.accounting().xenFrames).toBe(beforeDestroy.xenFrames - aBefore.xenFrames + 3);
    // b's views of a's page keep working.
    expect(bMapsA.mapping.page(0)[0]).toBe(0xa1);
    view(b, host!)[1] = 0x42;
    expect(bMapsA.mapping.page(0)[1]).toBe(0x42);
    // b's end of the channel is unbound, accepting a.
    expect(b.events.status(pb)).toEqual({ status: EVTCHNSTAT_unbound, remoteDom: A, remotePort: 0, vcpu: 0 });
    expect(b.events.notify(pb)).toBe(0);
    // a's hypercalls fail; mapping or copying a's grants fails too (a is not running).
    expect(a.hypercalls.alive).toBe(false);
    expect(a.events.allocUnbound(B)).toBe(-ESRCH);
    expect(a.memory.allocPages(1)).toBe(-ESRCH);
    expect(a.maps.map(B, [refB], true)).toEqual({ ok: false, status: GNTST_bad_domain, index: 0 });
    expect(a.hypercalls.gnttabQuerySize().status).toBe(GNTST_bad_domain);
    expect(a.hypercalls.gnttabSetupTable(2)).toBe(GNTST_bad_domain);
    expect(b.maps.map(A, [refA], true)).toEqual({ ok: false, status: GNTST_bad_domain, index: 0 });
    const [local] = pages(b, 1);
    expect(Array.from(b.maps.copy([{ source: { ref: refA, domid: A, offset: 0 }, dest: { ref: local!, domid: DOMID_SELF, offset: 0 }, len: 1, flags: GNTCOPY_source_gref }]))).toEqual([GNTST_bad_domain]);
    // The zombie's domid is not reused.
    await rejectsWith(m.createDomain({ mode: 'local', domid: A }), -EEXIST);
    const hc = await guest(m, 'c');
    expect(hc.domid).not.toBe(A);
    await m.destroyDomain(hc.domid);

    const free = m.accounting().freeFrames;
    expect(b.maps.unmap(bMapsA.mapping)).toBe(GNTST_okay);
    expect(hasSlot(m, A)).toBe(false);
    expect(m.accounting().freeFrames).toBe(free + 1 + 3);
    expect(acct(m, B).mapsHeld).toBe(0);
    // Now the domid is free again.
    const again = await guest(m, 'a2', { domid: A });
    expect(again.domid).toBe(A);
    // The old a's platform does not act on the new domain with the same id.
    expect(a.memory.allocPages(1)).toBe(-ESRCH);
    expect(a.events.allocUnbound(B)).toBe(-ESRCH);
    expect(acct(m, A)).toMatchObject({ pages: 0, ports: 0 });
    await m.destroyDomain(A);
    await m.destroyDomain(B);
    expect(m.leaks(base)).toEqual([]);
    await m.close();
  });

  it('destroying the mapper reaps a zombie granter', async () => {
    const m = newMachine(16);
    const base = m.accounting();
    const ha = await guest(m, 'a');
    const hb = await guest(m, 'b');
    const [ga] = pages(ha.platform, 2);
    const refs = [grant(ha.platform, hb.domid, ga!), grant(ha.platform, hb.domid, ga! + 1)];
    const r = hb.platform.maps.map(ha.domid, refs, true);
    expect(r.ok).toBe(true);
    await m.destroyDomain(ha.domid);
    expect(acct(m, ha.domid)).toMatchObject({ state: 'zombie', mapsOfMine: 2, grantEntriesPinned: 2, grantEntriesInUse: 2 });
    await m.destroyDomain(hb.domid);
    expect(hasSlot(m, ha.domid)).toBe(false);
    expect(m.leaks(base)).toEqual([]);
    await m.close();
  });

  it('a domain that maps its own grants is destroyed cleanly', async () => {
    const m = newMachine(16);
    const base = m.accounting();
    const h = await guest(m, 'self');
    const p = h.platform;
    const [g] = pages(p, 1);
    const ref = grant(p, h.domid, g!);
    const r = p.maps.map(h.domid, [ref], false);
    expect(r.ok).toBe(true);
    expect(acct(m, h.domid)).toMatchObject({ mapsHeld: 1, mapsOfMine: 1 });
    await m.destroyDomain(h.domid);
    expect(hasSlot(m, h.domid)).toBe(false);
    expect(m.leaks(base)).toEqual([]);
    await m.close();
  });

  it('explicit and duplicate domids, reserved ids, bad limits and unknown domains', async () => {
    const m = newMachine(16);
    const base = m.accounting();
    const five = await guest(m, 'five', { domid: 5 });
    expect(five.domid).toBe(5);
    await rejectsWith(m.createDomain({ mode: 'local', domid: 5 }), -EEXIST);
    await rejectsWith(m.createDomain({ mode: 'local', domid: 0 }), -EEXIST);
    await rejectsWith(m.createDomain({ mode: 'local', domid: 0x7ff0 }), -EINVAL);
    await rejectsWith(m.createDomain({ mode: 'local', domid: -1 }), -EINVAL);
    await rejectsWith(m.createDomain({ mode: 'local', domid: 2.5 }), -EINVAL);
    await rejectsWith(m.createDomain({ mode: 'local', limits: { maxGrantFrames: 0 } }), -EINVAL);
    await rejectsWith(m.createDomain({ mode: 'local', limits: { maxPorts: 4097 } }), -EINVAL);
    await rejectsWith(m.createDomain({ mode: 'local', limits: { maxPages: -1 } }), -EINVAL);
    // Automatic domids skip the ones in use.
    const auto: number[] = [];
    for (let i = 0; i < 5; i++) auto.push((await guest(m, `g${i}`)).domid);
    expect(auto).toEqual([1, 2, 3, 4, 6]);
    expect(new Set(m.handles.keys())).toEqual(new Set([0, 1, 2, 3, 4, 5, 6]));
    await rejectsWith(m.destroyDomain(999), -ESRCH);
    for (const d of [...auto, 5]) await m.destroyDomain(d);
    await rejectsWith(m.destroyDomain(5), -ESRCH);
    // Freed domids are not handed out again at once.
    expect((await guest(m, 'next')).domid).toBe(7);
    await m.destroyDomain(7);
    expect(m.leaks(base)).toEqual([]);
    await m.close();
    expect(() => new MachineClass({ memoryMiB: 0, log: () => {} })).toThrow(MachineError);
    expect(() => new MachineClass({ memoryMiB: 16, maxDomains: 0, log: () => {} })).toThrow(MachineError);
    expect(() => new MachineClass({ memoryMiB: 16, limits: { maxMaps: -1 }, log: () => {} })).toThrow(MachineError);
  });

  it('slot exhaustion (maxDomains), also while a zombie holds a slot', async () => {
    const m: Machine = newMachine(16, 3);
    const base = m.accounting();
    const a = await guest(m, 'a');
    let b = await guest(m, 'b');
    await rejectsWith(m.createDomain({ mode: 'local', name: 'c' }), -ENOSPC);
    expect(m.accounting().domains).toHaveLength(3);
    // A failed creation does not use up a domid: the next domain gets the one after b.
    await m.destroyDomain(b.domid);
    const b2 = await guest(m, 'b2');
    expect(b2.domid).toBe(b.domid + 1);
    await m.destroyDomain(b2.domid);
    b = await guest(m, 'b3');
    expect(m.leaks(base).length).toBeGreaterThan(0);
    // a becomes a zombie: its slot stays taken.
    const [g] = pages(a.platform, 1);
    const r = b.platform.maps.map(a.domid, [grant(a.platform, b.domid, g!)], true);
    expect(r.ok).toBe(true);
    await m.destroyDomain(a.domid);
    await rejectsWith(m.createDomain({ mode: 'local', name: 'c' }), -ENOSPC);
    if (r.ok) b.platform.maps.unmap(r.mapping);
    const c = await guest(m, 'c');
    await m.destroyDomain(c.domid);
    await m.destroyDomain(b.domid);
    expect(m.leaks(base)).toEqual([]);
    await m.close();
  });

  it('machine memory too small for a new domain -> MachineError -ENOMEM, nothing kept', async () => {
    const m = newMachine(1);
    const base = m.accounting();
    const a = await guest(m, 'a');
    const all = a.platform.memory.allocPages(m.accounting().freeFrames - 1 - 4);
    expect(typeof all).not.toBe('number');
    const free = m.accounting().freeFrames;
    expect(free).toBeLessThan(8);
    await rejectsWith(m.createDomain({ mode: 'local', name: 'b' }), -XEN_ERRNO.ENOMEM);
    expect(m.accounting().freeFrames).toBe(free);
    expect(m.accounting().domains).toHaveLength(2);
    await m.destroyDomain(a.domid);
    expect(m.leaks(base)).toEqual([]);
    await m.close();
  });

  it('a local domain whose main throws is destroyed with reason crash and its resources reclaimed', async () => {
    const m = newMachine(16);
    const base = m.accounting();
    const peer = await guest(m, 'peer');
    let port = 0;
    const h = await m.createDomain({
      mode: 'local',
      name: 'crashy',
      platform: { autoStart: false },
      main: async (ctx: DomainContext) => {
        const p = ctx.platform;
        const gfns = p.memory.allocPages(3);
        if (typeof gfns === 'number') throw new Error('no memory');
        p.grants.grantAccess(peer.domid, gfns[0]!, false);
        port = p.events.allocUnbound(peer.domid);
        await new Promise((r) => setTimeout(r, 1));
        throw new Error('boom in main');
      },
    });
    expect(h.mode).toBe('local');
    const exit = await h.exited;
    expect(exit.reason).toBe('crash');
    expect(exit.error).toContain('boom in main');
    expect(h.exit).toBe(exit);
    expect(port).toBeGreaterThan(0);
    expect(hasSlot(m, h.domid)).toBe(false);
    expect(m.handles.has(h.domid)).toBe(false);
    expect(peer.platform.events.bindInterdomain(h.domid, port)).toBe(-ESRCH);
    await m.destroyDomain(peer.domid);
    expect(m.leaks(base)).toEqual([]);
    await m.close();
  });

  it('a crashing domain whose grants are mapped stays a zombie until the unmap; main returning is poweroff', async () => {
    const m = newMachine(16);
    const base = m.accounting();
    const peer = await guest(m, 'peer');
    const granted: { ref: number; domid: number }[] = [];
    let go!: () => void;
    const gate = new Promise<void>((r) => (go = r));
    const h = await m.createDomain({
      mode: 'local',
      name: 'crashy',
      platform: { autoStart: false },
      main: async (ctx: DomainContext) => {
        const gfns = ctx.platform.memory.allocPages(1);
        if (typeof gfns === 'number') throw new Error('no memory');
        ctx.platform.memory.page(gfns[0]!)!.fill(0xcc);
        granted.push({ ref: ctx.platform.grants.grantAccess(peer.domid, gfns[0]!, true), domid: ctx.domid });
        await gate;
        throw new TypeError('crash');
      },
    });
    await new Promise((r) => setTimeout(r, 1));
    expect(granted).toHaveLength(1);
    const r = peer.platform.maps.map(h.domid, [granted[0]!.ref], true);
    expect(r.ok).toBe(true);
    go();
    expect((await h.exited).reason).toBe('crash');
    expect(acct(m, h.domid).state).toBe('zombie');
    if (r.ok) {
      expect(r.mapping.page(0)[7]).toBe(0xcc);
      expect(peer.platform.maps.unmap(r.mapping)).toBe(GNTST_okay);
    }
    expect(hasSlot(m, h.domid)).toBe(false);

    const ok = await m.createDomain({ mode: 'local', name: 'ok', main: (ctx) => ({ bye: ctx.name }) });
    expect(await ok.exited).toEqual({ reason: 'poweroff', value: { bye: 'ok' } });
    // A module that cannot be loaded: the domain is reclaimed and creation rejects.
    const before = m.accounting().domains.length;
    await rejectsWith(m.createDomain({ mode: 'local', module: new URL('./no-such-domain-module.js', import.meta.url) }), undefined);
    expect(m.accounting().domains).toHaveLength(before);
    await m.destroyDomain(peer.domid);
    expect(m.leaks(base)).toEqual([]);
    await m.close();
  });

  it('shutdownDomain aborts the signal and waits for main to return', async () => {
    const m = newMachine(16);
    const base = m.accounting();
    const h = await m.createDomain({
      mode: 'local',
      name: 'polite',
      main: (ctx) => new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve('done'))),
    });
    expect(await m.shutdownDomain(h.domid)).toEqual({ reason: 'poweroff', value: 'done' });
    const stubborn = await m.createDomain({ mode: 'local', name: 'stubborn', main: () => new Promise(() => {}) });
    expect(await m.shutdownDomain(stubborn.domid, 10)).toEqual({ reason: 'destroyed' });
    expect(m.leaks(base)).toEqual([]);
    await m.close();
  });

  describe('the stale platform of a destroyed local domain (its code may keep running) does not touch frames reused by others', () => {
    async function reuse(): Promise<{ m: Machine; base: ReturnType<Machine['accounting']>; g: Awaited<ReturnType<typeof guest>>; h: Awaited<ReturnType<typeof guest>> }> {
      const m = newMachine(1);
      const base = m.accounting();
      const g = await guest(m, 'g');
      const gTable = g.platform.hypercalls.gnttabFrames()[0]!.byteOffset / 4096;
      const gShinfo = g.platform.hypercalls.eventWords()!.shinfo.byteOffset / 4096;
      await m.destroyDomain(g.domid);
      const h = await guest(m, 'h');
      // The allocator hands g's old grant table and shared-info frames to h.
      expect(h.platform.hypercalls.gnttabFrames()[0]!.byteOffset / 4096).toBe(gTable);
      expect(h.platform.hypercalls.eventWords()!.shinfo.byteOffset / 4096).toBe(gShinfo);
      return { m, base, g, h };
    }

    it('grantAccess after the destroy does not write into the new owner grant table', async () => {
      const { m, base, g, h } = await reuse();
      try {
        g.platform.grants.grantAccess(h.domid, 1234, false);
        expect(acct(m, h.domid).grantEntriesInUse).toBe(0);
        expect(h.platform.grants.flags(8)).toBe(0);
        await m.destroyDomain(h.domid);
        expect(m.leaks(base)).toEqual([]);
      } finally {
        await m.close();
      }
    });

    it('poll() after the destroy does not consume the new owner events', async () => {
      const { m, base, g, h } = await reuse();
      try {
        const d0 = m.dom0.platform!;
        const ph = h.platform.events.allocUnbound(0);
        const p0 = d0.events.bindInterdomain(h.domid, ph);
        const seen: number[] = [];
        h.platform.events.on(ph, (p) => seen.push(p));
        h.platform.poll();
        seen.length = 0;
        expect(d0.events.notify(p0)).toBe(0);
        g.platform.poll();
        h.platform.poll();
        expect(seen).toEqual([ph]);
        expect(d0.events.close(p0)).toBe(0);
        await m.destroyDomain(h.domid);
        expect(m.leaks(base)).toEqual([]);
      } finally {
        await m.close();
      }
    });
  });

  it('close() destroys everything, dom0 last', async () => {
    const m = newMachine(16);
    const a = await guest(m, 'a');
    pages(a.platform, 2);
    a.platform.events.allocUnbound(0);
    await m.close();
    expect(m.accounting().domains).toEqual([]);
    expect(m.accounting().freeFrames).toBe(m.accounting().totalFrames);
    expect(m.accounting().xenFrames).toBe(0);
    expect(m.dom0.exit).toEqual({ reason: 'destroyed' });
  });
});

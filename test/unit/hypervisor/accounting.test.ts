// Bad inputs tried: deliberately leaked pages, ports, grants and mappings (leaks() must name them), domains left alive or destroyed against a baseline, frames kept alive only by foreign mappings.
import { GNTST_bad_handle } from '../../../src/abi/grant-table.js';
import { describe, expect, it } from 'vitest';
import { accountingDiff } from '../../../src/hypervisor/index.js';
import type { Machine, MachineAccounting } from '../../../src/hypervisor/index.js';
import { acct, grant, guest, newMachine, pages } from './helpers.js';

/** Frames are conserved: free + hypervisor + guest RAM + frames kept only by mappings = total. */
function conserved(a: MachineAccounting, keptByMappings = 0): void {
  const ram = a.domains.reduce((n, d) => n + d.pages, 0);
  expect(a.freeFrames + a.xenFrames + ram + keptByMappings).toBe(a.totalFrames);
  expect(a.domains.reduce((n, d) => n + d.xenFrames, 0)).toBe(a.xenFrames);
}

describe('accounting', () => {
  it('a fresh machine: dom0 only, privileged, 8 hypervisor frames', async () => {
    const m = newMachine(16);
    const a = m.accounting();
    expect(a.totalFrames).toBe(16 * 256);
    expect(a.lockBreaks).toBe(0);
    expect(a.domains).toEqual([
      {
        domid: 0, state: 'running', privileged: true, pages: 0, maxPages: 65536, grantFrames: 1, maxGrantFrames: 64,
        grantEntriesInUse: 0, grantEntriesPinned: 0, mapsHeld: 0, maxMaps: 65536, mapsOfMine: 0, ports: 0,
        maxPorts: 1024, gfnLimit: 262144, xenFrames: 8,
      },
    ]);
    conserved(a);
    // Hypervisor frames per domain: shared info + ceil(maxPorts / 256) port frames + 3 grant frames.
    const g = await guest(m, 'g', { limits: { maxPorts: 8, maxPages: 10, maxGrantFrames: 2, maxMaps: 7, gfnLimit: 100 } });
    expect(acct(m, g.domid)).toMatchObject({ privileged: false, xenFrames: 1 + 1 + 3, maxPages: 10, maxGrantFrames: 2, maxMaps: 7, maxPorts: 8, gfnLimit: 100 });
    expect(g.platform.hypercalls.accounting()).toEqual(acct(m, g.domid));
    conserved(m.accounting());
    await m.close();
  });

  it('leaks() names what was left behind, and nothing once it is given back', async () => {
    const m = newMachine(16);
    const base = m.accounting();
    const a = await guest(m, 'a');
    const b = await guest(m, 'b');
    expect(m.leaks(base)).toEqual(expect.arrayContaining([`d${a.domid}: new (running)`, `d${b.domid}: new (running)`]));
    const before = m.accounting();
    const gfns = pages(a.platform, 2);
    const ref = grant(a.platform, b.domid, gfns[0]!);
    const port = a.platform.events.allocUnbound(b.domid);
    const r = b.platform.maps.map(a.domid, [ref], true);
    expect(r.ok).toBe(true);
    const leaks = m.leaks(before);
    expect(leaks).toEqual(expect.arrayContaining([
      `d${a.domid}.pages: 0 -> 2`,
      `d${a.domid}.grantEntriesInUse: 0 -> 1`,
      `d${a.domid}.grantEntriesPinned: 0 -> 1`,
      `d${a.domid}.mapsOfMine: 0 -> 1`,
      `d${a.domid}.ports: 0 -> 1`,
      `d${b.domid}.mapsHeld: 0 -> 1`,
    ]));
    expect(leaks.some((l) => l.startsWith('freeFrames: '))).toBe(true);
    expect(leaks.some((l) => l.startsWith('xenFrames: '))).toBe(true);
    conserved(m.accounting());
    // Another domain's platform may not unmap b's mapping (its handles index b's maptrack).
    if (r.ok) {
      expect(a.platform.maps.unmap(r.mapping)).toBe(GNTST_bad_handle);
      expect(acct(m, b.domid).mapsHeld).toBe(1);
    }
    if (r.ok) b.platform.maps.unmap(r.mapping);
    expect(a.platform.grants.endAccess(ref)).toBe(true);
    expect(a.platform.events.close(port)).toBe(0);
    expect(a.platform.memory.freePages(gfns)).toBe(0);
    // Only the p2m leaf and b's maptrack frame remain until the domains go.
    expect(m.leaks(before)).toEqual([
      `freeFrames: ${before.freeFrames} -> ${before.freeFrames - 2}`,
      `xenFrames: ${before.xenFrames} -> ${before.xenFrames + 2}`,
      `d${a.domid}.xenFrames: 8 -> 9`,
      `d${b.domid}.xenFrames: 8 -> 9`,
    ]);
    await m.destroyDomain(a.domid);
    expect(m.leaks(base)).toContain(`d${b.domid}: new (running)`);
    expect(m.leaks(base).some((l) => l.startsWith(`d${a.domid}`))).toBe(false);
    await m.destroyDomain(b.domid);
    expect(m.leaks(base)).toEqual([]);
    expect(accountingDiff(before, base)).toEqual(expect.arrayContaining([`d${a.domid}: gone`, `d${b.domid}: gone`]));
    await m.close();
  });

  it('frames are conserved through a page freed while mapped and a zombie', async () => {
    const m: Machine = newMachine(16);
    const base = m.accounting();
    const a = await guest(m, 'a');
    const b = await guest(m, 'b');
    const gfns = pages(a.platform, 3);
    const refs = Array.from(gfns, (g) => grant(a.platform, b.domid, g));
    const r = b.platform.maps.map(a.domid, refs, false);
    expect(r.ok).toBe(true);
    conserved(m.accounting());
    // a frees one mapped page: it is no longer a's RAM, but the mapping keeps the frame.
    expect(a.platform.memory.freePages([gfns[0]!])).toBe(0);
    expect(acct(m, a.domid).pages).toBe(2);
    conserved(m.accounting(), 1);
    // a is destroyed: all three mapped frames stay, held by b.
    await m.destroyDomain(a.domid);
    expect(acct(m, a.domid)).toMatchObject({ state: 'zombie', pages: 0, mapsOfMine: 3, grantEntriesPinned: 3, xenFrames: 3 });
    conserved(m.accounting(), 3);
    if (r.ok) b.platform.maps.unmap(r.mapping);
    conserved(m.accounting());
    await m.destroyDomain(b.domid);
    expect(m.leaks(base)).toEqual([]);
    conserved(m.accounting());
    await m.close();
  });
});

/**
 * Guests reach xenstored the way a domU does: a ring page and an event channel set up by the
 * domain builder and introduced with XS_INTRODUCE. The toolstack lays out vdispl devices as libxl
 * does; permissions keep the guest inside them; destroying the guest fires @releaseDomain and
 * removes its ring mapping, watches and nodes, with no hypervisor resources left behind.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Toolstack } from '../../src/toolstack/toolstack.js';
import { parseVdisplSpec } from '../../src/toolstack/vdispl-spec.js';
import type { WatchEvent } from '../../src/xenstore/client.js';

const guest = new URL('./workers/xs-guest.ts', import.meta.url);
let ts: Toolstack | undefined;

afterEach(async () => {
  await ts?.close();
  ts = undefined;
});

async function until<T>(fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * dom0's maptrack grows by a frame on its first grant mapping and keeps it (as Xen's does):
 * build and destroy one guest before taking the baseline.
 */
async function warmUp(t: Toolstack): Promise<void> {
  const g = await t.createDomain({ mode: 'local', name: 'warm-up' });
  await t.destroyDomain(g.domid);
}

describe('guest xenstore ring', () => {
  it('serves a worker guest, enforces permissions, and cleans up on destroy', async () => {
    ts = await Toolstack.start({ log: () => undefined });
    await warmUp(ts);
    const base = ts.machine.accounting();
    const xsBase = ts.xenstored.stats;
    const released: WatchEvent[] = [];
    const w = await ts.xs.watch('@releaseDomain', (e) => released.push(e));
    const g = await ts.createDomain({
      mode: 'worker',
      module: guest,
      name: 'probe',
      args: { script: 'probe' },
      vdispl: [parseVdisplSpec('backend=0,be-alloc=1,connectors=id0:1920x1080;id1:800x600')],
    });
    const d = g.domid;
    expect(await ts.xs.isDomainIntroduced(d)).toBe(true);
    const probe = JSON.parse(await until(() => ts!.xs.tryRead(`/local/domain/${d}/data/probe`))) as Record<string, string>;
    expect(probe).toEqual({
      name: 'ok:"probe"',
      relativeDevice: 'ok:["backend","backend-id","state","be-alloc","0","1"]',
      beAlloc: 'ok:"1"',
      writeBeAlloc: 'EACCES',
      writeRingRef: 'ok:null',
      writeOwnState: 'ok:null',
      readDom0: 'EACCES',
      writeRoot: 'EACCES',
      writeName: 'EACCES',
      introduce: 'EACCES',
      backendState: 'ok:"1"',
      txWrite: 'ok:null',
    });
    expect(await ts.xs.readString(`/local/domain/${d}/data/b`)).toBe('2');
    // The guest's own node is owned by it; the ring-ref it created inherited [n d, r 0].
    expect(await ts.xs.getPerms(`/local/domain/${d}/device/vdispl/0/0/req-ring-ref`)).toEqual([{ domid: d, access: 'n' }, { domid: 0, access: 'r' }]);
    expect(ts.xenstored.stats.watches).toBeGreaterThan(xsBase.watches);

    released.length = 0;
    await ts.destroyDomain(d);
    await until(() => Promise.resolve(released.length > 0 ? true : undefined));
    expect(released[0]!.path).toBe('@releaseDomain');
    expect(await ts.xs.isDomainIntroduced(d)).toBe(false);
    expect(await ts.xs.tryRead(`/local/domain/${d}/name`)).toBeUndefined();
    expect(await ts.xs.tryRead(`/local/domain/0/backend/vdispl/${d}/0/state`)).toBeUndefined();
    await w.unwatch();
    expect(ts.xenstored.stats).toMatchObject({ watches: xsBase.watches, transactions: 0, guests: 0, sessions: xsBase.sessions });
    expect(ts.machine.leaks(base)).toEqual([]);
  });

  it('carries many requests in flight through the 1 KiB ring', async () => {
    ts = await Toolstack.start({ log: () => undefined });
    await warmUp(ts);
    const base = ts.machine.accounting();
    const g = await ts.createDomain({ mode: 'worker', module: guest, name: 'flood', args: { script: 'flood' } });
    expect(await until(() => ts!.xs.tryRead(`/local/domain/${g.domid}/data/flood`))).toBe('ok');
    await ts.shutdownDomain(g.domid);
    expect(ts.machine.leaks(base)).toEqual([]);
  });

  it('lays vdispl devices out as libxl does', async () => {
    ts = await Toolstack.start({ log: () => undefined });
    const g = await ts.createDomain({
      mode: 'local',
      name: 'layout',
      vdispl: [parseVdisplSpec('backend=Domain-0,be-alloc=0,connectors=HDMI-A-1:1920x1080;VGA-1:768x1024')],
    });
    const d = g.domid;
    const fe = `/local/domain/${d}/device/vdispl/0`;
    const be = `/local/domain/0/backend/vdispl/${d}/0`;
    const xs = ts.xs;
    expect(await xs.readString(`${fe}/backend`)).toBe(be);
    expect(await xs.readString(`${fe}/backend-id`)).toBe('0');
    expect(await xs.readString(`${fe}/state`)).toBe('1');
    expect(await xs.readString(`${fe}/be-alloc`)).toBe('0');
    expect(await xs.readString(`${fe}/0/resolution`)).toBe('1920x1080');
    expect(await xs.readString(`${fe}/0/unique-id`)).toBe('HDMI-A-1');
    expect(await xs.readString(`${fe}/1/resolution`)).toBe('768x1024');
    expect(await xs.readString(`${fe}/1/unique-id`)).toBe('VGA-1');
    expect(await xs.getPerms(fe)).toEqual([{ domid: d, access: 'n' }, { domid: 0, access: 'r' }]);
    expect(await xs.getPerms(`${fe}/be-alloc`)).toEqual([{ domid: 0, access: 'n' }, { domid: d, access: 'r' }]);
    expect(await xs.getPerms(`${fe}/0/unique-id`)).toEqual([{ domid: 0, access: 'n' }, { domid: d, access: 'r' }]);
    expect(await xs.getPerms(`${fe}/0`)).toEqual([{ domid: d, access: 'n' }, { domid: 0, access: 'r' }]);
    expect(await xs.readString(`${be}/frontend`)).toBe(fe);
    expect(await xs.readString(`${be}/frontend-id`)).toBe(String(d));
    expect(await xs.readString(`${be}/online`)).toBe('1');
    expect(await xs.readString(`${be}/state`)).toBe('1');
    expect(await xs.getPerms(be)).toEqual([{ domid: 0, access: 'n' }, { domid: d, access: 'r' }]);
    expect(await xs.readString(`/libxl/${d}/device/vdispl/0/frontend`)).toBe(fe);
    expect(await xs.readString(`/local/domain/${d}/name`)).toBe('layout');
    expect(await xs.getPerms(`/local/domain/${d}`)).toEqual([{ domid: 0, access: 'n' }, { domid: d, access: 'r' }]);
  });
});

/**
 * XenBus device objects on both ends: a guest frontend (over its xenstore ring) and a dom0
 * backend walk Initialising -> InitWait -> Initialised -> Connected -> Closing -> Closed through
 * XenStore, sharing a ring page and an event channel set up with the helpers; dev_fatal records
 * the error as Linux does and moves to Closing; the state watch delivers each transition once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { XenbusState, type XenbusStateValue } from '../../src/abi/xenbus-state.js';
import type { DomainContext } from '../../src/hypervisor/index.js';
import { Toolstack } from '../../src/toolstack/toolstack.js';
import { parseVdisplSpec } from '../../src/toolstack/vdispl-spec.js';
import { XenbusDevice, XenbusError } from '../../src/xenbus/device.js';
import { domainPlatform } from '../../src/xenbus/xen-platform.js';

let ts: Toolstack | undefined;
afterEach(async () => {
  await ts?.close();
  ts = undefined;
});

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const spec = parseVdisplSpec('backend=0,connectors=id0:640x480');

describe('XenbusDevice', () => {
  it('walks both state machines, shares a ring page and an event channel, and closes', async () => {
    ts = await Toolstack.start({ log: () => undefined });
    const warm = await ts.createDomain({ mode: 'local', name: 'warm-up' });
    await ts.destroyDomain(warm.domid);
    const base = ts.machine.accounting();

    const frontSeen: XenbusStateValue[] = [];
    const backSeen: XenbusStateValue[] = [];
    const frontDone = deferred<string>();
    const g = await ts.createDomain({
      mode: 'local',
      name: 'front',
      vdispl: [spec],
      main: async (ctx: DomainContext) => {
        const p = domainPlatform(ctx);
        const dev = await XenbusDevice.open(p, 'frontend', 'device/vdispl/0');
        expect(dev.nodename).toBe(`/local/domain/${ctx.domid}/device/vdispl/0`);
        expect(dev.otherendId).toBe(0);
        expect(dev.state).toBe(XenbusState.Initialising);
        const ring = dev.grantRingPage();
        const port = dev.allocEvtchn();
        const gotEvent = deferred<void>();
        p.events.on(port, () => gotEvent.resolve());
        const closed = deferred<void>();
        await dev.watchOtherend(async (s) => {
          frontSeen.push(s);
          if (s === XenbusState.InitWait) {
            ring.page[0] = 0x5a;
            await dev.publish({ '0/req-ring-ref': ring.ref, '0/req-event-channel': port }, XenbusState.Initialised);
          } else if (s === XenbusState.Connected) {
            await dev.switchState(XenbusState.Connected);
          } else if (s === XenbusState.Closing) {
            await dev.switchState(XenbusState.Closed);
            closed.resolve();
          }
        });
        await gotEvent.promise;
        await closed.promise;
        await dev.close();
        p.events.off(port);
        p.events.close(port);
        const seen = String(ring.page[1]); // before release: freed frames are scrubbed
        dev.releaseRingPage(ring);
        frontDone.resolve(seen);
        p.xenstore.close();
      },
    });

    const dom0 = ts.dom0;
    const back = await XenbusDevice.open(dom0, 'backend', g.devices[0]!.backend);
    expect(back.otherendId).toBe(g.domid);
    expect(back.otherendPath).toBe(g.devices[0]!.frontend);
    let mapping: ReturnType<typeof dom0.maps.map> | undefined;
    let local = -1;
    const backClosed = deferred<void>();
    await back.watchOtherend(async (s) => {
      backSeen.push(s);
      if (s === XenbusState.Initialised) {
        const ref = Number(await back.readOtherend('0/req-ring-ref'));
        const port = Number(await back.readOtherend('0/req-event-channel'));
        mapping = dom0.maps.map(g.domid, [ref], false);
        expect(mapping.ok).toBe(true);
        if (!mapping.ok) return;
        expect(mapping.mapping.page(0)[0]).toBe(0x5a);
        mapping.mapping.page(0)[1] = 0xa5;
        local = dom0.events.bindInterdomain(g.domid, port);
        expect(local).toBeGreaterThan(0);
        dom0.events.notify(local);
        await back.switchState(XenbusState.Connected);
      } else if (s === XenbusState.Connected) {
        await back.switchState(XenbusState.Closing);
      } else if (s === XenbusState.Closed) {
        if (mapping?.ok) dom0.maps.unmap(mapping.mapping);
        dom0.events.close(local);
        await back.switchState(XenbusState.Closed);
        backClosed.resolve();
      }
    });
    await back.switchState(XenbusState.InitWait);
    expect(await frontDone.promise).toBe(String(0xa5));
    await backClosed.promise;
    await back.close();
    expect(frontSeen).toEqual([XenbusState.InitWait, XenbusState.Connected, XenbusState.Closing]);
    expect(backSeen).toEqual([XenbusState.Initialising, XenbusState.Initialised, XenbusState.Connected, XenbusState.Closed]);
    await g.handle.exited;
    await ts.settled();
    expect(ts.machine.leaks(base)).toEqual([]);
  });

  it('dev_fatal writes error/<nodename>/error and switches to Closing', async () => {
    ts = await Toolstack.start({ log: () => undefined });
    const g = await ts.createDomain({ mode: 'local', name: 'fatal', vdispl: [spec] });
    const back = await XenbusDevice.open(ts.dom0, 'backend', g.devices[0]!.backend);
    expect(back.relativeName).toBe(`backend/vdispl/${g.domid}/0`);
    await back.devFatal(-12, 'mapping the ring');
    expect(await ts.xs.readString(`/local/domain/0/error/backend/vdispl/${g.domid}/0/error`)).toBe('12 mapping the ring');
    expect(await ts.xs.readString(`${g.devices[0]!.backend}/state`)).toBe(String(XenbusState.Closing));
  });

  it('refuses a device the toolstack did not create and a state node that is gone', async () => {
    ts = await Toolstack.start({ log: () => undefined });
    const g = await ts.createDomain({ mode: 'local', name: 'nodev', vdispl: [spec] });
    await expect(XenbusDevice.open(ts.dom0, 'backend', `/local/domain/0/backend/vdispl/${g.domid}/7`)).rejects.toThrow(XenbusError);
    const back = await XenbusDevice.open(ts.dom0, 'backend', g.devices[0]!.backend);
    await ts.xs.rm(g.devices[0]!.backend);
    await expect(back.switchState(XenbusState.InitWait)).rejects.toThrow(/is gone/);
    expect(await ts.xs.tryRead(`${g.devices[0]!.backend}/state`)).toBeUndefined();
  });

  it('never re-creates a removed device, and reads a vanished other end as Unknown', async () => {
    ts = await Toolstack.start({ log: () => undefined });
    const result = deferred<{ publish: string; state: number; read: string | undefined; seen: number[] }>();
    const go = deferred<void>();
    const ready = deferred<void>();
    const g = await ts.createDomain({
      mode: 'local',
      name: 'gone',
      vdispl: [spec],
      main: async (ctx: DomainContext) => {
        const p = domainPlatform(ctx);
        const dev = await XenbusDevice.open(p, 'frontend', 'device/vdispl/0');
        const seen: number[] = [];
        await dev.watchOtherend((s) => void seen.push(s));
        ready.resolve();
        await go.promise;
        const publish = await dev.publish({ '0/req-ring-ref': 8 }, XenbusState.Initialised).then(() => 'published', (e: unknown) => (e instanceof XenbusError ? 'refused' : String(e)));
        await new Promise((r) => setTimeout(r, 50));
        result.resolve({ publish, state: await dev.otherendStateNow(), read: await dev.readOtherend('state'), seen });
        await dev.close();
      },
    });
    // The toolstack removes both directories (a detach), then the guest tries to publish.
    await ready.promise;
    await ts.xs.transaction(async (tx) => {
      await tx.rm(g.devices[0]!.frontend);
      await tx.rm(g.devices[0]!.backend);
    });
    go.resolve();
    const r = await result.promise;
    expect(r.publish).toBe('refused');
    expect(await ts.xs.tryRead(g.devices[0]!.frontend)).toBeUndefined();
    expect(r.state).toBe(XenbusState.Unknown);
    expect(r.read).toBeUndefined();
    expect(r.seen).toEqual([XenbusState.Initialising, XenbusState.Unknown]);
  });

  it('delivers only real transitions, in order, even when the other end changes quickly', async () => {
    ts = await Toolstack.start({ log: () => undefined });
    const g = await ts.createDomain({ mode: 'local', name: 'fast', vdispl: [spec] });
    const back = await XenbusDevice.open(ts.dom0, 'backend', g.devices[0]!.backend);
    const seen: [XenbusStateValue, XenbusStateValue][] = [];
    await back.watchOtherend(async (s, prev) => {
      seen.push([s, prev]);
      await new Promise((r) => setTimeout(r, 5));
    });
    const fe = g.devices[0]!.frontend;
    for (const s of [1, 1, 2, 3, 3, 4]) await ts.xs.write(`${fe}/state`, String(s));
    await new Promise((r) => setTimeout(r, 100));
    // Each entry differs from the one before it, and the last is the final state.
    for (let i = 1; i < seen.length; i++) expect(seen[i]![1]).toBe(seen[i - 1]![0]);
    expect(seen[0]).toEqual([XenbusState.Initialising, XenbusState.Unknown]);
    expect(seen[seen.length - 1]![0]).toBe(XenbusState.Connected);
    await back.close();
  });
});

/**
 * Bad input on a guest's xenstore ring, written by hand into the ring page: a header announcing
 * more than 4096 bytes (xenstored marks the ring XENSTORE_ERROR_PROTO and ignores that guest),
 * corrupt indices (XENSTORE_ERROR_RINGIDX), and a guest that never consumes its responses while
 * watch events pile up (requests stop being read past the outstanding quota, events are dropped
 * past the queued-event quota: memory stays bounded). Other guests and dom0 carry on, and
 * destroying the offender leaves no leaks.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { encodeXsMessage, XENSTORE_ERROR_PROTO, XENSTORE_ERROR_RINGIDX, XS_READ, XS_WATCH, xsPayload } from '../../src/abi/xs-wire.js';
import type { DomainContext } from '../../src/hypervisor/index.js';
import { XsRingPage } from '../../src/ring/xs-ring.js';
import { Toolstack } from '../../src/toolstack/toolstack.js';
import { connectGuest } from '../../src/xenstore/client-transports.js';

let ts: Toolstack | undefined;
afterEach(async () => {
  await ts?.close();
  ts = undefined;
});

interface RawGuest {
  readonly domid: number;
  readonly ring: XsRingPage;
  readonly kick: () => void;
}

/** A local guest whose ring page the test drives by hand. */
async function rawGuest(t: Toolstack, name: string): Promise<RawGuest> {
  let ctx!: DomainContext;
  const g = await t.createDomain({ mode: 'local', name, main: (c) => (ctx = c) && new Promise(() => undefined) });
  const store = ctx.startInfo.store!;
  const ring = new XsRingPage(ctx.platform.memory.page(store.gfn)!);
  return { domid: g.domid, ring, kick: () => void ctx.platform.events.notify(store.port) };
}

const tick = (ms = 20): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function warm(t: Toolstack): Promise<void> {
  const g = await t.createDomain({ mode: 'local', name: 'warm-up' });
  await t.destroyDomain(g.domid);
}

describe('guest ring bad input', () => {
  it('a header announcing 4097 bytes marks the ring PROTO and ignores that guest only', async () => {
    const logs: string[] = [];
    ts = await Toolstack.start({ log: (l) => logs.push(l) });
    await warm(ts);
    const base = ts.machine.accounting();
    const bad = await rawGuest(ts, 'bad');
    const good = await ts.createDomain({ mode: 'local', name: 'good', main: async (c) => {
      const xs = connectGuest(c.platform, c.startInfo);
      await xs.write('data/x', 'fine');
    } });
    const hdr = encodeXsMessage({ type: XS_READ, req_id: 1, tx_id: 0, payload: new Uint8Array(0) });
    new DataView(hdr.buffer).setUint32(12, 4097, true);
    bad.ring.write('req', hdr);
    bad.kick();
    await tick();
    expect(bad.ring.get('error')).toBe(XENSTORE_ERROR_PROTO);
    expect(logs.some((l) => l.includes(`domain ${bad.domid}`) && l.includes('4097'))).toBe(true);
    // Further requests from it are not answered.
    bad.ring.write('req', encodeXsMessage({ type: XS_READ, req_id: 2, tx_id: 0, payload: xsPayload(['name']) }));
    bad.kick();
    await tick();
    expect(bad.ring.readable('rsp')).toEqual({ ok: true, value: 0 });
    await good.handle.exited;
    await ts.settled();
    expect(await ts.xs.readString('/local/domain/0/name')).toBe('Domain-0');
    await ts.destroyDomain(bad.domid);
    expect(ts.xenstored.stats.guests).toBe(0);
    expect(ts.machine.leaks(base)).toEqual([]);
  });

  it('corrupt ring indices mark the ring RINGIDX', async () => {
    ts = await Toolstack.start({ log: () => undefined });
    const bad = await rawGuest(ts, 'idx');
    bad.ring.set('req_prod', bad.ring.get('req_cons') + 5000);
    bad.kick();
    await tick();
    expect(bad.ring.get('error')).toBe(XENSTORE_ERROR_RINGIDX);
    expect(await ts.xs.readString('/local/domain/0/name')).toBe('Domain-0');
  });

  it('a guest that never reads its responses: bounded queue, dropped events, nothing else affected', async () => {
    const logs: string[] = [];
    ts = await Toolstack.start({ log: (l) => logs.push(l) });
    await warm(ts);
    const base = ts.machine.accounting();
    const g = await rawGuest(ts, 'deaf');
    // A watch on its data directory, then 100 reads, never consuming a byte of the responses.
    g.ring.write('req', encodeXsMessage({ type: XS_WATCH, req_id: 1, tx_id: 0, payload: xsPayload(['data', 'tok']) }));
    for (let i = 0; i < 40; i++) {
      const w = g.ring.write('req', encodeXsMessage({ type: XS_READ, req_id: 100 + i, tx_id: 0, payload: xsPayload(['name']) }));
      if (!w.ok || w.value === 0) break;
    }
    g.kick();
    // Let dom0's event loop serve the ring (the in-process writes below never yield to it).
    while (ts.xenstored.stats.watches === 0) await tick(5);
    // dom0 writes 5,000 times under the watched directory.
    for (let i = 0; i < 5000; i++) await ts.xs.write(`/local/domain/${g.domid}/data/k`, String(i));
    await tick();
    const conn = (ts.xenstored as unknown as { guests: Map<number, { droppedEvents: number; stream: { queuedMessages: number } }> }).guests.get(g.domid)!;
    // At most the quota waits in memory (plus what fit in the 1 KiB ring); the rest was dropped.
    const quota = ts.xenstored.store.quotas.queuedWatchEvents;
    expect(conn.stream.queuedMessages).toBe(quota);
    expect(conn.droppedEvents).toBeGreaterThanOrEqual(5000 - quota - 1024 / 16);
    expect(logs.filter((l) => l.includes('not reading its ring'))).toHaveLength(1);
    // The ring is full of responses the guest never took.
    expect(g.ring.readable('rsp')).toEqual({ ok: true, value: 1024 });
    // Everyone else is served.
    const other = await ts.createDomain({ mode: 'local', name: 'other', main: async (c) => {
      const xs = connectGuest(c.platform, c.startInfo);
      return xs.readString('name');
    } });
    expect((await other.handle.exited).value).toBe('other');
    await ts.destroyDomain(g.domid);
    await ts.settled();
    expect(ts.xenstored.stats).toMatchObject({ guests: 0, watches: 0, transactions: 0 });
    expect(ts.machine.leaks(base)).toEqual([]);
  });
});

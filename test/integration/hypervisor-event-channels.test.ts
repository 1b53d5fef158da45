/**
 * Event channels across threads: ping-pong round trips with no lost wakeup (worker <-> worker,
 * with and without spinning event loops, and dom0 <-> worker either way), and coalescing of
 * sends while the receiver is busy that never swallows the last one.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { DomainHandle, Machine } from '../../src/hypervisor/index.js';
import { BACKWARDS, CALLS, DONE as CO_DONE, DURING, PORT as CO_PORT, SEEN, SENT } from './workers/hv-coalesce.js';
import { ELAPSED_US, PING, PING_CALLS, PONG, PONG_CALLS, PORT, runPing, runPong } from './workers/hv-pingpong.js';
import { exitOf, hv, Mailbox, newMachine, orExit, put, until, within } from './workers/hv-shared.js';

const ROUNDS = 5000;
const PINGER = 21;
const PONGER = 22;

let m: Machine | undefined;
afterEach(async () => {
  if (m) await m.close();
  m = undefined;
});

async function expectPoweroff(hs: readonly DomainHandle[], logs: string[]): Promise<void> {
  const exits = await Promise.all(hs.map((h) => exitOf(h, 15_000)));
  expect(exits.map((e) => e.reason), `${JSON.stringify(exits)}\n${logs.join('\n')}`).toEqual(hs.map(() => 'poweroff'));
}

describe('event channel ping-pong across threads', () => {
  it.each([
    ['without spinning', 0],
    ['with spinMicros 200', 200],
  ])(`worker <-> worker, ${ROUNDS} round trips (%s)`, async (_name, spinMicros) => {
    const logs: string[] = [];
    m = newMachine(logs);
    const d0 = m.dom0.platform!;
    const base = m.accounting();
    const box = new Mailbox(d0);
    const common = { rounds: ROUNDS };
    const hs = [
      await m.createDomain({ mode: 'worker', name: 'ping', domid: PINGER, module: hv('pingpong'), spinMicros, args: { role: 'ping', mailboxRef: box.grant(PINGER), peer: PONGER, ...common } }),
      await m.createDomain({ mode: 'worker', name: 'pong', domid: PONGER, module: hv('pingpong'), spinMicros, args: { role: 'pong', mailboxRef: box.grant(PONGER), peer: PINGER, ...common } }),
    ];
    // dom0 allocates ping's port, for pong to bind, in ping's domain.
    const port = d0.hypercalls.evtchnAllocUnbound(PONGER, PINGER);
    expect(port).toBeGreaterThan(0);
    put(box.mb, PORT, port);
    await orExit(Promise.all(hs.map((h) => h.ready)), hs);
    await expectPoweroff(hs, logs);
    const mb = box.mb;
    expect([mb[PING], mb[PONG]]).toEqual([ROUNDS, ROUNDS]);
    // Every round trip needs one handler call on each side (plus the bind's spurious one).
    expect(mb[PING_CALLS]).toBeGreaterThanOrEqual(ROUNDS);
    expect(mb[PONG_CALLS]).toBeGreaterThanOrEqual(ROUNDS);
    console.log(`worker<->worker ${_name}: ${ROUNDS} round trips in ${(mb[ELAPSED_US]! / 1000).toFixed(0)} ms (${(mb[ELAPSED_US]! / ROUNDS).toFixed(1)} us each)`);
    box.release();
    expect(m.leaks(base)).toEqual([]);
  }, 30_000);

  it(`dom0 (ping, in the test thread) <-> worker (pong), ${ROUNDS} round trips`, async () => {
    const logs: string[] = [];
    m = newMachine(logs);
    const d0 = m.dom0.platform!;
    const base = m.accounting();
    const box = new Mailbox(d0);
    const h = await m.createDomain({ mode: 'worker', name: 'pong', domid: PONGER, module: hv('pingpong'), args: { role: 'pong', mailboxRef: box.grant(PONGER), peer: 0, rounds: ROUNDS } });
    const port = d0.events.allocUnbound(PONGER);
    expect(port).toBeGreaterThan(0);
    put(box.mb, PORT, port);
    await orExit(h.ready, [h]);
    await orExit(runPing(d0, box.mb, port, ROUNDS), [h]);
    await expectPoweroff([h], logs);
    expect(d0.events.close(port)).toBe(0);
    expect([box.mb[PING], box.mb[PONG]]).toEqual([ROUNDS, ROUNDS]);
    box.release();
    expect(m.leaks(base)).toEqual([]);
  }, 30_000);

  it(`worker (ping) <-> dom0 (pong, in the test thread), ${ROUNDS} round trips`, async () => {
    const logs: string[] = [];
    m = newMachine(logs);
    const d0 = m.dom0.platform!;
    const base = m.accounting();
    const box = new Mailbox(d0);
    const h = await m.createDomain({ mode: 'worker', name: 'ping', domid: PINGER, module: hv('pingpong'), args: { role: 'ping', mailboxRef: box.grant(PINGER), peer: 0, rounds: ROUNDS } });
    const port = d0.hypercalls.evtchnAllocUnbound(0, PINGER);
    expect(port).toBeGreaterThan(0);
    put(box.mb, PORT, port);
    await orExit(h.ready, [h]);
    await orExit(runPong(d0, box.mb, PINGER, port), [h]);
    await expectPoweroff([h], logs);
    expect([box.mb[PING], box.mb[PONG]]).toEqual([ROUNDS, ROUNDS]);
    box.release();
    expect(m.leaks(base)).toEqual([]);
  }, 30_000);
});

describe('event channel coalescing across threads', () => {
  it('sends while the receiver is busy coalesce, and the last send of every burst is seen', async () => {
    const logs: string[] = [];
    m = newMachine(logs);
    const d0 = m.dom0.platform!;
    const base = m.accounting();
    const box = new Mailbox(d0);
    const SENDER = 31;
    const RECEIVER = 32;
    const bursts = 25;
    const perBurst = 200;
    const common = { bursts, perBurst, busyMs: 2, gapMicros: 20 };
    const hs = [
      await m.createDomain({ mode: 'worker', name: 'sender', domid: SENDER, module: hv('coalesce'), args: { role: 'sender', mailboxRef: box.grant(SENDER), peer: RECEIVER, ...common } }),
      await m.createDomain({ mode: 'worker', name: 'receiver', domid: RECEIVER, module: hv('coalesce'), args: { role: 'receiver', mailboxRef: box.grant(RECEIVER), peer: SENDER, ...common } }),
    ];
    const port = d0.hypercalls.evtchnAllocUnbound(RECEIVER, SENDER);
    expect(port).toBeGreaterThan(0);
    put(box.mb, CO_PORT, port);
    await orExit(Promise.all(hs.map((h) => h.ready)), hs);
    await within(orExit(until(box.mb, CO_DONE, (v) => v === 1, 25_000, 'the sender to finish'), hs), 26_000, 'coalescing run');
    await expectPoweroff(hs, logs);
    const mb = box.mb;
    const sends = bursts * perBurst;
    expect(mb[SENT]).toBe(sends);
    expect(mb[SEEN]).toBe(sends);
    expect(mb[BACKWARDS]).toBe(0);
    // At least one call per burst (after its last send), far fewer than sends.
    expect(mb[CALLS]).toBeGreaterThanOrEqual(bursts);
    expect(mb[CALLS]).toBeLessThan(sends / 4);
    // Sends did land while the handler was busy (each burst lasts ~2 handler calls), and were not lost.
    expect(mb[DURING]).toBeGreaterThan(0);
    console.log(`coalescing: ${sends} sends, ${mb[CALLS]} handler calls, ${mb[DURING]} with sends arriving meanwhile`);
    box.release();
    expect(m.leaks(base)).toEqual([]);
  }, 30_000);
});

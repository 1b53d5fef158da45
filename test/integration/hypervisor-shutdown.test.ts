/**
 * Machine.shutdownDomain and how worker domains end: a domain that cleans up after ctx.signal
 * leaves nothing behind before the hypervisor reclaims anything; one that ignores it is
 * destroyed after the timeout; one whose main settles powers off (or crashes) even with a timer
 * still pending in its thread. See workers/hv-shutdown.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EVTCHNSTAT_unbound } from '../../src/abi/event-channel.js';
import { GNTST_okay } from '../../src/abi/grant-table.js';
import type { DomainAccounting, GrantMapping, Machine } from '../../src/hypervisor/index.js';
import { DEFERRED, NPAGES, PORT, REFS, STATE } from './workers/hv-shutdown.js';
import { domAccounting, alloc, exitOf, hv, Mailbox, mapOrThrow, newMachine, orExit, put, sleep, until, within, words } from './workers/hv-shared.js';

const S = 91;

let m: Machine | undefined;
afterEach(async () => {
  if (m) await m.close();
  m = undefined;
});

async function waitLog(logs: string[], re: RegExp, ms: number): Promise<string> {
  const end = performance.now() + ms;
  for (;;) {
    const hit = logs.find((l) => re.test(l));
    if (hit) return hit;
    if (performance.now() > end) throw new Error(`no log matching ${re} within ${ms} ms:\n${logs.join('\n')}`);
    await sleep(5);
  }
}

describe('shutting down worker domains', () => {
  it('a domain that cleans up on ctx.signal powers off with nothing left, even before the reclaim', async () => {
    const logs: string[] = [];
    const machine = newMachine(logs);
    m = machine;
    const d0 = machine.dom0.platform!;
    const base = machine.accounting();
    const box = new Mailbox(d0);
    const { mb } = box;
    const gate = new SharedArrayBuffer(4);
    const d0pages = alloc(d0, 2);
    const d0refs = Array.from(d0pages, (g) => d0.grants.grantAccess(S, g, false));
    const h = await machine.createDomain({ mode: 'worker', name: 'tidy', domid: S, module: hv('shutdown'), args: { mode: 'clean', mailboxRef: box.grant(S), dom0Refs: d0refs, gate } });
    const port = d0.events.allocUnbound(S);
    expect(port).toBeGreaterThan(0);
    let sMap: GrantMapping | undefined;
    // When the domain asks (it is ending its grants), dom0 unmaps its pages.
    d0.events.on(port, () => {
      if (Atomics.load(mb, STATE) === 2 && sMap) {
        expect(d0.maps.unmap(sMap)).toBe(GNTST_okay);
        sMap = undefined;
      }
    });
    put(mb, PORT, port);
    await orExit(h.ready, [h]);
    await orExit(until(mb, STATE, (v) => v === 1, 10_000, 'the domain to set up'), [h]);
    sMap = mapOrThrow(d0, S, Array.from({ length: NPAGES }, (_, i) => mb[REFS + i]!));
    expect(Array.from(d0.memory.page(d0pages[0]!)!.subarray(0, 4))).toEqual([0x77, 0x77, 0x77, 0x77]); // its write, in dom0's page
    expect(domAccounting(machine, S)).toMatchObject({ pages: NPAGES, mapsHeld: 3, mapsOfMine: NPAGES, ports: 1, grantEntriesInUse: NPAGES });

    const shutdown = machine.shutdownDomain(S, 10_000);
    const line = await orExit(waitLog(logs, /\bclean \{/, 10_000), [h]);
    // main has cleaned up and waits at the gate: the hypervisor has reclaimed nothing yet.
    const self = JSON.parse(line.slice(line.indexOf('clean ') + 6)) as DomainAccounting;
    const zero = { state: 'running', pages: 0, mapsHeld: 0, mapsOfMine: 0, ports: 0, grantEntriesInUse: 0, grantEntriesPinned: 0 };
    expect(self).toMatchObject(zero);
    expect(domAccounting(machine, S)).toMatchObject(zero);
    expect(mb[DEFERRED]).toBe(NPAGES); // dom0 still mapped them when it ended its grants
    expect(sMap).toBeUndefined();
    // dom0's side: its port is unbound (the domain closed its end); close it and end its grants.
    expect(d0.events.status(port)).toMatchObject({ status: EVTCHNSTAT_unbound, remoteDom: S });
    expect(d0.events.close(port)).toBe(0);
    for (const r of d0refs) expect(d0.grants.tryEndAccess(r)).toBe(true);
    expect(d0.memory.freePages(d0pages)).toBe(0);
    box.release();
    // Nothing differs from the baseline but the (empty) domain itself and its hypervisor frames.
    const now = machine.accounting();
    const sAcct = now.domains.find((d) => d.domid === S)!;
    expect(machine.leaks(base).filter((l) => !/^(freeFrames|xenFrames):/.test(l))).toEqual([`d${S}: new (running)`]);
    expect(base.freeFrames - now.freeFrames).toBe(sAcct.xenFrames);

    put(words(new Uint8Array(gate)), 0, 1);
    const exit = await within(shutdown, 10_000, 'shutdownDomain');
    expect(exit.reason, `${exit.error ?? ''}\n${logs.join('\n')}`).toBe('poweroff');
    expect(machine.leaks(base)).toEqual([]);
  }, 30_000);

  it('a domain that ignores ctx.signal is destroyed after the timeout, and reclaimed', async () => {
    const machine = newMachine();
    m = machine;
    const d0 = machine.dom0.platform!;
    const base = machine.accounting();
    const box = new Mailbox(d0);
    const d0pages = alloc(d0, 2);
    const d0refs = Array.from(d0pages, (g) => d0.grants.grantAccess(S, g, false));
    const h = await machine.createDomain({ mode: 'worker', name: 'stubborn', domid: S, module: hv('shutdown'), args: { mode: 'ignore', mailboxRef: box.grant(S), dom0Refs: d0refs, gate: new SharedArrayBuffer(4) } });
    const port = d0.events.allocUnbound(S);
    put(box.mb, PORT, port);
    await orExit(until(box.mb, STATE, (v) => v === 1, 10_000, 'the domain to set up'), [h]);
    const t0 = performance.now();
    const exit = await within(machine.shutdownDomain(S, 300), 10_000, 'shutdownDomain');
    expect(exit.reason).toBe('destroyed');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(250);
    expect(d0.events.close(port)).toBe(0);
    for (const r of d0refs) expect(d0.grants.tryEndAccess(r)).toBe(true);
    expect(d0.memory.freePages(d0pages)).toBe(0);
    box.release();
    expect(machine.leaks(base)).toEqual([]);
  }, 20_000);

  it.each([
    ['returns', 'linger-return', 'poweroff'],
    ['throws', 'linger-throw', 'crash'],
  ])('a domain whose main %s while a timer is still pending ends (%s)', async (_what, mode, reason) => {
    const logs: string[] = [];
    const machine = newMachine(logs);
    m = machine;
    const base = machine.accounting();
    const h = await machine.createDomain({ mode: 'worker', name: 'lingering', domid: S, module: hv('shutdown'), args: { mode, mailboxRef: 0, dom0Refs: [], gate: new SharedArrayBuffer(4) } });
    await h.ready;
    // main has settled at once; the domain must end (and stop running code) when it does.
    const exit = await exitOf(h, 2_000).catch((err: Error) => {
      throw new Error(`${err.message}: still ${domAccounting(machine, S)?.state ?? 'gone'} (a pending timer keeps the worker thread alive)`);
    });
    expect(exit.reason).toBe(reason);
    expect(machine.leaks(base)).toEqual([]);
  }, 20_000);
});

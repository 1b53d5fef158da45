/**
 * Destroying domains at random moments while they loop on hypercalls in their worker
 * (map/unmap, grant/end, alloc/free, send, alloc_unbound/close), 20 times in a row, while two
 * other worker domains keep working. A victim often dies holding the big lock (its thread is
 * terminated inside a hypercall): Machine.doReclaim must break it, or the next hypercall of
 * anyone hangs. After every destroy the accounting is exactly what it was before the victim was
 * created. See workers/hv-storm.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EVTCHNSTAT_unbound } from '../../src/abi/event-channel.js';
import { GNTST_okay } from '../../src/abi/grant-table.js';
import { D_CPU, type Machine } from '../../src/hypervisor/index.js';
import { lockOwner } from '../../src/hypervisor/lock.js';
import { ERRORS, PONG, PORT, VD0REF, VEVENTS, VPORT, VPROG, VSTATE, STOP } from './workers/hv-storm.js';
import { domAccounting, exitOf, hv, Mailbox, mapOrThrow, newMachine, orExit, put, sleep, until, within } from './workers/hv-shared.js';

const PINGER = 61;
const PONGER = 62;
const VICTIM_BASE = 100;
const VICTIMS = 20;

let m: Machine | undefined;
afterEach(async () => {
  if (m) await m.close();
  m = undefined;
});

describe('destroying domains at random moments of their hypercall loops', () => {
  it(`${VICTIMS} victims in a row: the others keep working, accounting is exact after each`, async () => {
    const logs: string[] = [];
    const machine = newMachine(logs);
    m = machine;
    const d0 = machine.dom0.platform!;
    const base = machine.accounting();
    const box = new Mailbox(d0);
    const { mb } = box;
    const victims = Array.from({ length: VICTIMS }, (_, i) => VICTIM_BASE + i);
    const others = [
      await machine.createDomain({ mode: 'worker', name: 'pinger', domid: PINGER, module: hv('storm'), args: { role: 'pinger', mailboxRef: box.grant(PINGER), peer: PONGER, victims } }),
      await machine.createDomain({ mode: 'worker', name: 'ponger', domid: PONGER, module: hv('storm'), args: { role: 'ponger', mailboxRef: box.grant(PONGER), peer: PINGER } }),
    ];
    const port = d0.hypercalls.evtchnAllocUnbound(PONGER, PINGER);
    expect(port).toBeGreaterThan(0);
    put(mb, PORT, port);
    await orExit(Promise.all(others.map((h) => h.ready)), others);
    await orExit(until(mb, PONG, (v) => v > 5, 10_000, 'the ping-pong to start'), others);

    const delays: number[] = [];
    let diedHoldingLock = 0;
    for (let i = 0; i < VICTIMS; i++) {
      const vid = victims[i]!;
      const iterBase = machine.accounting();
      const zombie = i % 2 === 0; // dom0 maps one of its pages: it dies as a zombie
      const v = await machine.createDomain({
        mode: 'worker', name: `victim${i}`, domid: vid, module: hv('storm'),
        args: { role: 'victim', mailboxRef: box.grant(vid), peer: PINGER, index: i, grantToDom0: zombie },
      });
      const all = [v, ...others];
      await orExit(v.ready, all);
      await orExit(until(mb, VSTATE + i, (x) => x === 1, 10_000, `victim ${i} to start`), all);
      const d0map = zombie ? mapOrThrow(d0, vid, [mb[VD0REF + i]!], true) : undefined;
      await orExit(until(mb, VPROG + i, (x) => x >= 1 + (i % 4), 10_000, `victim ${i} progress`), all);
      const delay = Math.random() * 8;
      delays.push(Math.round(delay * 10) / 10);
      await sleep(delay);

      // Note whether the victim's thread was terminated inside a hypercall (holding the lock).
      const cpu = machine.state.ctl[machine.state.anySlot(vid) + D_CPU]!;
      const w = v.worker!;
      const terminate = w.terminate.bind(w);
      w.terminate = async () => {
        const code = await terminate();
        if (lockOwner(machine.state.ctl) === cpu) diedHoldingLock++;
        return code;
      };
      const pongBefore = mb[PONG]!;
      const exit = await within(machine.destroyDomain(vid), 10_000, `destroying victim ${i}`);
      expect(exit.reason).toBe('destroyed');
      // The pinger's port for it is unbound again; the victim is gone, or a zombie while dom0 maps its page.
      expect(d0.hypercalls.evtchnStatus(mb[VPORT + i]!, PINGER)).toMatchObject({ status: EVTCHNSTAT_unbound, remoteDom: vid });
      if (d0map) {
        expect(domAccounting(machine, vid)).toMatchObject({ state: 'zombie', mapsOfMine: 1, pages: 0, ports: 0, mapsHeld: 0 });
        expect(d0.maps.unmap(d0map)).toBe(GNTST_okay);
      }
      expect(domAccounting(machine, vid)).toBeUndefined();
      box.end(vid);
      // The others keep working, and nothing of the victim is left anywhere.
      await orExit(until(mb, PONG, (x) => x > pongBefore + 2, 10_000, `ping-pong after victim ${i}`), others);
      expect(machine.leaks(iterBase), `victim ${i}`).toEqual([]);
    }

    expect(mb[VEVENTS]).toBeGreaterThan(0);
    put(mb, STOP, 1);
    const exits = await Promise.all(others.map((h) => exitOf(h, 10_000)));
    expect(exits.map((e) => e.reason), `${JSON.stringify(exits)}\n${logs.join('\n')}`).toEqual(['poweroff', 'poweroff']);
    expect(mb[ERRORS]).toBe(0);
    console.log(`destroy storm: delays ${delays.join(' ')} ms; ${diedHoldingLock} victims died holding the lock; ${mb[PONG]} ping-pong rounds meanwhile`);
    box.release();
    expect(machine.leaks(base)).toEqual([]);
  }, 40_000);
});

/**
 * A domain dies (destroyed by the toolstack, or crashing on its own) while it and a peer worker
 * map each other's grants and share an event channel, all busy in their own threads. The peer
 * keeps working; the dead domain stays a zombie (its pages alive) until the peer unmaps them;
 * the peer's port becomes unbound; everything returns to the baseline once the peer ends.
 * See workers/hv-mutual.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EVTCHNSTAT_unbound } from '../../src/abi/event-channel.js';
import { GNTST_bad_domain } from '../../src/abi/grant-table.js';
import { XEN_ERRNO } from '../../src/abi/xen-errno.js';
import type { DomainExit, DomainHandle, Machine } from '../../src/hypervisor/index.js';
import {
  BLOCK_A, BLOCK_B, CTRL, type CrashMode, ERRORS, EVENTS, NPAGES, PORT, PORTSTAT, PROG, REBIND, REMAP, SEEN_DEAD_AT, STATE,
} from './workers/hv-mutual.js';
import { domAccounting, exitOf, hv, Mailbox, newMachine, orExit, put, until, within } from './workers/hv-shared.js';

const A = 41;
const B = 42;

let m: Machine | undefined;
afterEach(async () => {
  if (m) await m.close();
  m = undefined;
});

/**
 * Starts A and B, lets them run, kills A with `kill`, and checks everything the peer sees and
 * the accounting, through to a clean end.
 */
async function scenario(kill: (machine: Machine, a: DomainHandle, mb: Int32Array) => Promise<DomainExit>, crash?: CrashMode): Promise<DomainExit> {
  const logs: string[] = [];
  const machine = newMachine(logs);
  m = machine;
  const d0 = machine.dom0.platform!;
  const base = machine.accounting();
  const box = new Mailbox(d0);
  const { mb } = box;
  const ha = await machine.createDomain({ mode: 'worker', name: 'A', domid: A, module: hv('mutual'), args: { role: 'A', mailboxRef: box.grant(A), peer: B, ...(crash ? { crash } : {}) } });
  const hb = await machine.createDomain({ mode: 'worker', name: 'B', domid: B, module: hv('mutual'), args: { role: 'B', mailboxRef: box.grant(B), peer: A } });
  const port = d0.hypercalls.evtchnAllocUnbound(B, A);
  expect(port).toBeGreaterThan(0);
  put(mb, BLOCK_A + PORT, port);
  await orExit(Promise.all([ha.ready, hb.ready]), [ha, hb]);

  // Both running, mapping each other, events flowing both ways.
  await orExit(until(mb, BLOCK_A + PROG, (v) => v > 500, 10_000, 'A progress'), [ha, hb]);
  await orExit(until(mb, BLOCK_B + PROG, (v) => v > 500, 10_000, 'B progress'), [ha, hb]);
  await orExit(until(mb, BLOCK_B + EVENTS, (v) => v > 0, 10_000, 'events A -> B'), [ha, hb]);
  await orExit(until(mb, BLOCK_A + EVENTS, (v) => v > 0, 10_000, 'events B -> A'), [ha, hb]);
  expect(domAccounting(machine, A)).toMatchObject({ mapsHeld: NPAGES + 1, mapsOfMine: NPAGES, ports: 1 });
  expect(domAccounting(machine, B)).toMatchObject({ mapsHeld: NPAGES + 1, mapsOfMine: NPAGES, ports: 1 });

  const exit = await within(kill(machine, ha, mb), 10_000, 'A to die');
  const bPort = mb[BLOCK_B + PORT]!;

  // A is a zombie: only its grant table is left, and the 4 pages B still maps.
  expect(domAccounting(machine, A)).toMatchObject({ state: 'zombie', pages: 0, ports: 0, mapsHeld: 0, mapsOfMine: NPAGES });
  // A's mappings of B's pages and its port are gone.
  expect(domAccounting(machine, B)).toMatchObject({ state: 'running', mapsHeld: NPAGES + 1, mapsOfMine: 0, grantEntriesPinned: 0, ports: 1 });
  expect(d0.hypercalls.evtchnStatus(bPort, B)).toEqual({ status: EVTCHNSTAT_unbound, remoteDom: A, remotePort: 0, vcpu: 0 });

  // B keeps working, sees its port unbound, cannot map or bind A any more, and its writes to
  // A's (zombie) pages still read back.
  const deadAt = await orExit(until(mb, BLOCK_B + SEEN_DEAD_AT, (v) => v > 0, 10_000, 'B to see A gone'), [hb]);
  await orExit(until(mb, BLOCK_B + PROG, (v) => v > deadAt + 1000, 10_000, 'B progress after A died'), [hb]);
  expect(mb[BLOCK_B + PORTSTAT]).toBe(EVTCHNSTAT_unbound);
  expect(mb[BLOCK_B + REMAP]! - 1000).toBe(GNTST_bad_domain);
  expect(mb[BLOCK_B + REBIND]! - 1000).toBe(-XEN_ERRNO.ESRCH);
  expect(mb[BLOCK_B + ERRORS]).toBe(0);
  expect(domAccounting(machine, A)?.state).toBe('zombie');

  // B unmaps A's pages: the zombie goes.
  put(mb, BLOCK_B + CTRL, 1);
  await orExit(until(mb, BLOCK_B + STATE, (v) => v === 4, 10_000, 'B to unmap A'), [hb]);
  expect(domAccounting(machine, A)).toBeUndefined();
  put(mb, BLOCK_B + CTRL, 2);
  const eb = await exitOf(hb, 10_000);
  expect(eb.reason, `${eb.error ?? ''}\n${logs.join('\n')}`).toBe('poweroff');
  expect(mb[BLOCK_B + STATE]).toBe(5);
  box.release();
  expect(machine.leaks(base)).toEqual([]);
  expect(machine.accounting().lockBreaks).toBe(base.lockBreaks);
  return exit;
}

describe('domain death with live mappings in both directions, across threads', () => {
  it('destroying A mid-run: B keeps working, A is a zombie until B unmaps, B\'s port becomes unbound', async () => {
    const exit = await scenario((machine, a) => machine.destroyDomain(a.domid));
    expect(exit).toEqual({ reason: 'destroyed' });
  }, 30_000);
});

describe('a worker crashing while it holds mappings and ports', () => {
  it.each<[CrashMode, RegExp]>([
    ['exit', /exited with code 3/],
    ['timer-throw', /boom from a timer/],
    ['reject', /main rejected on purpose/],
  ])('crash by %s: reason crash, everything reclaimed, the peer keeps working', async (mode, error) => {
    const exit = await scenario(async (_machine, a, mb) => {
      put(mb, BLOCK_A + CTRL, 1);
      return a.exited;
    }, mode);
    expect(exit.reason).toBe('crash');
    expect(exit.error).toMatch(error);
  }, 30_000);
});

/**
 * A granter rewriting its grant entry in a tight loop from its own thread while another worker
 * maps and unmaps the ref: the mapper never hangs, gets only GNTST_okay or GNTST_general_error,
 * and every mapping is of one of the two frames the granter alternates between.
 * See workers/hv-grant-race.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Machine } from '../../src/hypervisor/index.js';
import {
  BAD_FRAME, BAD_MARKER, FLIPS, G_STATE, LAST_OTHER, MAPS, MAPS_GENERAL, MAPS_OK, MAPS_OTHER, MAX_MAP_US, OK_A, OK_B, OK_RO, OK_RW, UNMAP_BAD,
} from './workers/hv-grant-race.js';
import { exitOf, hv, Mailbox, newMachine, orExit, until } from './workers/hv-shared.js';

const GRANTER = 51;
const MAPPER = 52;

let m: Machine | undefined;
afterEach(async () => {
  if (m) await m.close();
  m = undefined;
});

describe('grant entry rewritten while it is mapped, across threads', () => {
  it('the mapper never hangs, gets okay or general_error, and only ever the two frames', async () => {
    const logs: string[] = [];
    m = newMachine(logs);
    const base = m.accounting();
    const box = new Mailbox(m.dom0.platform!);
    const { mb } = box;
    const ms = 1500;
    const hs = [
      await m.createDomain({ mode: 'worker', name: 'granter', domid: GRANTER, module: hv('grant-race'), args: { role: 'granter', mailboxRef: box.grant(GRANTER), peer: MAPPER, ms } }),
      await m.createDomain({ mode: 'worker', name: 'mapper', domid: MAPPER, module: hv('grant-race'), args: { role: 'mapper', mailboxRef: box.grant(MAPPER), peer: GRANTER, ms } }),
    ];
    await orExit(Promise.all(hs.map((h) => h.ready)), hs);
    await orExit(until(mb, G_STATE, (v) => v === 3, 20_000, 'the race to end'), hs);
    const exits = await Promise.all(hs.map((h) => exitOf(h, 10_000)));
    expect(exits.map((e) => e.reason), `${JSON.stringify(exits)}\n${logs.join('\n')}`).toEqual(['poweroff', 'poweroff']);

    const r = Object.fromEntries(
      Object.entries({ FLIPS, MAPS, MAPS_OK, MAPS_GENERAL, MAPS_OTHER, LAST_OTHER, BAD_FRAME, BAD_MARKER, UNMAP_BAD, OK_A, OK_B, OK_RO, OK_RW, MAX_MAP_US }).map(([k, i]) => [k, mb[i]!]),
    );
    console.log('grant race:', JSON.stringify(r));
    expect(r.MAPS_OTHER, `unexpected status ${r.LAST_OTHER}`).toBe(0);
    expect(r.BAD_FRAME).toBe(0);
    expect(r.BAD_MARKER).toBe(0);
    expect(r.UNMAP_BAD).toBe(0);
    expect(r.MAPS_OK! + r.MAPS_GENERAL!).toBe(r.MAPS);
    // A real race: both outcomes, both frames, both access modes, while the entry kept changing.
    expect(r.FLIPS).toBeGreaterThan(100_000);
    expect(r.MAPS).toBeGreaterThan(1000);
    expect(r.MAPS_OK).toBeGreaterThan(0);
    expect(r.MAPS_GENERAL).toBeGreaterThan(0);
    expect(r.OK_A).toBeGreaterThan(0);
    expect(r.OK_B).toBeGreaterThan(0);
    expect(r.OK_RO).toBeGreaterThan(0);
    expect(r.OK_RW).toBeGreaterThan(0);
    // Bounded: no map hypercall spins on the changing entry (generous for a loaded 2-core box).
    expect(r.MAX_MAP_US).toBeLessThan(250_000);
    box.release();
    expect(m.leaks(base)).toEqual([]);
  }, 30_000);
});

/**
 * displif recovery, every party in its own worker: a backend domain destroyed while a guest
 * flips (the guest's card is unplugged, the program closes it, a new backend domain with the
 * same domid is started and the toolstack re-attaches the devices, the guest gets a new card and
 * shows exact pixels again), and a guest destroyed while it flips (the backend keeps serving
 * another guest and lets go of everything the dead one had). Each test ends with the machine's
 * accounting back to its baseline.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DRM_FORMAT_RGB565, DRM_FORMAT_XRGB8888 } from '../../src/abi/fourcc.js';
import { XEN_ERRNO } from '../../src/abi/xen-errno.js';
import { XenbusState } from '../../src/abi/xenbus-state.js';
import type { DomainContext } from '../../src/hypervisor/index.js';
import { parseVdisplSpec } from '../../src/toolstack/vdispl-spec.js';
import { domainPlatform } from '../../src/xenbus/xen-platform.js';
import { XsError } from '../../src/xenstore/client.js';
import { type DisplayGuest, expectSameBytes, pattern, poll, Rig } from './displif-helpers.js';

let rig: Rig | undefined;

afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

async function startRig(): Promise<Rig> {
  const r = await Rig.start();
  r.dumpLogsOnFailure();
  rig = r;
  return r;
}

/** create + fill + attach: a framebuffer showing pattern(seed) over the whole buffer. */
async function patternFb(g: DisplayGuest, width: number, height: number, format: number, seed: number) {
  const b = await g.client.call('create', { width, height, format });
  await g.client.call('fill', { buf: b.buf, seed });
  const fb = await g.client.call('attach', { buf: b.buf });
  return { ...b, fb, seed, expected: pattern(seed, b.size) };
}

const domainExists = (r: Rig, domid: number): boolean => r.accounting().domains.some((d) => d.domid === domid);

describe('displif recovery (guest and backend in different workers)', () => {
  for (const { beAlloc, closeFirst } of [
    { beAlloc: 0, closeFirst: true },
    { beAlloc: 1, closeFirst: true },
    { beAlloc: 1, closeFirst: false },
  ]) {
    const when = closeFirst ? 'closes the card, then a new backend' : 'keeps the unplugged card (front in Reconfiguring) until a new backend';
    it(`be-alloc=${beAlloc}: backend domain destroyed mid-flip: the flip loop and later calls reject with ENODEV, the card is unplugged; the program ${when} with the same domid is started and re-attached; front.waitCard gives a new card whose flips show exact pixels; nothing of either backend or the guest is left (accounting back to the baseline)`, async () => {
      const r = await startRig();
      // Warm-up with a backend, then without it: the baseline is dom0 alone, in steady state.
      await r.startBackend();
      await r.warmUp([`be-alloc=${beAlloc},connectors=w:80x40`]);
      await r.killBackend();
      const base = r.accounting();
      expect(base.domains.map((d) => d.domid)).toEqual([0]);

      const be = await r.startBackend();
      const spec = `be-alloc=${beAlloc},connectors=r:80x40;s:17x5`;
      const g = await r.addGuest('flipper', spec);
      const card = await g.client.call('open', {});
      expect(card.connects).toBe(1);
      const a = await patternFb(g, 80, 40, DRM_FORMAT_XRGB8888, 1);
      const b = await patternFb(g, 80, 40, DRM_FORMAT_XRGB8888, 2);
      const s = await patternFb(g, 17, 5, DRM_FORMAT_RGB565, 3);
      await g.client.call('setMode', { conn: 0, fb: a.fb });
      await g.client.call('setMode', { conn: 1, fb: s.fb });
      await g.client.call('flip', { conn: 0, fb: a.fb });
      expectSameBytes((await r.snapshot(g, 0))?.data, a.expected, 'first backend');
      const unplugged = g.client.call('waitUnplug', {});
      await g.client.call('startLoop', { conn: 0, fbs: [a.fb, b.fb] });
      const before = await g.client.call('loopProgress', { flips: 20 });
      expect(before).toBeGreaterThanOrEqual(20);

      await r.killBackend();

      const loop = await g.client.call('loopResult', {});
      expect(loop.flips).toBeGreaterThanOrEqual(before);
      expect(loop.error).toMatchObject({ name: 'DisplayError', code: 'ENODEV', errno: -XEN_ERRNO.ENODEV });
      expect((await unplugged).errno).toBe(-XEN_ERRNO.ENODEV);
      expect(await g.client.call('state', {})).toMatchObject({ unplugged: true, closed: false });
      // The front switches to Reconfiguring right after unplugging the card (it is still held).
      expect(await poll(async () => (await g.client.call('state', {})).frontState === XenbusState.Reconfiguring)).toBe(true);
      for (const e of [
        await g.client.error('flip', { conn: 0, fb: a.fb }),
        await g.client.error('setMode', { conn: 1, fb: s.fb }),
        await g.client.error('create', { width: 8, height: 8, format: DRM_FORMAT_XRGB8888 }),
        await g.client.error('edid', { conn: 0 }),
      ]) {
        expect(e.code, e.message).toBe('ENODEV');
      }

      const restart = async (): Promise<void> => {
        await r.startBackend(be.domid);
        expect(await r.ts.reattachBackends(be.domid)).toBe(1);
      };
      if (closeFirst) {
        await g.client.call('closeCard', {});
        // The old backend is completely gone (no zombie kept alive by the guest's mappings).
        expect(await poll(() => !domainExists(r, be.domid))).toBe(true);
        await restart();
      } else {
        // The old backend's domid is free even while the program holds the unplugged card.
        expect(await poll(() => !domainExists(r, be.domid))).toBe(true);
        await restart();
        expect(await g.client.call('state', {})).toMatchObject({ unplugged: true, frontState: XenbusState.Reconfiguring });
        await g.client.call('closeCard', {});
      }
      const card2 = await g.client.call('waitCard', {});
      expect(card2.connects).toBe(2);
      expect(card2.connectors.map((c) => `${c.width}x${c.height}`)).toEqual(['80x40', '17x5']);
      const c = await patternFb(g, 80, 40, DRM_FORMAT_XRGB8888, 11);
      const d = await patternFb(g, 80, 40, DRM_FORMAT_XRGB8888, 12);
      await g.client.call('setMode', { conn: 0, fb: c.fb });
      await g.client.call('flip', { conn: 0, fb: c.fb });
      expectSameBytes((await r.snapshot(g, 0))?.data, c.expected, 'new backend, first flip');
      const flips = await g.client.call('flips', { conn: 0, fbs: [c.fb, d.fb], n: 50, window: 4 });
      expect(flips.order).toEqual(Array.from({ length: 50 }, (_, k) => k));
      expectSameBytes((await r.snapshot(g, 0))?.data, d.expected, 'new backend, after 50 flips');
      const fe = await r.frontend(g);
      expect(fe).toMatchObject({ binds: 1, usage: { buffers: 2, framebuffers: 2 } });

      await g.client.call('closeCard', {});
      await g.client.call('closeFront', {});
      await r.exitGuest(g);
      await r.killBackend();
      expect(await r.leaksAfter(base)).toEqual([]);
    });
  }

  it('reattachBackends(domid) after a backend domain restart restores the frontend half the new backend needs: be-alloc, <i>/resolution, <i>/unique-id and read access to the frontend\'s nodes', async () => {
    const r = await startRig();
    const ts = r.ts;
    const be = await ts.createDomain({ mode: 'local', name: 'backend' });
    const g = await ts.createDomain({ mode: 'local', name: 'guest', vdispl: [parseVdisplSpec(`backend=${be.domid},be-alloc=1,connectors=a:64x32;b:33x17`)] });
    const fe = g.devices[0]!.frontend;
    const frontendHalf = async () => ({
      'be-alloc': await ts.xs.tryRead(`${fe}/be-alloc`),
      '0/resolution': await ts.xs.tryRead(`${fe}/0/resolution`),
      '1/unique-id': await ts.xs.tryRead(`${fe}/1/unique-id`),
      perms: await ts.xs.getPerms(fe),
      statePerms: await ts.xs.getPerms(`${fe}/state`),
    });
    const before = await frontendHalf();
    expect(before).toMatchObject({ 'be-alloc': '1', '0/resolution': '64x32', '1/unique-id': 'b' });
    expect(before.perms).toContainEqual({ domid: be.domid, access: 'r' });

    await ts.destroyDomain(be.domid);
    let go: () => void = () => undefined;
    const reattached = new Promise<void>((resolve) => (go = resolve));
    const be2 = await ts.createDomain({
      mode: 'local',
      name: 'backend',
      domid: be.domid,
      // What displ_be does first for a device it finds: read the frontend's state.
      main: async (ctx: DomainContext) => {
        const p = domainPlatform(ctx);
        await reattached;
        try {
          return await p.xenstore.tryRead(`${fe}/state`);
        } catch (e) {
          return e instanceof XsError ? e.code : String(e);
        } finally {
          p.xenstore.close();
        }
      },
    });
    expect(await ts.reattachBackends(be.domid)).toBe(1);
    const after = await frontendHalf();
    go();
    const exit = await be2.handle.exited;
    expect(exit.value, 'the new backend reading the frontend\'s state').toBe('1');
    expect(after).toEqual(before);
  });

  for (const beAlloc of [0, 1]) {
    it(`be-alloc=${beAlloc} guest destroyed mid-stream: the backend stays up, another guest (other allocation mode) keeps flipping with exact pixels, the backend drops the dead guest's device and every buffer, the dead domain is fully reclaimed; accounting back to the baseline`, async () => {
      const r = await startRig();
      await r.startBackend();
      await r.warmUp(['be-alloc=0,connectors=w:64x32', 'be-alloc=1,connectors=w:64x32']);
      const base = r.accounting();

      const victim = await r.addGuest('victim', `be-alloc=${beAlloc},connectors=v:64x32;v2:33x17`);
      const survivor = await r.addGuest('survivor', `be-alloc=${1 - beAlloc},connectors=s:48x24`);
      await Promise.all([victim.client.call('open', {}), survivor.client.call('open', {})]);
      const va = await patternFb(victim, 64, 32, DRM_FORMAT_XRGB8888, 21);
      const vb = await patternFb(victim, 64, 32, DRM_FORMAT_XRGB8888, 22);
      const vc = await patternFb(victim, 33, 17, DRM_FORMAT_RGB565, 23);
      await patternFb(victim, 33, 17, DRM_FORMAT_RGB565, 24); // attached, never shown
      await victim.client.call('setMode', { conn: 0, fb: va.fb });
      await victim.client.call('setMode', { conn: 1, fb: vc.fb });
      const sa = await patternFb(survivor, 48, 24, DRM_FORMAT_XRGB8888, 31);
      const sb = await patternFb(survivor, 48, 24, DRM_FORMAT_XRGB8888, 32);
      await survivor.client.call('setMode', { conn: 0, fb: sa.fb });

      await victim.client.call('startLoop', { conn: 0, fbs: [va.fb, vb.fb] });
      await survivor.client.call('startLoop', { conn: 0, fbs: [sa.fb, sb.fb] });
      await Promise.all([victim.client.call('loopProgress', { flips: 20 }), survivor.client.call('loopProgress', { flips: 20 })]);
      expect((await r.frontend(victim))?.usage).toMatchObject({ buffers: 4, framebuffers: 4 });

      const exit = await r.destroyGuest(victim);
      expect(exit.reason).toBe('destroyed');

      // The survivor keeps flipping after the victim is gone...
      const n = await survivor.client.call('loopProgress', { flips: 50 });
      expect(n).toBeGreaterThanOrEqual(70);
      // ...and the backend let go of the victim's device, and with it every buffer it held.
      expect(await poll(async () => (await r.frontend(victim)) === undefined)).toBe(true);
      // A victim whose grants the backend mapped (be-alloc=0) stays a zombie until they are unmapped.
      expect(await poll(() => !domainExists(r, victim.domid))).toBe(true);

      const loop = await survivor.client.call('stopLoop', {});
      expect(loop.error).toBeUndefined();
      const last = (loop.flips - 1) % 2 === 0 ? sa : sb;
      expectSameBytes((await r.snapshot(survivor, 0))?.data, last.expected, 'the survivor after the victim died');
      const fe = await r.frontend(survivor);
      expect(fe).toMatchObject({ state: XenbusState.Connected, usage: { buffers: 2, framebuffers: 2 } });
      expect(fe?.connectors[0]?.errors).toBe(0);
      expect((await r.status()).frontends.map((f) => f.key)).toEqual([`${survivor.domid}/0`]);

      await survivor.client.call('closeCard', {});
      await survivor.client.call('closeFront', {});
      await r.exitGuest(survivor);
      expect(await r.leaksAfter(base)).toEqual([]);
    });
  }
});

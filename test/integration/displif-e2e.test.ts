/**
 * displif end to end, every party in its own worker: the display backend domain
 * (src/back/backend-domain.ts with the in-memory presenter) and display guests
 * (workers/display-guest.ts: XenFront + Card) talk only through the emulated hypervisor (grants,
 * event channels) and XenStore. What a guest draws is compared byte for byte with what the
 * backend's presenter shows. After every test the machine's accounting is back to the baseline
 * taken at its start (after a warm-up in beforeAll, so lazily grown tables are already there).
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DRM_FORMAT_RGB565, DRM_FORMAT_RGB888, DRM_FORMAT_XRGB8888, DRM_FORMAT_YUYV, pixelFormatByFourcc } from '../../src/abi/fourcc.js';
import { XEN_ERRNO } from '../../src/abi/xen-errno.js';
import { parseEdidPreferredMode } from '../../src/back/edid.js';
import type { MachineAccounting } from '../../src/hypervisor/accounting.js';
import { type DisplayGuest, expectSameBytes, linuxPitch, pattern, poll, Rig, XEN_FRONT_FORMATS } from './displif-helpers.js';

let rig: Rig;
let base: MachineAccounting;

beforeAll(async () => {
  rig = await Rig.start();
  await rig.startBackend();
  await rig.warmUp(['be-alloc=0,connectors=w:64x64', 'be-alloc=1,connectors=w:64x64']);
}, 60_000);

afterAll(async () => {
  await rig.close();
});

beforeEach(() => {
  rig.dumpLogsOnFailure();
  base = rig.accounting();
});

afterEach(async () => {
  await rig.destroyGuests();
});

/** Shuts the guest's display down as a program would, powers it off, and checks the baseline. */
async function finish(...guests: DisplayGuest[]): Promise<void> {
  for (const g of guests) {
    await g.client.call('closeCard', {});
    await g.client.call('closeFront', {});
    await rig.exitGuest(g);
  }
  expect(await rig.leaksAfter(base)).toEqual([]);
}

const fmt = (fourcc: number) => pixelFormatByFourcc(fourcc)!;

/** create + fill + attach: a framebuffer showing pattern(seed) over the whole buffer. */
async function patternFb(g: DisplayGuest, width: number, height: number, format: number, seed: number) {
  const b = await g.client.call('create', { width, height, format });
  await g.client.call('fill', { buf: b.buf, seed });
  const fb = await g.client.call('attach', { buf: b.buf });
  return { ...b, fb, seed, expected: pattern(seed, b.size) };
}

describe('displif end to end (guest and backend in different workers)', () => {
  for (const beAlloc of [0, 1]) {
    it(`be-alloc=${beAlloc}: all 9 Linux xen-front formats at 33x17, 1x1 and 641x3 show the guest's bytes exactly at the backend; pitch = ceil(w*bpp/8); accounting back to baseline`, async () => {
      const sizes = [
        [33, 17],
        [1, 1],
        [641, 3],
      ];
      const g = await rig.addGuest(`formats-${beAlloc}`, `be-alloc=${beAlloc},connectors=${sizes.map(([w, h], i) => `c${i}:${w}x${h}`).join(';')}`);
      const card = await g.client.call('open', {});
      expect(card.beAlloc).toBe(beAlloc === 1);
      expect(card.connectors.map((c) => [c.width, c.height])).toEqual(sizes);
      expect(card.connectors[0]!.formats).toEqual(XEN_FRONT_FORMATS.map((f) => f.fourcc));
      expect(XEN_FRONT_FORMATS.map((f) => f.name)).toEqual(['RGB565', 'RGB888', 'XRGB8888', 'ARGB8888', 'XRGB4444', 'ARGB4444', 'XRGB1555', 'ARGB1555', 'YUYV']);
      let seed = 1000 * beAlloc;
      for (const f of XEN_FRONT_FORMATS) {
        for (const c of card.connectors) {
          const b = await patternFb(g, c.width, c.height, f.fourcc, ++seed);
          expect(b.pitch, `${f.name} ${c.width}x${c.height} pitch`).toBe(linuxPitch(c.width, f));
          expect(b.size).toBe(b.pitch * c.height);
          await g.client.call('setMode', { conn: c.index, fb: b.fb });
          await g.client.call('flip', { conn: c.index, fb: b.fb });
          const snap = await rig.snapshot(g, c.index);
          expect(snap, `${f.name} ${c.width}x${c.height}`).toMatchObject({ width: c.width, height: c.height, fourcc: f.fourcc, pitch: b.pitch });
          expectSameBytes(snap?.data, b.expected, `${f.name} ${c.width}x${c.height}`);
          // Detached and destroyed while shown: the backend keeps it until the next mode.
          await g.client.call('detach', { fb: b.fb });
          await g.client.call('destroy', { buf: b.buf });
        }
      }
      const fe = await rig.frontend(g);
      expect(fe?.usage).toEqual({ buffers: 3, framebuffers: 3, bytes: expect.any(Number) as number });
      for (const c of card.connectors) await g.client.call('disable', { conn: c.index });
      expect((await rig.frontend(g))?.usage).toEqual({ buffers: 0, framebuffers: 0, bytes: 0 });
      await finish(g);
    });
  }

  it("connectors beyond Linux's limits: 4100x16, 8x2100 and 3x3 on one device, and a 6-connector device: each connector shows its own frame exactly; accounting back to baseline", async () => {
    const wide = await rig.addGuest('wide', 'be-alloc=1,connectors=wide:4100x16;tall:8x2100;small:3x3');
    const six = await rig.addGuest('six', `be-alloc=0,connectors=${Array.from({ length: 6 }, (_, i) => `k${i}:${16 + i}x${8 + i}`).join(';')}`);
    const [cw, c6] = await Promise.all([wide.client.call('open', {}), six.client.call('open', {})]);
    expect(cw.connectors.map((c) => `${c.width}x${c.height}`)).toEqual(['4100x16', '8x2100', '3x3']);
    expect(c6.connectors).toHaveLength(6);
    const formats = [DRM_FORMAT_XRGB8888, DRM_FORMAT_RGB565, DRM_FORMAT_RGB888, DRM_FORMAT_YUYV];
    const shown: { g: DisplayGuest; index: number; expected: Uint8Array; fourcc: number }[] = [];
    let seed = 5000;
    for (const [g, card] of [
      [wide, cw],
      [six, c6],
    ] as const) {
      for (const c of card.connectors) {
        const fourcc = formats[c.index % formats.length]!;
        const b = await patternFb(g, c.width, c.height, fourcc, ++seed);
        await g.client.call('setMode', { conn: c.index, fb: b.fb });
        await g.client.call('flip', { conn: c.index, fb: b.fb });
        shown.push({ g, index: c.index, expected: b.expected, fourcc });
      }
    }
    // Checked after every connector of both devices was set: nothing showed another's frame.
    for (const s of shown) {
      const snap = await rig.snapshot(s.g, s.index);
      expect(snap?.fourcc).toBe(s.fourcc);
      expectSameBytes(snap?.data, s.expected, `${s.g.name} connector ${s.index}`);
    }
    const st = await rig.frontend(six);
    expect(st?.connectors.map((c) => c.configured)).toEqual([true, true, true, true, true, true]);
    await finish(wide, six);
  });

  it('four guests (two of each allocation mode) flipping at once against one backend: each connector shows its own guest\'s last frame exactly; accounting back to baseline', async () => {
    const guests = await Promise.all([0, 1, 2, 3].map((i) => rig.addGuest(`g${i}`, `be-alloc=${i % 2},connectors=a:64x48;b:33x17`)));
    const results = await Promise.all(
      guests.map(async (g, gi) => {
        const card = await g.client.call('open', {});
        const out: { index: number; expected: Uint8Array }[] = [];
        for (const c of card.connectors) {
          const fbA = await patternFb(g, c.width, c.height, DRM_FORMAT_XRGB8888, 100 * gi + 10 * c.index + 1);
          const fbB = await patternFb(g, c.width, c.height, DRM_FORMAT_XRGB8888, 100 * gi + 10 * c.index + 2);
          await g.client.call('setMode', { conn: c.index, fb: fbA.fb });
          const r = await g.client.call('flips', { conn: c.index, fbs: [fbA.fb, fbB.fb], n: 40, window: 4 });
          expect(r.order).toEqual(Array.from({ length: 40 }, (_, k) => k));
          // Flip 39 (odd) showed B.
          out.push({ index: c.index, expected: fbB.expected });
        }
        return out;
      }),
    );
    for (const [gi, out] of results.entries()) {
      for (const o of out) expectSameBytes((await rig.snapshot(guests[gi]!, o.index))?.data, o.expected, `guest ${gi} connector ${o.index}`);
    }
    const st = await rig.status();
    for (const g of guests) {
      const fe = st.frontends.find((f) => f.key === `${g.domid}/0`);
      expect(fe?.connectors.map((c) => c.flips)).toEqual([40, 40]);
    }
    await finish(...guests);
  });

  for (const beAlloc of [0, 1]) {
    it(`be-alloc=${beAlloc}: zero-copy: after a flip completed, plain writes by the guest (no request: the backend's request count is unchanged) are in the backend's next snapshot; accounting back to baseline`, async () => {
      const g = await rig.addGuest(`zc-${beAlloc}`, `be-alloc=${beAlloc},connectors=z:641x9`);
      await g.client.call('open', {});
      const b = await patternFb(g, 641, 9, DRM_FORMAT_RGB888, 77 + beAlloc);
      await g.client.call('setMode', { conn: 0, fb: b.fb });
      await g.client.call('flip', { conn: 0, fb: b.fb });
      expectSameBytes((await rig.snapshot(g, 0))?.data, b.expected, 'after the flip');
      const requests = (await rig.frontend(g))!.connectors[0]!.requests;
      const expected = b.expected.slice();
      // First byte, across the first page boundary, a whole middle row, the very last byte.
      const writes: [number, Uint8Array][] = [
        [0, Uint8Array.of(0xde, 0xad)],
        [4090, pattern(9, 20)],
        [b.pitch * 4, pattern(10, b.pitch)],
        [b.size - 1, Uint8Array.of(0x5a)],
      ];
      for (const [offset, data] of writes) {
        await g.client.call('write', { buf: b.buf, offset, data });
        expected.set(data, offset);
        expectSameBytes((await rig.snapshot(g, 0))?.data, expected, `after writing ${data.length} bytes at ${offset}`);
      }
      expectSameBytes(await g.client.call('read', { buf: b.buf, offset: 0, length: b.size }), expected, 'the guest reads back');
      expect((await rig.frontend(g))!.connectors[0]!.requests).toBe(requests);
      await finish(g);
    });
  }

  it('500 page flips alternating two framebuffers (8 in flight, both allocation modes at once): every pageFlip resolves, frame-done events arrive in flip order, the backend counts 500 flips and 500 events; accounting back to baseline', async () => {
    const guests = await Promise.all([0, 1].map((m) => rig.addGuest(`flips-${m}`, `be-alloc=${m},connectors=f:97x31`)));
    await Promise.all(
      guests.map(async (g, m) => {
        await g.client.call('open', {});
        const a = await patternFb(g, 97, 31, DRM_FORMAT_XRGB8888, 600 + 2 * m);
        const b = await patternFb(g, 97, 31, DRM_FORMAT_XRGB8888, 601 + 2 * m);
        await g.client.call('setMode', { conn: 0, fb: a.fb });
        const r = await g.client.call('flips', { conn: 0, fbs: [a.fb, b.fb], n: 500, window: 8 }, 60_000);
        expect(r.order).toEqual(Array.from({ length: 500 }, (_, k) => k));
        expect(r.frameDone).toBe(500);
        expect(r.flipTimeouts).toBe(0);
        const c = (await rig.frontend(g))!.connectors[0]!;
        expect(c).toMatchObject({ flips: 500, events: 500, waitingEvents: 0, errors: 0, presented: 500 });
        // The last flip (499) showed b.
        expectSameBytes((await rig.snapshot(g, 0))?.data, b.expected, 'after 500 flips');
      }),
    );
    await finish(...guests);
  });

  it('GET_EDID: parseEdidPreferredMode(card.getEdid(c)) equals each connector\'s size (1x1, 641x3, 1920x1080, 4100x16, 8x2100, 8192x8192); accounting back to baseline', async () => {
    const sizes = ['1x1', '641x3', '1920x1080', '4100x16', '8x2100', '8192x8192'];
    const g = await rig.addGuest('edid', `be-alloc=1,connectors=${sizes.map((s, i) => `e${i}:${s}`).join(';')}`);
    const card = await g.client.call('open', {});
    for (const c of card.connectors) {
      const edid = await g.client.call('edid', { conn: c.index });
      expect(edid.length % 128).toBe(0);
      expect(parseEdidPreferredMode(edid), `connector ${c.width}x${c.height}`).toEqual({ width: c.width, height: c.height });
    }
    await finish(g);
  });

  it('dma-buf: exportBuffer -> importBuffer on the same card (data_ofs 0 and 128), flipping the imported framebuffer shows the exported buffer\'s pixels, and writes through the exporter stay visible; accounting back to baseline', async () => {
    const g = await rig.addGuest('prime', 'be-alloc=0,connectors=p0:50x20;p1:50x20');
    await g.client.call('open', {});
    const f = fmt(DRM_FORMAT_XRGB8888);
    const src = await g.client.call('create', { width: 50, height: 20, format: DRM_FORMAT_XRGB8888 });
    await g.client.call('fill', { buf: src.buf, seed: 4242 });
    const pat = pattern(4242, src.size);
    const exp = await g.client.call('export', { buf: src.buf });
    expect(exp).toMatchObject({ size: src.pages * 4096, foreign: false });
    const imp0 = await g.client.call('import', { dmabuf: exp.dmabuf });
    const imp1 = await g.client.call('import', { dmabuf: exp.dmabuf, offset: 128 });
    expect(imp0.size).toBe(src.pages * 4096);
    const fb0 = await g.client.call('attach', { buf: imp0.buf, format: DRM_FORMAT_XRGB8888, width: 50, height: 20 });
    // From byte 128 on: 19 rows fit before the end of the exporter's pixels.
    const fb1 = await g.client.call('attach', { buf: imp1.buf, format: DRM_FORMAT_XRGB8888, width: 50, height: 19 });
    await g.client.call('setMode', { conn: 0, fb: fb0 });
    await g.client.call('flip', { conn: 0, fb: fb0 });
    await g.client.call('setMode', { conn: 1, fb: fb1 });
    await g.client.call('flip', { conn: 1, fb: fb1 });
    const pitch = linuxPitch(50, f);
    expectSameBytes((await rig.snapshot(g, 0))?.data, pat, 'imported buffer, offset 0');
    expectSameBytes((await rig.snapshot(g, 1))?.data, pat.slice(128, 128 + pitch * 19), 'imported buffer, offset 128');
    // The three buffers are the same pages.
    const patch = pattern(7, 300);
    await g.client.call('write', { buf: src.buf, offset: 1000, data: patch });
    pat.set(patch, 1000);
    expectSameBytes((await rig.snapshot(g, 0))?.data, pat, 'written through the exporter');
    expectSameBytes(await g.client.call('read', { buf: imp0.buf, offset: 1000, length: 300 }), patch, 'read through the importer');
    // The display buffers hold the dma-buf: the test's reference is not the last.
    expect(await g.client.call('putDmabuf', { dmabuf: exp.dmabuf })).toEqual({ released: false });
    await g.client.call('disable', { conn: 0 });
    await g.client.call('disable', { conn: 1 });
    for (const fb of [fb0, fb1]) await g.client.call('detach', { fb });
    for (const buf of [imp0.buf, imp1.buf, src.buf]) await g.client.call('destroy', { buf });
    expect((await rig.frontend(g))?.usage).toEqual({ buffers: 0, framebuffers: 0, bytes: 0 });
    await finish(g);
  });

  it('dma-buf: a backend-allocated buffer exports as foreign memory and importing it is refused with EINVAL; accounting back to baseline', async () => {
    const g = await rig.addGuest('prime-be', 'be-alloc=1,connectors=p:16x16');
    await g.client.call('open', {});
    const src = await g.client.call('create', { width: 16, height: 16, format: DRM_FORMAT_XRGB8888 });
    const exp = await g.client.call('export', { buf: src.buf });
    expect(exp.foreign).toBe(true);
    const e = await g.client.error('import', { dmabuf: exp.dmabuf });
    expect(e.code).toBe('EINVAL');
    expect(await g.client.call('putDmabuf', { dmabuf: exp.dmabuf })).toEqual({ released: true });
    await finish(g);
  });

  for (const beAlloc of [0, 1]) {
    it(`be-alloc=${beAlloc}: disable() blanks the connector (no snapshot, PG_FLIP refused with EINVAL), then setMode again shows the new frame exactly; accounting back to baseline`, async () => {
      const g = await rig.addGuest(`disable-${beAlloc}`, `be-alloc=${beAlloc},connectors=d:45x11`);
      await g.client.call('open', {});
      const a = await patternFb(g, 45, 11, DRM_FORMAT_RGB565, 31);
      const b = await patternFb(g, 45, 11, DRM_FORMAT_RGB565, 32);
      await g.client.call('setMode', { conn: 0, fb: a.fb });
      await g.client.call('flip', { conn: 0, fb: a.fb });
      expectSameBytes((await rig.snapshot(g, 0))?.data, a.expected, 'before disable');
      await g.client.call('disable', { conn: 0 });
      expect(await rig.snapshot(g, 0)).toBeUndefined();
      expect((await rig.frontend(g))!.connectors[0]!.configured).toBe(false);
      const e = await g.client.error('flip', { conn: 0, fb: a.fb });
      expect(e.errno).toBe(-XEN_ERRNO.EINVAL);
      await g.client.call('setMode', { conn: 0, fb: b.fb });
      expectSameBytes((await rig.snapshot(g, 0))?.data, b.expected, 'after setMode again');
      await g.client.call('flip', { conn: 0, fb: a.fb });
      expectSameBytes((await rig.snapshot(g, 0))?.data, a.expected, 'after flipping back');
      await finish(g);
    });
  }

  for (const beAlloc of [0, 1]) {
    it(`be-alloc=${beAlloc}: a guest that closes its card (3 buffers, 3 framebuffers, one shown) and its front leaves the backend with no buffers (usage 0, then the device unbound); accounting back to baseline`, async () => {
      const g = await rig.addGuest(`close-${beAlloc}`, `be-alloc=${beAlloc},connectors=x:40x30;y:20x10`);
      await g.client.call('open', {});
      const a = await patternFb(g, 40, 30, DRM_FORMAT_XRGB8888, 1);
      const b = await patternFb(g, 40, 30, DRM_FORMAT_XRGB8888, 2);
      await patternFb(g, 20, 10, DRM_FORMAT_RGB565, 3);
      await g.client.call('setMode', { conn: 0, fb: a.fb });
      await g.client.call('flip', { conn: 0, fb: b.fb });
      expect((await rig.frontend(g))?.usage).toMatchObject({ buffers: 3, framebuffers: 3 });
      await g.client.call('closeCard', {});
      const fe = await rig.frontend(g);
      expect(fe?.usage).toEqual({ buffers: 0, framebuffers: 0, bytes: 0 });
      expect(fe?.connectors.map((c) => c.configured)).toEqual([false, false]);
      await g.client.call('closeFront', {});
      const after = await poll(async () => {
        const f = await rig.frontend(g);
        return f === undefined || f.usage === undefined ? true : undefined;
      });
      expect(after).toBe(true);
      await rig.exitGuest(g);
      expect(await rig.leaksAfter(base)).toEqual([]);
    });
  }
});

/**
 * card.close() while a request is in flight (src/front/card.ts): a buffer or framebuffer is
 * registered before its request is sent, and close() issues every disable, FB_DETACH and
 * DBUF_DESTROY at once, so an object still being created is destroyed through the usual path
 * (its destroy queued behind its create on the same ring) and its creator rejects with ENODEV.
 * End to end with the display backend domain and the guest in their own workers (helpers as in
 * displif-e2e.test.ts). The guest command `closeDuring` starts the operation(s) without awaiting
 * them (each request is on the ring before it returns), calls card.close() in the same tick, then
 * awaits both and reports each operation's error and whether the card counted as closed at once
 * (`closedAtOnce`: never, since close() has those destroys to await).
 *
 * The backend's state is observed through its status (`rig.frontend(g).usage`: the buffers,
 * framebuffers and bytes it still holds for the device, and per-connector request / error
 * counts); at the end of every test the guest closes its card and its frontend, powers off, and
 * the machine's accounting (grants, mappings, pages, ports, ...) must be back to the baseline
 * taken before the test (after a warm-up in beforeAll), as in the e2e suite.
 *
 * Sequences tried, each in both allocation modes where it applies:
 * - createDumb (3 in flight) on an empty card: each rejects with -ENODEV; the backend counts 6
 *   requests (3 creates, 3 destroys; backend-allocated, a create whose directory close() already
 *   let go fails and its destroy finds nothing) and holds no buffer; the next card (waitCard)
 *   shows a frame exactly.
 * - importBuffer (2 in flight) of a dma-buf exported by another vdispl device of the guest
 *   (frontend-allocated: a be-alloc buffer exports foreign memory, refused before any request):
 *   rejects with -ENODEV; the backend holds no buffer for the importing device; the imports'
 *   dma-buf references are dropped once the backend unmapped (put() then releases it); the
 *   exporter's pixels are untouched.
 * - addFramebuffer on a card holding its buffer, createDumb on a card already holding a buffer,
 *   importBuffer of a buffer exported by the same card: the same. (Before close() marked objects
 *   gone at once, these resolved with objects the backend kept until the frontend went away.)
 * - addFramebuffer of another card's buffer (cookies are per device and collide): EINVAL, no
 *   request sent.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DRM_FORMAT_XRGB8888 } from '../../src/abi/fourcc.js';
import { XEN_ERRNO } from '../../src/abi/xen-errno.js';
import type { MachineAccounting } from '../../src/hypervisor/accounting.js';
import { type DisplayGuest, expectSameBytes, pattern, poll, Rig } from './displif-helpers.js';
import type { ErrorView } from './workers/display-guest.js';

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
  // After a failed test: a dying guest stays until the backend has unmapped what it held; the
  // next test's baseline must not include it.
  await poll(() => rig.accounting().domains.every((d) => base.domains.some((b) => b.domid === d.domid)), 10_000);
  await rig.ts.settled();
});

const W = 32;
const H = 16;
const XRGB = DRM_FORMAT_XRGB8888;

const usage = async (g: DisplayGuest, devid = 0) => (await rig.frontend(g, devid))?.usage;

/** The guest closes its (current) card and its frontend, powers off; accounting back to baseline. */
async function finish(g: DisplayGuest): Promise<void> {
  await g.client.call('closeCard', {});
  await g.client.call('closeFront', {});
  await rig.exitGuest(g);
  expect(await rig.leaksAfter(base)).toEqual([]);
}

function expectClosedError(e: ErrorView | undefined, what: string): void {
  expect(e, what).toMatchObject({ name: 'DisplayError', errno: -XEN_ERRNO.ENODEV, code: 'ENODEV' });
  expect(e?.message, what).toContain('the card was closed');
}

/** The card that replaced the closed one shows a frame exactly (the device is still usable). */
async function nextCardWorks(g: DisplayGuest, seed: number): Promise<void> {
  const card = await g.client.call('waitCard', {});
  expect(card.connectors[0]).toMatchObject({ width: W, height: H });
  const b = await g.client.call('create', { width: W, height: H, format: XRGB });
  await g.client.call('fill', { buf: b.buf, seed });
  const fb = await g.client.call('attach', { buf: b.buf });
  await g.client.call('setMode', { conn: 0, fb });
  await g.client.call('flip', { conn: 0, fb });
  expectSameBytes((await rig.snapshot(g, 0))?.data, pattern(seed, b.size), 'a frame on the next card');
}

describe('card.close() while a request is in flight', () => {
  for (const beAlloc of [0, 1]) {
    it(`be-alloc=${beAlloc}: 3 createDumb in flight on an empty card, close() in the same tick: each rejects with -ENODEV after undoing its buffer (DBUF_DESTROY), the backend holds no buffer, the next card works; accounting back to baseline`, async () => {
      const g = await rig.addGuest(`create-${beAlloc}`, `be-alloc=${beAlloc},connectors=c:${W}x${H}`);
      expect((await g.client.call('open', {})).beAlloc).toBe(beAlloc === 1);
      const r = await g.client.call('closeDuring', { what: 'create', n: 3, width: W, height: H, format: XRGB });
      expect(r.closedAtOnce).toBe(false); // it destroys the buffers being created, like any other
      expect(r.closeError).toBeUndefined();
      expect(r.values).toEqual([undefined, undefined, undefined]);
      r.errors.forEach((e, i) => expectClosedError(e, `createDumb ${i}`));
      const fe = await rig.frontend(g);
      // 3 DBUF_CREATE + 3 DBUF_DESTROY. Frontend-allocated, all answered 0. Backend-allocated,
      // close() lets go of a directory (Linux's order) possibly before the backend read it: that
      // create fails (EACCES) and its destroy finds nothing (ENOENT), in pairs.
      expect(fe?.connectors[0]?.requests).toBe(6);
      if (beAlloc === 0) expect(fe?.connectors[0]?.errors).toBe(0);
      else expect([0, 2, 4, 6]).toContain(fe?.connectors[0]?.errors);
      expect(fe?.usage).toMatchObject({ buffers: 0, framebuffers: 0 });
      // be-alloc: the backend's pages are counted until the guest's mapping of them is gone
      // (card.ts unmaps after DBUF_DESTROY's response; the backend's grants end on its next retry).
      expect(await poll(async () => (await usage(g))?.bytes === 0, 5000)).toBe(true);
      expect(await g.client.call('state', {})).toMatchObject({ closed: true, unplugged: false });
      await nextCardWorks(g, 10 + beAlloc);
      await finish(g);
    });
  }

  for (const beAlloc of [0, 1]) {
    it(`importer be-alloc=${beAlloc}: 2 importBuffer in flight of a dma-buf exported by another vdispl device (frontend-allocated), close() in the same tick: each rejects with -ENODEV, the backend holds no buffer for the importer, the imports' dma-buf references are dropped (put() releases it), the exporter's pixels are intact; accounting back to baseline`, async () => {
      const g = await rig.addGuest(`import-${beAlloc}`, `be-alloc=${beAlloc},connectors=c:${W}x${H}`, `be-alloc=0,connectors=s:${W}x${H}`);
      await g.client.call('open', {});
      expect((await g.client.call('openSide', { devid: 1 })).beAlloc).toBe(false);
      const src = await g.client.call('sideCreate', { width: W, height: H, format: XRGB });
      await g.client.call('fill', { buf: src.buf, seed: 20 + beAlloc });
      const exp = await g.client.call('sideExport', { buf: src.buf });
      expect(exp).toMatchObject({ size: src.pages * 4096, foreign: false });
      expect(await g.client.call('dmabufState', { dmabuf: exp.dmabuf })).toEqual({ refCount: 1, released: false });
      const r = await g.client.call('closeDuring', { what: 'import', n: 2, dmabuf: exp.dmabuf });
      expect(r.closedAtOnce).toBe(false); // it destroys the buffers being created, like any other
      expect(r.closeError).toBeUndefined();
      expect(r.values).toEqual([undefined, undefined]);
      r.errors.forEach((e, i) => expectClosedError(e, `importBuffer ${i}`));
      const fe = await rig.frontend(g, 0);
      expect(fe?.connectors[0]).toMatchObject({ requests: 4, errors: 0 });
      expect(fe?.usage).toEqual({ buffers: 0, framebuffers: 0, bytes: 0 });
      // The exporting device was not touched.
      expect(await usage(g, 1)).toMatchObject({ buffers: 1, framebuffers: 0 });
      // Each import holds a reference until every grant of its pages ended (the guest's deferred
      // end-of-access retry may take a second).
      expect(await poll(async () => (await g.client.call('dmabufState', { dmabuf: exp.dmabuf })).refCount === 1, 5000)).toBe(true);
      expectSameBytes(await g.client.call('read', { buf: src.buf, offset: 0, length: src.size }), pattern(20 + beAlloc, src.size), 'the exporter\'s pixels');
      expect(await g.client.call('putDmabuf', { dmabuf: exp.dmabuf })).toEqual({ released: true });
      await g.client.call('sideClose', {});
      await nextCardWorks(g, 30 + beAlloc);
      await finish(g);
    });
  }

  for (const beAlloc of [0, 1]) {
    it(`be-alloc=${beAlloc}: addFramebuffer in flight on a card holding its buffer, close() in the same tick (close() has requests of its own to await first): rejects with -ENODEV after FB_DETACH, the backend holds nothing, the next card works; accounting back to baseline`, async () => {
      const g = await rig.addGuest(`attach-${beAlloc}`, `be-alloc=${beAlloc},connectors=c:${W}x${H}`);
      await g.client.call('open', {});
      const b = await g.client.call('create', { width: W, height: H, format: XRGB });
      const r = await g.client.call('closeDuring', { what: 'attach', buf: b.buf });
      expect(r.closeError).toBeUndefined();
      expect(r.closedAtOnce).toBe(false);
      expectClosedError(r.error, 'addFramebuffer');
      expect(await poll(async () => { const u = await usage(g); return u?.buffers === 0 && u.framebuffers === 0; }, 5000)).toBe(true);
      await nextCardWorks(g, 40 + beAlloc);
      await finish(g);
    });
  }

  for (const beAlloc of [0, 1]) {
    it(`be-alloc=${beAlloc}: createDumb in flight on a card already holding a buffer, close() in the same tick: rejects with -ENODEV after DBUF_DESTROY, the backend holds no buffer, the next card works; accounting back to baseline`, async () => {
      const g = await rig.addGuest(`create-busy-${beAlloc}`, `be-alloc=${beAlloc},connectors=c:${W}x${H}`);
      await g.client.call('open', {});
      await g.client.call('create', { width: W, height: H, format: XRGB });
      const r = await g.client.call('closeDuring', { what: 'create', width: W, height: H, format: XRGB });
      expect(r.closeError).toBeUndefined();
      expect(r.closedAtOnce).toBe(false);
      expectClosedError(r.error, 'createDumb');
      expect(await poll(async () => (await usage(g))?.buffers === 0, 5000)).toBe(true);
      expect(await poll(async () => (await usage(g))?.bytes === 0, 5000)).toBe(true);
      await nextCardWorks(g, 50 + beAlloc);
      await finish(g);
    });
  }

  it('importBuffer in flight of a buffer exported by the same card (frontend-allocated), close() in the same tick: rejects with -ENODEV after DBUF_DESTROY, the backend holds no buffer, the import\'s dma-buf reference is dropped (put() releases it); accounting back to baseline', async () => {
    const g = await rig.addGuest('import-same', `be-alloc=0,connectors=c:${W}x${H}`);
    await g.client.call('open', {});
    const src = await g.client.call('create', { width: W, height: H, format: XRGB });
    const exp = await g.client.call('export', { buf: src.buf });
    expect(exp.foreign).toBe(false);
    const r = await g.client.call('closeDuring', { what: 'import', dmabuf: exp.dmabuf });
    expect(r.closeError).toBeUndefined();
    expect(r.closedAtOnce).toBe(false);
    expectClosedError(r.error, 'importBuffer');
    expect(await poll(async () => (await usage(g))?.buffers === 0, 5000)).toBe(true);
    // The import's reference goes once every grant of its pages has ended.
    expect(await poll(async () => (await g.client.call('dmabufState', { dmabuf: exp.dmabuf })).refCount === 1, 5000)).toBe(true);
    expect(await g.client.call('putDmabuf', { dmabuf: exp.dmabuf })).toEqual({ released: true });
    await nextCardWorks(g, 60);
    await finish(g);
  });

  it('addFramebuffer of a buffer of another card (another vdispl device of the guest, whose cookies overlap) is refused with EINVAL before any request; accounting back to baseline', async () => {
    const g = await rig.addGuest('foreign-buf', `be-alloc=0,connectors=c:${W}x${H}`, `be-alloc=0,connectors=s:${W}x${H}`);
    await g.client.call('open', {});
    await g.client.call('openSide', { devid: 1 });
    await g.client.call('create', { width: W, height: H, format: XRGB });
    const side = await g.client.call('sideCreate', { width: W, height: H, format: XRGB });
    const before = (await rig.frontend(g, 0))?.connectors[0]?.requests;
    expect(before).toBeGreaterThan(0);
    const e = await g.client.error('attach', { buf: side.buf });
    expect(e).toMatchObject({ code: 'EINVAL' });
    expect(e.message).toContain('another card');
    expect((await rig.frontend(g, 0))?.connectors[0]?.requests).toBe(before);
    expect(await usage(g, 0)).toMatchObject({ buffers: 1, framebuffers: 0 });
    await g.client.call('sideClose', {});
    await finish(g);
  });
});

/**
 * displif conformance and bad input, against the backend domain (src/back/backend-domain.ts) in
 * a worker, driven byte by byte by a raw frontend (src/front/raw-frontend.ts) in a local domain.
 *
 * One backend serves every case. A well-behaved guest (workers/display-flipper.ts, XenFront and
 * Card in a worker) flips continuously on the same backend the whole time: after every case its
 * flip count must keep increasing with no failed flip. Each case runs in a fresh raw guest that
 * is destroyed afterwards (without closing its device, as a crashed guest would), after which the
 * hypervisor's accounting must return to the baseline taken after a warm-up.
 *
 * Every response is checked the same way: it carries the request's id and operation, its status
 * is the exact negative Xen errno expected, and all 64 bytes were written (reserved zero) over a
 * request slot whose reserved bytes were deliberately left dirty (as Linux leaves them).
 */
import { MessageChannel } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DisplReq, type DisplResp, encodeReq } from '../../src/abi/displif-packets.js';
import {
  XENDISPL_DBUF_FLG_REQ_ALLOC,
  XENDISPL_EDID_MAX_SIZE,
  XENDISPL_EVT_PG_FLIP,
  XENDISPL_OP_DBUF_CREATE,
  XENDISPL_OP_DBUF_DESTROY,
  XENDISPL_OP_FB_ATTACH,
  XENDISPL_OP_FB_DETACH,
  XENDISPL_OP_GET_EDID,
  XENDISPL_OP_PG_FLIP,
  XENDISPL_OP_SET_CONFIG,
} from '../../src/abi/displif-constants.js';
import { DRM_FORMAT_RGB565, DRM_FORMAT_XRGB8888 } from '../../src/abi/fourcc.js';
import { PGDIR_GREF_OFFSET, PGDIR_NEXT_OFFSET } from '../../src/abi/page-directory.js';
import { XEN_ERRNO } from '../../src/abi/xen-errno.js';
import { XenbusState } from '../../src/abi/xenbus-state.js';
import { BackendControl, type FrontendStatus } from '../../src/back/backend-domain.js';
import type { DisplayLimits } from '../../src/back/buffers.js';
import type { PixelCopy } from '../../src/back/memory-presenter.js';
import { type RawConnector, RawFrontend } from '../../src/front/raw-frontend.js';
import type { DomainAccounting, MachineAccounting } from '../../src/hypervisor/accounting.js';
import type { DomainContext } from '../../src/hypervisor/index.js';
import { FrontShbuf, type ShbufMode } from '../../src/shbuf/front-shbuf.js';
import { type Guest, Toolstack } from '../../src/toolstack/toolstack.js';
import { parseVdisplSpec } from '../../src/toolstack/vdispl-spec.js';
import { XenbusDevice } from '../../src/xenbus/device.js';
import { domainPlatform, type XenPlatform } from '../../src/xenbus/xen-platform.js';
import { COUNTER_WORDS, ERRORS, FLIPS, type FlipperArgs, type FlipperMessage, READY } from './workers/display-flipper.js';

const BACKEND_MODULE = new URL('../../src/back/backend-domain.ts', import.meta.url).href;
const FLIPPER_MODULE = new URL('./workers/display-flipper.ts', import.meta.url).href;

const EINVAL = -XEN_ERRNO.EINVAL;
const ENOENT = -XEN_ERRNO.ENOENT;
const EEXIST = -XEN_ERRNO.EEXIST;
const EACCES = -XEN_ERRNO.EACCES;
const ENOMEM = -XEN_ERRNO.ENOMEM;
const EBUSY = -XEN_ERRNO.EBUSY;

const PAGE = 4096;
/** Small per-frontend limits so the limit cases stay cheap (the flipper needs 2 buffers, 4 pages). */
const MAX_BUFFERS = 8;
const MAX_BYTES = 8 << 20;
const MAX_FRAMEBUFFERS = 8;
const MAX_PENDING_EVENTS = 8;
const LIMITS: Partial<DisplayLimits> = { maxBuffers: MAX_BUFFERS, maxFramebuffers: MAX_FRAMEBUFFERS, maxBytes: MAX_BYTES, maxPendingEvents: MAX_PENDING_EVENTS };
/** Connector 0 of every raw guest. */
const W = 64;
const H = 32;
const FB_BYTES = W * H * 4;

// ---------------------------------------------------------------------------------------------
// Shared state: one toolstack, one backend, one flipper for the whole file

let ts: Toolstack;
let beDomid: number;
let control: BackendControl;
let flipper: Guest;
let counters: Int32Array;
const flipperErrors: string[] = [];
const logs: string[] = [];
let base: MachineAccounting;
/** Set if the backend domain ends (it must not, whatever a guest does). */
let backendExit: string | undefined;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

function domain(domid: number): DomainAccounting {
  const d = ts.machine.accounting().domains.find((x) => x.domid === domid);
  if (!d) throw new Error(`no domain ${domid}`);
  return d;
}

/** A control request to the backend domain, failing (rather than hanging) if it does not answer. */
async function ask<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the backend domain did not answer ${what} (${backendExit !== undefined ? `it ended: ${backendExit}` : 'still running'})`)), 5000);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function frontendStatus(domid: number): Promise<FrontendStatus | undefined> {
  return (await ask(control.status(), 'status')).frontends.find((f) => f.key === `${domid}/0`);
}

function snapshot(domid: number, index = 0): Promise<PixelCopy | undefined> {
  return ask(control.snapshot(domid, 0, index), `snapshot ${domid}/0/${index}`);
}

// ---------------------------------------------------------------------------------------------
// Raw guests

interface RawGuest extends BareGuest {
  readonly raw: RawFrontend;
  readonly c: RawConnector;
}

interface BareGuest {
  readonly guest: Guest;
  readonly domid: number;
  readonly p: XenPlatform;
  /** The backend's grant mappings before this guest existed (the flipper's and its own). */
  readonly backendMapsIdle: number;
}

/** A local domain with one vdispl device (`connectors`) on the backend, idle until destroyed. */
async function startGuest(name: string, connectors = `c0:${W}x${H}`): Promise<BareGuest> {
  const backendMapsIdle = domain(beDomid).mapsHeld;
  let gotCtx!: (ctx: DomainContext) => void;
  const ctxP = new Promise<DomainContext>((r) => (gotCtx = r));
  const guest = await ts.createDomain({
    mode: 'local',
    name,
    vdispl: [parseVdisplSpec(`backend=${beDomid},connectors=${connectors}`)],
    main: (ctx: DomainContext) => {
      gotCtx(ctx);
      // Idle until destroyed.
      return new Promise<void>((r) => {
        if (ctx.signal.aborted) r();
        else ctx.signal.addEventListener('abort', () => r(), { once: true });
      });
    },
  });
  const ctx = await ctxP;
  return { guest, domid: guest.domid, p: domainPlatform(ctx), backendMapsIdle };
}

/** startGuest, then a RawFrontend connected on every connector. */
async function startRaw(name: string, connectors?: string): Promise<RawGuest> {
  const b = await startGuest(name, connectors);
  const raw = await RawFrontend.connect(b.p, 'device/vdispl/0', { timeoutMs: 10_000 });
  return { ...b, raw, c: raw.connectors[0]! };
}

/** Destroys the guest as if it crashed (no device close) and waits until the toolstack is done. */
async function destroyRaw(g: BareGuest): Promise<void> {
  g.p.xenstore.close();
  await ts.destroyDomain(g.domid);
  await ts.settled();
}

async function expectNoLeaks(): Promise<void> {
  const end = Date.now() + 5000;
  let leaks = ts.machine.leaks(base);
  while (leaks.length > 0 && Date.now() < end) {
    await sleep(20);
    leaks = ts.machine.leaks(base);
  }
  expect(leaks).toEqual([]);
}

/** The flipper keeps flipping (after whatever the raw guest did) and no flip of it failed. */
async function expectFlipperFlipping(): Promise<void> {
  expect(backendExit, 'the backend domain is still running').toBeUndefined();
  const from = Atomics.load(counters, FLIPS);
  await until(() => Atomics.load(counters, FLIPS) >= from + 5, `the flipper to flip 5 more times (at ${from})`, 10_000);
  expect(flipperErrors).toEqual([]);
  expect(Atomics.load(counters, ERRORS)).toBe(0);
}

/**
 * One case: a fresh raw guest, the body, the flipper still flipping, the guest destroyed, and
 * the machine back to the baseline.
 */
async function withRawGuest(name: string, body: (g: RawGuest) => Promise<void>, connectors?: string): Promise<void> {
  await withGuest(() => startRaw(name, connectors), body);
}

async function withGuest<G extends BareGuest>(start: () => Promise<G>, body: (g: G) => Promise<void>): Promise<void> {
  const g = await start();
  let passed = false;
  try {
    await body(g);
    await expectFlipperFlipping();
    passed = true;
  } finally {
    await destroyRaw(g);
    const settled = (async () => {
      await until(async () => (await frontendStatus(g.domid)) === undefined, 'the backend to drop the destroyed guest');
      await expectNoLeaks();
    })();
    // After a failure, still let the backend finish releasing so the next case starts clean.
    if (passed) await settled;
    else await settled.catch(() => undefined);
  }
  await expectFlipperFlipping();
}

// ---------------------------------------------------------------------------------------------
// Requests, byte by byte

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;
type ReqBody = WithoutId<DisplReq>;

/** Where each operation's payload ends: bytes after it (and 3..7) are reserved. */
const PAYLOAD_END: Readonly<Record<number, number>> = {
  [XENDISPL_OP_DBUF_CREATE]: 44,
  [XENDISPL_OP_DBUF_DESTROY]: 16,
  [XENDISPL_OP_FB_ATTACH]: 36,
  [XENDISPL_OP_FB_DETACH]: 16,
  [XENDISPL_OP_SET_CONFIG]: 36,
  [XENDISPL_OP_PG_FLIP]: 16,
  [XENDISPL_OP_GET_EDID]: 16,
};

let nextId = 0xa000;

/** Fills every reserved byte of an encoded request with junk (a dirty ring slot). */
function dirty(bytes: Uint8Array, operation: number): Uint8Array {
  for (let i = 3; i < 8; i++) bytes[i] = 0xa5;
  for (let i = PAYLOAD_END[operation] ?? 64; i < 64; i++) bytes[i] = 0x5a;
  return bytes;
}

/**
 * Sends one request (reserved bytes dirty unless `clean`) as Linux does (notifying only if the
 * backend asked: RING_PUSH_REQUESTS_AND_CHECK_NOTIFY) and returns its response after checking
 * that the backend notified (it must, rsp_event asks for it) and the response's raw 64 bytes:
 * id and operation echoed, byte 3 and the union zero (GET_EDID: edid_sz, then zeros).
 */
async function call(c: RawConnector, req: ReqBody, opts: { clean?: boolean } = {}): Promise<DisplResp> {
  return (await callBatch(c, [req], opts))[0]!;
}

/** Like call() for several requests published at once (one push): the backend sees one batch. */
async function callBatch(c: RawConnector, reqs: readonly ReqBody[], opts: { clean?: boolean } = {}): Promise<DisplResp[]> {
  const ids: number[] = [];
  for (const req of reqs) {
    const id = nextId;
    nextId = (nextId + 1) & 0xffff;
    ids.push(id);
    const bytes = encodeReq({ ...req, id });
    c.write(opts.clean ? bytes : dirty(bytes, req.operation));
  }
  const notified = c.notified.req;
  c.push('if-asked');
  const what = `request(s) ${ids.join(', ')} (operation(s) ${reqs.map((r) => `0x${r.operation.toString(16)}`).join(', ')})`;
  await until(() => c.availableResponses >= reqs.length, `the responses to ${what}`);
  await until(() => c.notified.req > notified, `a notification for the responses to ${what}`);
  const out: DisplResp[] = [];
  for (const [i, req] of reqs.entries()) {
    const id = ids[i]!;
    const raw = c.ring.sring.slot(c.ring.rspCons).slice();
    const resp = await c.waitResponse();
    expect(resp.id, 'response id').toBe(id);
    expect(resp.operation, 'response operation').toBe(req.operation);
    expect(raw[0]! | (raw[1]! << 8)).toBe(id);
    expect(raw[2]).toBe(req.operation);
    expect(raw[3], 'response byte 3 (reserved)').toBe(0);
    expect(new DataView(raw.buffer).getInt32(4, true)).toBe(resp.status);
    const zeroFrom = req.operation === XENDISPL_OP_GET_EDID && resp.status === 0 ? 12 : 8;
    expect([...raw.subarray(zeroFrom)], 'response reserved bytes').toEqual(new Array<number>(64 - zeroFrom).fill(0));
    out.push(resp);
  }
  return out;
}

async function status(c: RawConnector, req: ReqBody, opts: { clean?: boolean } = {}): Promise<number> {
  return (await call(c, req, opts)).status;
}

interface DbufOpts {
  readonly width?: number;
  readonly height?: number;
  readonly bpp?: number;
  readonly size?: number;
  readonly flags?: number;
  readonly ofs?: number;
}

function dbufCreate(cookie: bigint, ref: number, o: DbufOpts = {}): ReqBody {
  return {
    operation: XENDISPL_OP_DBUF_CREATE,
    dbuf_cookie: cookie,
    width: o.width ?? W,
    height: o.height ?? H,
    bpp: o.bpp ?? 32,
    buffer_sz: o.size ?? FB_BYTES,
    flags: o.flags ?? 0,
    gref_directory: ref,
    data_ofs: o.ofs ?? 0,
  };
}

const dbufDestroy = (cookie: bigint): ReqBody => ({ operation: XENDISPL_OP_DBUF_DESTROY, dbuf_cookie: cookie });

function fbAttach(dbuf: bigint, fb: bigint, o: { width?: number; height?: number; format?: number } = {}): ReqBody {
  return { operation: XENDISPL_OP_FB_ATTACH, dbuf_cookie: dbuf, fb_cookie: fb, width: o.width ?? W, height: o.height ?? H, pixel_format: o.format ?? DRM_FORMAT_XRGB8888 };
}

const fbDetach = (fb: bigint): ReqBody => ({ operation: XENDISPL_OP_FB_DETACH, fb_cookie: fb });

function setConfig(fb: bigint, o: { x?: number; y?: number; width?: number; height?: number; bpp?: number } = {}): ReqBody {
  return { operation: XENDISPL_OP_SET_CONFIG, fb_cookie: fb, x: o.x ?? 0, y: o.y ?? 0, width: o.width ?? W, height: o.height ?? H, bpp: o.bpp ?? 32 };
}

const pgFlip = (fb: bigint): ReqBody => ({ operation: XENDISPL_OP_PG_FLIP, fb_cookie: fb });
const getEdid = (ref: number, size: number): ReqBody => ({ operation: XENDISPL_OP_GET_EDID, buffer_sz: size, gref_directory: ref });

// ---------------------------------------------------------------------------------------------
// Buffers and directories

function shbuf(g: BareGuest, bytes: number, mode: ShbufMode = 'frontend-alloc'): FrontShbuf {
  return FrontShbuf.create({ platform: g.p, backendDomid: beDomid, size: bytes, mode });
}

function setU32(page: Uint8Array, offset: number, value: number): void {
  new DataView(page.buffer, page.byteOffset, page.byteLength).setUint32(offset, value >>> 0, true);
}

function getU32(page: Uint8Array, offset: number): number {
  return new DataView(page.buffer, page.byteOffset, page.byteLength).getUint32(offset, true);
}

/** Directory page `d`'s gref_dir_next_page. */
function setNext(b: FrontShbuf, d: number, ref: number): void {
  setU32(b.directoryPages()[d]!, PGDIR_NEXT_OFFSET, ref);
}

/** gref[i] of directory page `d`. */
function setGref(b: FrontShbuf, d: number, i: number, ref: number): void {
  setU32(b.directoryPages()[d]!, PGDIR_GREF_OFFSET + 4 * i, ref);
}

/** The ref of directory page `d` (page 0's is firstRef; the others are linked). */
function dirRef(b: FrontShbuf, d: number): number {
  return d === 0 ? b.firstRef : getU32(b.directoryPages()[d - 1]!, PGDIR_NEXT_OFFSET);
}

/** A fresh zeroed page of the guest granted to `to` (read-only or not); returns its ref and view. */
function grantPage(g: BareGuest, to: number, readonly: boolean): { ref: number; page: Uint8Array } {
  const gfns = g.p.memory.allocPages(1);
  if (typeof gfns === 'number') throw new Error(`allocPages: ${gfns}`);
  const ref = g.p.grants.grantAccess(to, gfns[0]!, readonly);
  if (ref < 0) throw new Error(`grantAccess: ${ref}`);
  return { ref, page: g.p.memory.page(gfns[0]!)! };
}

/** What a failed request must not change: mappings of the guest, backend pages and grants. */
function footprint(g: BareGuest): Record<string, number> {
  const a = ts.machine.accounting();
  const fe = a.domains.find((d) => d.domid === g.domid)!;
  const be = a.domains.find((d) => d.domid === beDomid)!;
  return {
    guestMapsOfMine: fe.mapsOfMine,
    guestPinned: fe.grantEntriesPinned,
    backendMapsHeld: be.mapsHeld,
    backendPages: be.pages,
    backendGrants: be.grantEntriesInUse,
    backendPorts: be.ports,
    freeFrames: a.freeFrames,
  };
}

/** Expects `req` to fail with `errno` and to leave nothing mapped, allocated or granted. */
async function expectRefused(g: RawGuest, req: ReqBody, errno: number, what: string, c: RawConnector = g.c): Promise<void> {
  const before = footprint(g);
  expect(await status(c, req), what).toBe(errno);
  expect(footprint(g), `${what}: nothing left behind`).toEqual(before);
}

/** A 64x32 XRGB8888 buffer (frontend-allocated) with a framebuffer on it; returns the shbuf. */
async function makeFb(g: RawGuest, dbuf: bigint, fb: bigint, fill = 0): Promise<FrontShbuf> {
  const b = shbuf(g, FB_BYTES);
  b.view!.fill(fill);
  expect(await status(g.c, dbufCreate(dbuf, b.firstRef))).toBe(0);
  expect(await status(g.c, fbAttach(dbuf, fb))).toBe(0);
  return b;
}

// ---------------------------------------------------------------------------------------------
// Setup: backend, flipper, warm-up, baseline

beforeAll(async () => {
  ts = await Toolstack.start({ log: (t) => logs.push(`toolstack: ${t}`), machine: { log: (d, n, t) => logs.push(`[d${d} ${n}] ${t}`) } });

  const { port1, port2 } = new MessageChannel();
  const be = await ts.createDomain({ mode: 'worker', name: 'backend', module: BACKEND_MODULE, args: { presenter: 'memory', port: port2, limits: LIMITS }, transfer: [port2] });
  beDomid = be.domid;
  void be.handle.exited.then((e) => {
    backendExit = `${e.reason}${e.error !== undefined ? `: ${e.error}` : ''}`;
    logs.push(`backend domain ended: ${backendExit}`);
  });
  control = new BackendControl(port1);
  await control.status();

  const sab = new SharedArrayBuffer(COUNTER_WORDS * 4);
  counters = new Int32Array(sab);
  const fl = new MessageChannel();
  fl.port1.on('message', (m: FlipperMessage) => {
    if (m.type === 'error') flipperErrors.push(m.text);
  });
  fl.port1.unref();
  const args: FlipperArgs = { counters: sab, port: fl.port2 };
  flipper = await ts.createDomain({
    mode: 'worker',
    name: 'flipper',
    module: FLIPPER_MODULE,
    vdispl: [parseVdisplSpec(`backend=${beDomid},connectors=f0:${W}x${H}`)],
    args,
    transfer: [fl.port2],
  });
  await until(() => Atomics.load(counters, READY) === 1 || flipperErrors.length > 0, 'the flipper to start', 20_000);
  expect(flipperErrors).toEqual([]);
  await until(() => Atomics.load(counters, FLIPS) >= 5, 'the flipper to flip', 10_000);

  // Warm-up: grant maps, maptrack, grant-table and p2m frames grow on first use and are kept
  // (as in Xen), so exercise the largest footprint the cases reach: MAX_BYTES mapped, then
  // MAX_BYTES allocated by the backend, an EDID, and a flip.
  const pre = ts.machine.accounting();
  const g = await startRaw('warm-up');
  const big = shbuf(g, MAX_BYTES);
  expect(await status(g.c, dbufCreate(1n, big.firstRef, { width: 1024, height: 2048, size: MAX_BYTES }))).toBe(0);
  expect(await status(g.c, fbAttach(1n, 2n))).toBe(0);
  expect(await status(g.c, setConfig(2n))).toBe(0);
  expect(await status(g.c, pgFlip(2n))).toBe(0);
  await g.c.waitEvents(1);
  expect(await status(g.c, setConfig(0n, { width: 0, height: 0, bpp: 0 }))).toBe(0);
  expect(await status(g.c, fbDetach(2n))).toBe(0);
  expect(await status(g.c, dbufDestroy(1n))).toBe(0);
  const beBuf = shbuf(g, MAX_BYTES, 'backend-alloc');
  expect(await status(g.c, dbufCreate(3n, beBuf.firstRef, { width: 1024, height: 2048, size: MAX_BYTES, flags: XENDISPL_DBUF_FLG_REQ_ALLOC }))).toBe(0);
  beBuf.mapBackendPages();
  const edid = shbuf(g, XENDISPL_EDID_MAX_SIZE);
  expect(await status(g.c, getEdid(edid.firstRef, XENDISPL_EDID_MAX_SIZE))).toBe(0);
  await destroyRaw(g);
  const beBefore = pre.domains.find((d) => d.domid === beDomid)!;
  await until(() => {
    const a = ts.machine.accounting();
    const b = a.domains.find((d) => d.domid === beDomid)!;
    return !a.domains.some((d) => d.domid === g.domid) && b.pages === beBefore.pages && b.mapsHeld === beBefore.mapsHeld && b.grantEntriesInUse === beBefore.grantEntriesInUse;
  }, 'the backend to release the warm-up guest');
  await until(async () => (await frontendStatus(g.domid)) === undefined, 'the backend to drop the warm-up guest');
  base = ts.machine.accounting();
}, 60_000);

afterAll(async () => {
  control?.close();
  await ts?.close();
  if (flipperErrors.length > 0) process.stderr.write(`flipper errors:\n${flipperErrors.join('\n')}\n`);
  if (process.env.VDISPL_TEST_LOG) process.stderr.write(`${logs.join('\n')}\n`);
}, 30_000);

// ---------------------------------------------------------------------------------------------
// Cases

describe('displif conformance with a raw frontend (a flipper shares the backend throughout)', () => {
  it('unknown operations (0x00, 0x17, 0x42, 0xff) are -EINVAL, id and operation echoed', async () => {
    await withRawGuest('bad-unknown-op', async (g) => {
      for (const operation of [0x00, 0x17, 0x42, 0xff]) {
        const op = new Uint8Array(56).fill(0x77);
        expect(await status(g.c, { unknown: true, operation, op }), `operation 0x${operation.toString(16)}`).toBe(EINVAL);
      }
    });
  });

  it('a duplicate dbuf_cookie and a duplicate fb_cookie are -EEXIST (reusable after destroy/detach)', async () => {
    await withRawGuest('bad-duplicate-cookies', async (g) => {
      const a = await makeFb(g, 0x1111n, 0x2222n);
      const other = shbuf(g, FB_BYTES);
      await expectRefused(g, dbufCreate(0x1111n, other.firstRef), EEXIST, 'DBUF_CREATE with a dbuf_cookie in use');
      const second = shbuf(g, FB_BYTES);
      expect(await status(g.c, dbufCreate(0x3333n, second.firstRef))).toBe(0);
      await expectRefused(g, fbAttach(0x3333n, 0x2222n), EEXIST, 'FB_ATTACH with an fb_cookie in use');
      await expectRefused(g, fbAttach(0x1111n, 0x2222n), EEXIST, 'FB_ATTACH with an fb_cookie in use, same dbuf');
      // Destroy while attached: the cookie is free again, the memory stays until FB_DETACH.
      const mapped = domain(g.domid).mapsOfMine;
      expect(await status(g.c, dbufDestroy(0x1111n))).toBe(0);
      expect(domain(g.domid).mapsOfMine).toBe(mapped);
      expect(await status(g.c, fbAttach(0x1111n, 0x4444n)), 'FB_ATTACH on a destroyed dbuf').toBe(ENOENT);
      expect(await status(g.c, dbufCreate(0x1111n, other.firstRef)), 'the dbuf_cookie reused after DBUF_DESTROY').toBe(0);
      expect(await status(g.c, fbDetach(0x2222n))).toBe(0);
      expect(domain(g.domid).mapsOfMine, 'the destroyed buffer unmapped once its framebuffer is detached').toBe(mapped);
      expect(await status(g.c, fbAttach(0x3333n, 0x2222n)), 'the fb_cookie reused after FB_DETACH').toBe(0);
      expect(a.view![0]).toBe(0);
    });
  });

  it('cookie 0 is refused: DBUF_CREATE and FB_ATTACH -EINVAL, lookups -ENOENT', async () => {
    await withRawGuest('bad-cookie-0', async (g) => {
      const b = shbuf(g, FB_BYTES);
      await expectRefused(g, dbufCreate(0n, b.firstRef), EINVAL, 'DBUF_CREATE dbuf_cookie 0');
      expect(await status(g.c, dbufCreate(5n, b.firstRef))).toBe(0);
      await expectRefused(g, fbAttach(5n, 0n), EINVAL, 'FB_ATTACH fb_cookie 0');
      await expectRefused(g, fbAttach(0n, 6n), ENOENT, 'FB_ATTACH dbuf_cookie 0');
      await expectRefused(g, dbufDestroy(0n), ENOENT, 'DBUF_DESTROY 0');
      await expectRefused(g, fbDetach(0n), ENOENT, 'FB_DETACH 0');
      await expectRefused(g, pgFlip(0n), ENOENT, 'PG_FLIP 0');
    });
  });

  it('unknown cookies on DBUF_DESTROY, FB_ATTACH, FB_DETACH, SET_CONFIG and PG_FLIP are -ENOENT', async () => {
    await withRawGuest('bad-unknown-cookies', async (g) => {
      await makeFb(g, 7n, 8n);
      await expectRefused(g, dbufDestroy(0xdead_beef_0000_0001n), ENOENT, 'DBUF_DESTROY of an unknown dbuf');
      await expectRefused(g, fbAttach(0xdead_beef_0000_0002n, 9n), ENOENT, 'FB_ATTACH to an unknown dbuf');
      await expectRefused(g, fbDetach(0xffff_ffff_ffff_ffffn), ENOENT, 'FB_DETACH of an unknown fb');
      await expectRefused(g, setConfig(7n), ENOENT, 'SET_CONFIG with a dbuf cookie instead of an fb cookie');
      await expectRefused(g, pgFlip(0x1234n), ENOENT, 'PG_FLIP of an unknown fb');
      expect(await status(g.c, setConfig(8n))).toBe(0);
      await expectRefused(g, pgFlip(7n), ENOENT, 'PG_FLIP with a dbuf cookie');
      // The known ones still work.
      expect(await status(g.c, pgFlip(8n))).toBe(0);
      expect((await g.c.waitEvents(1))[0]).toMatchObject({ type: XENDISPL_EVT_PG_FLIP, id: 0, fb_cookie: 8n });
    });
  });

  it('directory loops (gref_dir_next_page pointing back) and extra directory pages are -EINVAL', async () => {
    await withRawGuest('bad-directory-loop', async (g) => {
      // 1024 pages: two directory pages A -> B.
      const b = shbuf(g, 1024 * PAGE);
      const a = dirRef(b, 0);
      const bRef = dirRef(b, 1);
      expect(bRef).not.toBe(0);
      // A -> A.
      setNext(b, 0, a);
      await expectRefused(g, dbufCreate(1n, a, { width: 1024, height: 1024, size: 1024 * PAGE }), EINVAL, 'a directory page linking to itself');
      // A -> B -> A, for a buffer that needs three directory pages.
      setNext(b, 0, bRef);
      setNext(b, 1, a);
      await expectRefused(g, dbufCreate(2n, a, { width: 1024, height: 2047, size: 2047 * PAGE }), EINVAL, 'A -> B -> A');
      // One page needed, but the directory goes on.
      const small = shbuf(g, FB_BYTES);
      setNext(small, 0, a);
      await expectRefused(g, dbufCreate(3n, small.firstRef), EINVAL, 'a last directory page with a next link');
    });
  });

  it('gref_directory 0 and gref[i] 0 are -EINVAL', async () => {
    await withRawGuest('bad-gref-0', async (g) => {
      await expectRefused(g, dbufCreate(1n, 0), EINVAL, 'gref_directory 0');
      const b = shbuf(g, FB_BYTES);
      setGref(b, 0, 1, 0);
      await expectRefused(g, dbufCreate(2n, b.firstRef), EINVAL, 'gref[1] 0');
      setGref(b, 0, 0, 0);
      await expectRefused(g, dbufCreate(3n, b.firstRef), EINVAL, 'gref[0] 0');
      // Two directory pages, the second listing a 0.
      const big = shbuf(g, 1025 * PAGE);
      setGref(big, 1, 1, 0);
      await expectRefused(g, dbufCreate(4n, big.firstRef, { width: 1025, height: 1024, size: 1025 * PAGE }), EINVAL, 'gref[1024] 0');
    });
  });

  it('refs granted to another domain, ended or beyond the grant table are refused', async () => {
    await withRawGuest('bad-foreign-refs', async (g) => {
      // A buffer page granted to dom0, not the backend.
      const b = shbuf(g, FB_BYTES);
      setGref(b, 0, 1, grantPage(g, 0, false).ref);
      await expectRefused(g, dbufCreate(1n, b.firstRef), EACCES, 'gref[1] granted to dom0');
      // A buffer page granted to the flipper.
      const c = shbuf(g, FB_BYTES);
      setGref(c, 0, 0, grantPage(g, flipper.domid, false).ref);
      await expectRefused(g, dbufCreate(2n, c.firstRef), EACCES, 'gref[0] granted to another guest');
      // The directory page granted to dom0 (listing good refs).
      const d = shbuf(g, FB_BYTES);
      const foreignDir = grantPage(g, 0, false);
      foreignDir.page.set(d.directoryPages()[0]!);
      await expectRefused(g, dbufCreate(3n, foreignDir.ref), EACCES, 'gref_directory granted to dom0');
      // A grant already ended (and not reused: ended after the directory was built).
      const e = shbuf(g, FB_BYTES);
      const ended = grantPage(g, beDomid, false);
      g.p.grants.endAccess(ended.ref);
      setGref(e, 0, 0, ended.ref);
      await expectRefused(g, dbufCreate(4n, e.firstRef), EACCES, 'gref[0] whose grant was ended');
      // Beyond the grant table.
      const f = shbuf(g, FB_BYTES);
      setGref(f, 0, 1, 0x7fff_fff0);
      await expectRefused(g, dbufCreate(5n, f.firstRef), EINVAL, 'gref[1] beyond the grant table');
      await expectRefused(g, dbufCreate(6n, 0x7fff_fff0), EINVAL, 'gref_directory beyond the grant table');
    });
  });

  it('read-only refs where the backend writes or maps read-write are -EACCES', async () => {
    await withRawGuest('bad-readonly-refs', async (g) => {
      const b = shbuf(g, FB_BYTES);
      setGref(b, 0, 1, grantPage(g, beDomid, true).ref);
      await expectRefused(g, dbufCreate(1n, b.firstRef), EACCES, 'gref[1] read-only');
      // be-alloc: the backend writes gref[] into the directory.
      const dir = shbuf(g, FB_BYTES, 'backend-alloc');
      const ro = grantPage(g, beDomid, true);
      ro.page.set(dir.directoryPages()[0]!);
      await expectRefused(g, dbufCreate(2n, ro.ref, { flags: XENDISPL_DBUF_FLG_REQ_ALLOC }), EACCES, 'be-alloc with a read-only directory');
      // GET_EDID: the backend writes the EDID.
      const edid = shbuf(g, XENDISPL_EDID_MAX_SIZE);
      setGref(edid, 0, 0, grantPage(g, beDomid, true).ref);
      await expectRefused(g, getEdid(edid.firstRef, XENDISPL_EDID_MAX_SIZE), EACCES, 'GET_EDID into a read-only page');
    });
  });

  it('buffer_sz beyond the directory (chain too short, refs missing) is -EINVAL', async () => {
    await withRawGuest('bad-short-directory', async (g) => {
      const b = shbuf(g, 2 * PAGE);
      await expectRefused(g, dbufCreate(1n, b.firstRef, { width: 1024, height: 1024, size: 1024 * PAGE }), EINVAL, 'a 1024-page buffer in a one-page directory');
      await expectRefused(g, dbufCreate(2n, b.firstRef, { width: 1024, height: 3, size: 3 * PAGE }), EINVAL, 'a 3-page buffer in a directory listing 2');
      // Geometry that does not fit in buffer_sz, and other impossible sizes.
      await expectRefused(g, dbufCreate(3n, b.firstRef, { size: PAGE }), EINVAL, '64x32x32 in 4096 bytes');
      await expectRefused(g, dbufCreate(4n, b.firstRef, { size: 0 }), EINVAL, 'buffer_sz 0');
      await expectRefused(g, dbufCreate(5n, b.firstRef, { bpp: 12 }), EINVAL, 'bpp 12');
      await expectRefused(g, dbufCreate(6n, b.firstRef, { width: 0 }), EINVAL, 'width 0 with height and bpp');
      await expectRefused(g, dbufCreate(7n, b.firstRef, { width: 32, ofs: FB_BYTES }), EINVAL, 'data_ofs at the end of the buffer');
      await expectRefused(g, dbufCreate(8n, b.firstRef, { ofs: 4 }), EINVAL, '64x32x32 at data_ofs 4 in 8192 bytes');
      await expectRefused(g, dbufCreate(10n, b.firstRef, { width: 0xffff_ffff, height: 0xffff_ffff }), EINVAL, '(2^32 - 1) x (2^32 - 1) x 32 in 8192 bytes');
      await expectRefused(g, dbufCreate(11n, b.firstRef, { width: 0x4000_0000, height: 2, bpp: 32, size: 8 }), EINVAL, 'width x bpp overflowing 32 bits');
      expect(await status(g.c, dbufCreate(9n, b.firstRef)), 'the same directory, told the truth').toBe(0);
    });
  });

  it('a framebuffer larger than its buffer (or an unknown format, or 0x0) is -EINVAL', async () => {
    await withRawGuest('bad-fb-too-large', async (g) => {
      const b = shbuf(g, FB_BYTES);
      expect(await status(g.c, dbufCreate(1n, b.firstRef))).toBe(0);
      await expectRefused(g, fbAttach(1n, 10n, { height: H + 1 }), EINVAL, 'FB_ATTACH 64x33 on 64x32');
      await expectRefused(g, fbAttach(1n, 11n, { width: W + 1 }), EINVAL, 'FB_ATTACH 65x32 on 64x32');
      await expectRefused(g, fbAttach(1n, 12n, { width: 4096, height: 4096 }), EINVAL, 'FB_ATTACH 4096x4096 on 64x32');
      await expectRefused(g, fbAttach(1n, 13n, { format: 0x20202020 }), EINVAL, 'FB_ATTACH with an unknown fourcc');
      await expectRefused(g, fbAttach(1n, 14n, { width: 0, height: 0 }), EINVAL, 'FB_ATTACH 0x0');
      await expectRefused(g, fbAttach(1n, 17n, { width: 0xffff_ffff, height: 0xffff_ffff }), EINVAL, 'FB_ATTACH (2^32 - 1) x (2^32 - 1)');
      expect(await status(g.c, fbAttach(1n, 15n, { format: DRM_FORMAT_RGB565 })), 'a smaller RGB565 framebuffer fits').toBe(0);
      expect(await status(g.c, fbAttach(1n, 16n)), 'the exact size').toBe(0);
    });
  });

  it('SET_CONFIG beyond the connector resolution (or larger than the fb, bpp mismatch, 0x0) is -EINVAL', async () => {
    await withRawGuest('bad-set-config', async (g) => {
      const big = shbuf(g, 128 * 64 * 4);
      expect(await status(g.c, dbufCreate(1n, big.firstRef, { width: 128, height: 64, size: 128 * 64 * 4 }))).toBe(0);
      expect(await status(g.c, fbAttach(1n, 2n, { width: 128, height: 64 }))).toBe(0);
      await makeFb(g, 3n, 4n);
      await expectRefused(g, setConfig(2n, { width: 128, height: 64 }), EINVAL, 'SET_CONFIG 128x64 on a 64x32 connector');
      await expectRefused(g, setConfig(2n, { width: W + 1 }), EINVAL, 'SET_CONFIG 65x32');
      await expectRefused(g, setConfig(2n, { x: 1 }), EINVAL, 'SET_CONFIG 64x32 at (1, 0)');
      await expectRefused(g, setConfig(2n, { y: H, height: 1 }), EINVAL, 'SET_CONFIG at y = 32');
      await expectRefused(g, setConfig(2n, { x: 0xffff_ffff, width: 2 }), EINVAL, 'SET_CONFIG x = 2^32 - 1 (wrap-around)');
      await expectRefused(g, setConfig(2n, { width: 0, height: 0 }), EINVAL, 'SET_CONFIG 0x0 with a framebuffer');
      await expectRefused(g, setConfig(2n, { bpp: 16 }), EINVAL, 'SET_CONFIG bpp 16 for XRGB8888');
      expect(await status(g.c, setConfig(2n, { x: 32, y: 16, width: 32, height: 16 })), 'a window inside the connector').toBe(0);
      expect(await status(g.c, setConfig(2n)), 'a 64x32 mode of a 128x64 framebuffer').toBe(0);
      expect(await status(g.c, setConfig(4n, { bpp: 0 })), 'bpp 0').toBe(0);
      // A flip to a framebuffer smaller than the mode.
      const small = shbuf(g, 32 * 16 * 4);
      expect(await status(g.c, dbufCreate(5n, small.firstRef, { width: 32, height: 16, size: 32 * 16 * 4 }))).toBe(0);
      expect(await status(g.c, fbAttach(5n, 6n, { width: 32, height: 16 }))).toBe(0);
      await expectRefused(g, pgFlip(6n), EINVAL, 'PG_FLIP to a 32x16 framebuffer in a 64x32 mode');
      expect(await status(g.c, setConfig(0n, { x: 5, y: 5, width: 7, height: 7, bpp: 9 })), 'reset: the cookie decides').toBe(0);
    });
  });

  it('PG_FLIP before SET_CONFIG (and after a reset) is -EINVAL; after it, frame done id 0', async () => {
    await withRawGuest('bad-flip-before-config', async (g) => {
      await makeFb(g, 1n, 2n);
      await expectRefused(g, pgFlip(2n), EINVAL, 'PG_FLIP with no mode set');
      expect(await status(g.c, setConfig(2n))).toBe(0);
      expect(await status(g.c, setConfig(0n, { width: 0, height: 0, bpp: 0 }))).toBe(0);
      await expectRefused(g, pgFlip(2n), EINVAL, 'PG_FLIP after a reset');
      expect(g.c.availableEvents).toBe(0);
      expect(await status(g.c, setConfig(2n))).toBe(0);
      expect(await status(g.c, pgFlip(2n))).toBe(0);
      expect(await g.c.waitEvents(1)).toMatchObject([{ type: XENDISPL_EVT_PG_FLIP, id: 0, fb_cookie: 2n }]);
      await until(() => g.c.notified.evt > 0, 'a notification on the event channel');
    });
  });

  it('non-zero reserved bytes and junk DBUF_CREATE flags above bit 0 are accepted and masked', async () => {
    await withRawGuest('bad-reserved-and-flags', async (g) => {
      // Every request of this file has dirty reserved bytes; here also junk flags.
      const b = shbuf(g, FB_BYTES);
      const listed = [...b.listedRefs()];
      const maps = domain(g.domid).mapsOfMine;
      expect(await status(g.c, dbufCreate(1n, b.firstRef, { flags: 0xffff_fffe })), 'flags 0xfffffffe (frontend-allocated)').toBe(0);
      expect(domain(g.domid).mapsOfMine, 'the guest\'s pages are mapped').toBe(maps + 2);
      expect([...b.listedRefs()], 'the directory untouched').toEqual(listed);
      const beb = shbuf(g, FB_BYTES, 'backend-alloc');
      const pages = domain(beDomid).pages;
      expect(await status(g.c, dbufCreate(2n, beb.firstRef, { flags: 0x8000_0003 })), 'flags 0x80000003 (backend-allocated)').toBe(0);
      expect(domain(beDomid).pages, 'the backend allocated the buffer').toBe(pages + 2);
      expect([...beb.listedRefs()].every((r) => r !== 0), 'the backend filled the directory').toBe(true);
      // A clean request for comparison, and the frontend-allocated buffer really shown.
      expect(await status(g.c, fbAttach(1n, 3n), { clean: true })).toBe(0);
      b.view!.fill(0x3c);
      expect(await status(g.c, setConfig(3n))).toBe(0);
      const snap = await snapshot(g.domid);
      expect(snap?.data).toEqual(new Uint8Array(FB_BYTES).fill(0x3c));
    });
  });

  it('req_prod 32 ahead is served; 33 or far ahead disconnects only that frontend (Closed, error in XenStore)', async () => {
    await withRawGuest('bad-req-prod-overflow', async (g) => {
      await makeFb(g, 1n, 2n);
      const errPath = `/local/domain/${beDomid}/error/backend/vdispl/${g.domid}/0/error`;
      expect(await ts.xs.tryRead(errPath)).toBeUndefined();
      // Exactly a ring's worth of (zeroed, unknown-operation) requests is legal.
      const ring = g.c.ring;
      const start = ring.sring.rspProd;
      for (let i = 0; i < 32; i++) g.c.write(new Uint8Array(64));
      g.c.push('always');
      await until(() => ring.sring.rspProd === ((start + 32) >>> 0), '32 responses');
      expect(g.c.takeResponses().map((r) => r.status)).toEqual(new Array<number>(32).fill(EINVAL));
      expect(await g.raw.backendState()).toBe(XenbusState.Connected);
      expect(domain(beDomid).mapsHeld).toBeGreaterThan(g.backendMapsIdle);
      // 1000 ahead.
      g.c.setReqProd((ring.sring.rspProd + 1000) >>> 0);
      g.c.notify();
      await g.raw.waitBackendState(XenbusState.Closed, 5000);
      const text = await ts.xs.tryRead(errPath);
      expect(text).toMatch(/^5 connector 0: req_prod \d+ is more than 32 requests ahead/);
      // Everything of this guest released: rings and buffer unmapped, channels unbound.
      await until(() => domain(beDomid).mapsHeld === g.backendMapsIdle, 'the backend to unmap the guest');
      const st = await frontendStatus(g.domid);
      expect(st?.connectors).toEqual([]);
      expect(st?.usage).toBeUndefined();
      // The frontend may start over: the backend waits for it again.
      await g.raw.dev.switchState(XenbusState.Initialising);
      await g.raw.waitBackendState(XenbusState.InitWait, 5000);
    });
  });

  it('req_prod one past a full ring (33 ahead) disconnects that frontend', async () => {
    await withRawGuest('bad-req-prod-33', async (g) => {
      g.c.setReqProd((g.c.ring.sring.rspProd + 33) >>> 0);
      g.c.notify();
      await g.raw.waitBackendState(XenbusState.Closed, 5000);
      expect(await ts.xs.tryRead(`/local/domain/${beDomid}/error/backend/vdispl/${g.domid}/0/error`)).toMatch(/^5 /);
      await until(() => domain(beDomid).mapsHeld === g.backendMapsIdle, 'the backend to unmap the guest');
    });
  });

  it('a flood of requests whose responses are never read, and of notifications, leaves the backend serving', async () => {
    await withRawGuest('bad-flood', async (g) => {
      const ring = g.c.ring;
      const shb = shbuf(g, FB_BYTES);
      const op = new Uint8Array(56).fill(0x99);
      const ROUNDS = 60;
      for (let r = 0; r < ROUNDS; r++) {
        // Fill the whole ring without ever taking a response (legal: the backend's responses are
        // what it counts against), then wait for the backend to answer all of it.
        for (let i = 0; i < 8; i++) {
          const cookie = BigInt(r * 8 + i + 1);
          g.c.write(dirty(encodeReq({ ...dbufCreate(cookie, shb.firstRef), id: i }), XENDISPL_OP_DBUF_CREATE));
          g.c.write(dirty(encodeReq({ ...dbufDestroy(cookie), id: i }), XENDISPL_OP_DBUF_DESTROY));
          g.c.write(encodeReq({ unknown: true, operation: 0x80 + i, id: i, op }));
          g.c.write(dirty(encodeReq({ ...pgFlip(0x5555n), id: i }), XENDISPL_OP_PG_FLIP));
        }
        g.c.push('always');
        for (let k = 0; k < 10; k++) g.c.notify();
        await until(() => ring.sring.rspProd === ring.reqProdPvt, `round ${r} answered`);
      }
      // The last round's responses are in the ring: create 0, destroy 0, unknown -EINVAL, flip -ENOENT.
      const statuses: number[] = [];
      for (let i = 0; i < 32; i++) statuses.push(new DataView(ring.sring.slot((ring.reqProdPvt - 32 + i) >>> 0).slice().buffer).getInt32(4, true));
      expect(statuses).toEqual(new Array<number[]>(8).fill([0, 0, EINVAL, ENOENT]).flat());
      const st = await frontendStatus(g.domid);
      expect(st?.connectors[0]).toMatchObject({ requests: ROUNDS * 32, errors: ROUNDS * 16 });
      expect(st?.usage).toEqual({ buffers: 0, framebuffers: 0, bytes: 0 });
      for (let i = 0; i < 5000; i++) g.c.notify();
      // Still serving this guest once it reads its responses again.
      ring.rspCons = ring.sring.rspProd;
      ring.sring.rspEvent = (ring.rspCons + 1) >>> 0;
      expect(await status(g.c, dbufCreate(1n, shb.firstRef))).toBe(0);
      expect(await g.raw.backendState()).toBe(XenbusState.Connected);
    });
  });

  it(`an event page never consumed: events wait (none dropped) up to ${MAX_PENDING_EVENTS}, then PG_FLIP is -EBUSY`, async () => {
    await withRawGuest('bad-events-never-consumed', async (g) => {
      await makeFb(g, 1n, 0xf1n);
      await makeFb(g, 2n, 0xf2n);
      expect(await status(g.c, setConfig(0xf1n))).toBe(0);
      const total = 63 + MAX_PENDING_EVENTS;
      const cookies: bigint[] = [];
      for (let i = 0; i < total; i++) {
        const fb = i % 3 === 0 ? 0xf2n : 0xf1n;
        expect(await status(g.c, pgFlip(fb)), `flip ${i}`).toBe(0);
        cookies.push(fb);
      }
      await until(async () => {
        const c = (await frontendStatus(g.domid))?.connectors[0];
        return c?.events === 63 && c.waitingEvents === MAX_PENDING_EVENTS;
      }, '63 events on the page and the rest waiting');
      expect(g.c.availableEvents).toBe(63);
      await expectRefused(g, pgFlip(0xf1n), EBUSY, `flip ${total}, with ${MAX_PENDING_EVENTS} frame-done events waiting`);
      expect(await status(g.c, pgFlip(0x999n)), 'an unknown cookie is still -ENOENT').toBe(ENOENT);
      // Now consume, slowly: every event arrives, in order, ids consecutive from 0.
      const got: { id: number; fb_cookie: bigint }[] = [];
      await until(() => {
        for (const e of g.c.takeEvents(20)) got.push({ id: e.id, fb_cookie: 'fb_cookie' in e ? e.fb_cookie : -1n });
        return got.length >= total;
      }, `${total} events`);
      expect(got.map((e) => e.id)).toEqual([...Array(total).keys()]);
      expect(got.map((e) => e.fb_cookie)).toEqual(cookies);
      // Room again.
      expect(await status(g.c, pgFlip(0xf2n))).toBe(0);
      expect(await g.c.waitEvents(1)).toMatchObject([{ type: XENDISPL_EVT_PG_FLIP, id: total, fb_cookie: 0xf2n }]);
    });
  });

  it(`per-frontend limits: buffer ${MAX_BUFFERS + 1}, framebuffer ${MAX_FRAMEBUFFERS + 1} and bytes over ${MAX_BYTES} are -ENOMEM with nothing mapped`, async () => {
    await withRawGuest('bad-limits', async (g) => {
      const bufs: FrontShbuf[] = [];
      for (let i = 0; i < MAX_BUFFERS; i++) {
        bufs.push(shbuf(g, PAGE));
        expect(await status(g.c, dbufCreate(BigInt(i + 1), bufs[i]!.firstRef, { width: 32, height: 32, size: PAGE })), `buffer ${i + 1}`).toBe(0);
      }
      const extra = shbuf(g, PAGE);
      await expectRefused(g, dbufCreate(100n, extra.firstRef, { width: 32, height: 32, size: PAGE }), ENOMEM, `buffer ${MAX_BUFFERS + 1}`);
      expect(await status(g.c, dbufDestroy(1n))).toBe(0);
      expect(await status(g.c, dbufCreate(100n, extra.firstRef, { width: 32, height: 32, size: PAGE })), 'room again after DBUF_DESTROY').toBe(0);
      // Framebuffers: MAX_FRAMEBUFFERS on one buffer, then -ENOMEM, then room again after FB_DETACH.
      for (let i = 0; i < MAX_FRAMEBUFFERS; i++) expect(await status(g.c, fbAttach(2n, BigInt(1000 + i), { width: 32, height: 32 })), `framebuffer ${i + 1}`).toBe(0);
      await expectRefused(g, fbAttach(3n, 2000n, { width: 32, height: 32 }), ENOMEM, `framebuffer ${MAX_FRAMEBUFFERS + 1}`);
      expect(await status(g.c, fbDetach(1000n))).toBe(0);
      expect(await status(g.c, fbAttach(3n, 2000n, { width: 32, height: 32 })), 'room again after FB_DETACH').toBe(0);
      for (let i = 1; i < MAX_FRAMEBUFFERS; i++) expect(await status(g.c, fbDetach(BigInt(1000 + i)))).toBe(0);
      expect(await status(g.c, fbDetach(2000n))).toBe(0);
      for (let i = 2; i <= MAX_BUFFERS; i++) expect(await status(g.c, dbufDestroy(BigInt(i)))).toBe(0);
      expect(await status(g.c, dbufDestroy(100n))).toBe(0);
      // Bytes: 6 MiB + 4 MiB > 8 MiB; 6 + 2 fits exactly; then one page more does not.
      const six = shbuf(g, 6 << 20);
      expect(await status(g.c, dbufCreate(200n, six.firstRef, { width: 1024, height: 1536, size: 6 << 20 }))).toBe(0);
      const four = shbuf(g, 4 << 20);
      await expectRefused(g, dbufCreate(201n, four.firstRef, { width: 1024, height: 1024, size: 4 << 20 }), ENOMEM, '4 MiB more with 6 of 8 MiB in use');
      const beFour = shbuf(g, 4 << 20, 'backend-alloc');
      await expectRefused(g, dbufCreate(202n, beFour.firstRef, { width: 1024, height: 1024, size: 4 << 20, flags: XENDISPL_DBUF_FLG_REQ_ALLOC }), ENOMEM, '4 MiB more, backend-allocated');
      await expectRefused(g, dbufCreate(203n, four.firstRef, { width: 1, height: 1, size: 0xffff_f000 }), ENOMEM, 'buffer_sz 4 GiB - 4 KiB');
      const two = shbuf(g, 2 << 20);
      expect(await status(g.c, dbufCreate(204n, two.firstRef, { width: 1024, height: 512, size: 2 << 20 }))).toBe(0);
      await expectRefused(g, dbufCreate(205n, extra.firstRef, { width: 32, height: 32, size: PAGE }), ENOMEM, 'one page over 8 MiB');
      expect((await frontendStatus(g.domid))?.usage).toEqual({ buffers: 2, framebuffers: 0, bytes: MAX_BYTES });
    });
  });

  it('GET_EDID with a buffer smaller than the EDID (or gref_directory 0) is -EINVAL; 32 KiB gets the EDID', async () => {
    await withRawGuest('bad-get-edid', async (g) => {
      const small = shbuf(g, PAGE);
      await expectRefused(g, getEdid(small.firstRef, 64), EINVAL, 'GET_EDID buffer_sz 64');
      await expectRefused(g, getEdid(small.firstRef, 0), EINVAL, 'GET_EDID buffer_sz 0');
      await expectRefused(g, getEdid(0, XENDISPL_EDID_MAX_SIZE), EINVAL, 'GET_EDID gref_directory 0');
      const edid = shbuf(g, XENDISPL_EDID_MAX_SIZE);
      const r = await call(g.c, getEdid(edid.firstRef, XENDISPL_EDID_MAX_SIZE));
      expect(r.status).toBe(0);
      expect(r.edid_sz).toBeGreaterThanOrEqual(128);
      expect(r.edid_sz! % 128).toBe(0);
      expect([...edid.view!.subarray(0, 8)]).toEqual([0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00]);
      let sum = 0;
      for (let i = 0; i < 128; i++) sum += edid.view![i]!;
      expect(sum % 256, 'EDID block 0 checksum').toBe(0);
    });
  });

  it('DBUF_CREATE with be-alloc: the backend allocates and fills the directory; data_ofs != 0, width 0 or 0x0x0 are -EINVAL', async () => {
    await withRawGuest('bad-be-alloc', async (g) => {
      const dir = shbuf(g, FB_BYTES, 'backend-alloc');
      await expectRefused(g, dbufCreate(1n, dir.firstRef, { flags: XENDISPL_DBUF_FLG_REQ_ALLOC, ofs: 64, size: FB_BYTES + 64 }), EINVAL, 'be-alloc with data_ofs 64');
      await expectRefused(g, dbufCreate(2n, dir.firstRef, { flags: XENDISPL_DBUF_FLG_REQ_ALLOC, width: 0 }), EINVAL, 'be-alloc with width 0');
      await expectRefused(g, dbufCreate(3n, dir.firstRef, { flags: XENDISPL_DBUF_FLG_REQ_ALLOC, width: 0, height: 0, bpp: 0 }), EINVAL, 'be-alloc with width = height = bpp = 0');
      await expectRefused(g, dbufCreate(4n, 0, { flags: XENDISPL_DBUF_FLG_REQ_ALLOC }), EINVAL, 'be-alloc with gref_directory 0');
      expect([...dir.listedRefs()], 'nothing written into the directory').toEqual([0, 0]);
      const pages = domain(beDomid).pages;
      expect(await status(g.c, dbufCreate(5n, dir.firstRef, { flags: XENDISPL_DBUF_FLG_REQ_ALLOC }))).toBe(0);
      expect(domain(beDomid).pages).toBe(pages + 2);
      dir.mapBackendPages();
      for (let i = 0; i < FB_BYTES; i++) dir.view![i] = (i * 7) & 0xff;
      expect(await status(g.c, fbAttach(5n, 6n))).toBe(0);
      expect(await status(g.c, setConfig(6n))).toBe(0);
      expect(await status(g.c, pgFlip(6n))).toBe(0);
      await g.c.waitEvents(1);
      expect((await snapshot(g.domid))?.data).toEqual(dir.view!.slice(0, FB_BYTES));
      await expectRefused(g, dbufCreate(5n, dir.firstRef, { flags: XENDISPL_DBUF_FLG_REQ_ALLOC }), EEXIST, 'be-alloc with a dbuf_cookie in use');
    });
  });

  it('PRIME-style DBUF_CREATE (width = height = bpp = 0) takes its geometry from FB_ATTACH', async () => {
    await withRawGuest('prime-import', async (g) => {
      const OFS = 256;
      const b = shbuf(g, 3 * PAGE);
      for (let i = 0; i < 3 * PAGE; i++) b.view![i] = (i * 13 + 1) & 0xff;
      expect(await status(g.c, dbufCreate(1n, b.firstRef, { width: 0, height: 0, bpp: 0, size: 3 * PAGE, ofs: OFS }))).toBe(0);
      // A first framebuffer too big for it changes nothing.
      await expectRefused(g, fbAttach(1n, 2n, { width: 128, height: 64 }), EINVAL, 'FB_ATTACH 128x64 XRGB8888 on a 12 KiB import');
      expect(await status(g.c, fbAttach(1n, 3n))).toBe(0);
      // Its pitch is now 256: a wider framebuffer no longer fits, a narrower format does.
      await expectRefused(g, fbAttach(1n, 4n, { width: 65, height: 2 }), EINVAL, 'FB_ATTACH wider than the pitch fixed by the first');
      expect(await status(g.c, fbAttach(1n, 5n, { format: DRM_FORMAT_RGB565 }))).toBe(0);
      expect(await status(g.c, setConfig(3n))).toBe(0);
      expect(await status(g.c, pgFlip(3n))).toBe(0);
      await g.c.waitEvents(1);
      const snap = await snapshot(g.domid);
      expect(snap).toMatchObject({ width: W, height: H, fourcc: DRM_FORMAT_XRGB8888, pitch: W * 4 });
      expect(snap?.data).toEqual(b.view!.slice(OFS, OFS + FB_BYTES));
      // An import whose first framebuffer fails can still take a smaller one.
      const one = shbuf(g, PAGE);
      expect(await status(g.c, dbufCreate(6n, one.firstRef, { width: 0, height: 0, bpp: 0, size: PAGE }))).toBe(0);
      await expectRefused(g, fbAttach(6n, 7n), EINVAL, 'FB_ATTACH 64x32 XRGB8888 on a 4 KiB import');
      expect(await status(g.c, fbAttach(6n, 8n, { width: 32, height: 32 }))).toBe(0);
      await expectRefused(g, dbufCreate(9n, one.firstRef, { width: 0, height: 0, bpp: 0, size: PAGE, ofs: PAGE }), EINVAL, 'an import with data_ofs at its end');
    });
  });

  it('FB_DETACH and DBUF_DESTROY of the framebuffer on screen: it stays mapped until the connector moves off it', async () => {
    await withRawGuest('detach-while-shown', async (g) => {
      await makeFb(g, 1n, 2n, 0x42);
      await makeFb(g, 3n, 4n, 0x24);
      expect(await status(g.c, setConfig(2n))).toBe(0);
      expect(await status(g.c, pgFlip(2n))).toBe(0);
      await g.c.waitEvents(1);
      const maps = domain(beDomid).mapsHeld;
      expect(await status(g.c, fbDetach(2n))).toBe(0);
      expect(await status(g.c, dbufDestroy(1n))).toBe(0);
      expect(domain(beDomid).mapsHeld, 'still mapped while shown').toBe(maps);
      expect((await snapshot(g.domid))?.data).toEqual(new Uint8Array(FB_BYTES).fill(0x42));
      await expectRefused(g, pgFlip(2n), ENOENT, 'PG_FLIP to the detached framebuffer');
      expect(await status(g.c, pgFlip(4n))).toBe(0);
      await g.c.waitEvents(1);
      await until(() => domain(beDomid).mapsHeld === maps - 2, 'the detached buffer to be unmapped once the connector moved off it');
      expect((await snapshot(g.domid))?.data).toEqual(new Uint8Array(FB_BYTES).fill(0x24));
      expect((await frontendStatus(g.domid))?.usage).toEqual({ buffers: 1, framebuffers: 1, bytes: FB_BYTES });
    });
  });

  it('connector 1 has its own ring, resolution, event page, event ids and EDID; buffers are per device', async () => {
    await withRawGuest('two-connectors', async (g) => {
      const c1 = g.raw.connectors[1]!;
      expect([c1.width, c1.height]).toEqual([33, 17]);
      const b = await makeFb(g, 1n, 2n);
      for (let i = 0; i < FB_BYTES; i++) b.view![i] = i & 0xff;
      await expectRefused(g, setConfig(2n), EINVAL, 'SET_CONFIG 64x32 on the 33x17 connector 1', c1);
      await expectRefused(g, pgFlip(2n), EINVAL, 'PG_FLIP on connector 1 before its SET_CONFIG', c1);
      expect(await status(c1, setConfig(2n, { width: 33, height: 17 }))).toBe(0);
      expect(await status(c1, pgFlip(2n))).toBe(0);
      expect(await c1.waitEvents(1)).toMatchObject([{ id: 0, fb_cookie: 2n }]);
      expect(g.c.availableEvents, 'nothing on connector 0\'s page').toBe(0);
      expect(await status(g.c, setConfig(2n))).toBe(0);
      for (let i = 0; i < 2; i++) expect(await status(g.c, pgFlip(2n))).toBe(0);
      await until(() => g.c.availableEvents === 2, 'two events on connector 0');
      expect(g.c.takeEvents().map((e) => e.id), 'connector 0 counts its own ids').toEqual([0, 1]);
      expect(await status(c1, pgFlip(2n))).toBe(0);
      expect(await c1.waitEvents(1)).toMatchObject([{ id: 1, fb_cookie: 2n }]);
      const snap = await snapshot(g.domid, 1);
      const rows: number[] = [];
      for (let y = 0; y < 17; y++) rows.push(...b.view!.subarray(y * W * 4, y * W * 4 + 33 * 4));
      expect(snap).toMatchObject({ width: 33, height: 17 });
      expect([...snap!.data]).toEqual(rows);
      // GET_EDID on connector 1 describes connector 1.
      const edid = shbuf(g, XENDISPL_EDID_MAX_SIZE);
      expect(await status(c1, getEdid(edid.firstRef, XENDISPL_EDID_MAX_SIZE))).toBe(0);
      const e = edid.view!;
      expect(e[56]! | ((e[58]! & 0xf0) << 4), 'EDID horizontal active pixels').toBe(33);
      expect(e[59]! | ((e[61]! & 0xf0) << 4), 'EDID vertical active lines').toBe(17);
    }, `c0:${W}x${H};c1:33x17`);
  });

  it('event page indices scribbled by the frontend (in_cons ahead of in_prod, in_prod overwritten): events wait, then flow with the right ids', async () => {
    await withRawGuest('bad-event-indices', async (g) => {
      await makeFb(g, 1n, 2n);
      expect(await status(g.c, setConfig(2n))).toBe(0);
      expect(await status(g.c, pgFlip(2n))).toBe(0);
      expect(await g.c.waitEvents(1)).toMatchObject([{ id: 0 }]);
      const page = g.c.eventPage;
      const cons = page.inCons;
      page.inProd = 0xdead;
      page.inCons = (cons + 1000) >>> 0;
      for (let i = 0; i < MAX_PENDING_EVENTS; i++) expect(await status(g.c, pgFlip(2n)), `flip ${i + 1} with in_cons ahead`).toBe(0);
      await expectRefused(g, pgFlip(2n), EBUSY, `flip with ${MAX_PENDING_EVENTS} events waiting behind a bogus in_cons`);
      expect(page.inProd, 'the backend wrote nothing').toBe(0xdead);
      page.inCons = cons;
      // The backend publishes its own in_prod again (ignoring the scribbled one) as it writes.
      await until(() => page.inProd === ((cons + MAX_PENDING_EVENTS) >>> 0), 'in_prod = in_cons + the waiting events');
      const got: number[] = [];
      await until(() => {
        got.push(...g.c.takeEvents().map((e) => e.id));
        return got.length >= MAX_PENDING_EVENTS;
      }, 'the waiting events');
      expect(got).toEqual([...Array(MAX_PENDING_EVENTS).keys()].map((i) => i + 1));
    });
  });

  it('req_prod moved backwards disconnects; the frontend can then reconnect and is served again', async () => {
    await withRawGuest('bad-req-prod-backwards', async (g) => {
      await makeFb(g, 1n, 2n);
      g.c.setReqProd((g.c.ring.sring.rspProd - 1) >>> 0);
      g.c.notify();
      await g.raw.waitBackendState(XenbusState.Closed, 5000);
      expect(await ts.xs.tryRead(`/local/domain/${beDomid}/error/backend/vdispl/${g.domid}/0/error`)).toMatch(/^5 connector 0: req_prod/);
      await until(() => domain(beDomid).mapsHeld === g.backendMapsIdle, 'the backend to unmap the guest');
      await g.raw.dev.switchState(XenbusState.Initialising);
      const again = await RawFrontend.connect(g.p, 'device/vdispl/0', { timeoutMs: 10_000 });
      const c = again.connectors[0]!;
      const b = shbuf(g, FB_BYTES);
      expect(await status(c, dbufCreate(1n, b.firstRef)), 'cookie 1 is free again: the old buffers went with the old connection').toBe(0);
      expect(await status(c, fbAttach(1n, 2n))).toBe(0);
      expect(await status(c, setConfig(2n))).toBe(0);
      expect(await status(c, pgFlip(2n))).toBe(0);
      expect(await c.waitEvents(1)).toMatchObject([{ id: 0, fb_cookie: 2n }]);
      expect((await frontendStatus(g.domid))?.binds).toBe(2);
    });
  });

  it('bogus transport parameters in XenStore (bad ring ref, unbound channel, not a number, missing) close the device with an error and nothing bound', async () => {
    await withGuest(() => startGuest('bad-xenstore-transport'), async (g) => {
      const dev = await XenbusDevice.open(g.p, 'frontend', 'device/vdispl/0');
      const errPath = `/local/domain/${beDomid}/error/backend/vdispl/${g.domid}/0/error`;
      const waitBackend = (s: number, what: string): Promise<void> => until(async () => (await dev.otherendStateNow()) === s, what);
      await waitBackend(XenbusState.InitWait, 'InitWait');
      const req = grantPage(g, beDomid, false);
      const evt = grantPage(g, beDomid, false);
      const reqPort = g.p.events.allocUnbound(beDomid);
      const evtPort = g.p.events.allocUnbound(beDomid);
      const good = { '0/req-ring-ref': req.ref, '0/req-event-channel': reqPort, '0/evt-ring-ref': evt.ref, '0/evt-event-channel': evtPort };
      const rounds: { what: string; nodes: Record<string, string | number>; remove?: string; cleanup?: string; error: RegExp }[] = [
        { what: 'req-ring-ref beyond the grant table', nodes: { ...good, '0/req-ring-ref': 0x7fff_0000 }, error: /^22 connector 0: mapping req-ring-ref .*: invalid grant reference/ /* EINVAL, as a bad gref anywhere else */ },
        { what: 'evt-ring-ref granted to dom0', nodes: { ...good, '0/evt-ring-ref': grantPage(g, 0, false).ref }, error: /^13 connector 0: mapping evt-ring-ref/ },
        { what: 'req-event-channel not allocated', nodes: { ...good, '0/req-event-channel': 999 }, error: /^\d+ connector 0: binding req-event-channel/ },
        { what: 'req-ring-ref not a number', nodes: { ...good, '0/req-ring-ref': '12abc' }, error: /^22 connector 0 req-ring-ref "12abc" is not a number/ },
        { what: 'evt-event-channel missing', nodes: good, remove: '0/evt-event-channel', error: /^2 connector 0 evt-event-channel is missing/ },
        { what: 'a connector 1 the toolstack never configured, 100000x1, written by the guest (refused: EPERM)', nodes: { ...good, '1/resolution': '100000x1', '1/req-ring-ref': req.ref, '1/req-event-channel': reqPort, '1/evt-ring-ref': evt.ref, '1/evt-event-channel': evtPort }, cleanup: '1', error: /^1 connector 1: its resolution was written by the guest, not the toolstack/ },
      ];
      const idle = footprint(g);
      for (const r of rounds) {
        await dev.publish(r.nodes);
        if (r.remove) await g.p.xenstore.rm(`${dev.nodename}/${r.remove}`);
        await dev.switchState(XenbusState.Initialised);
        await waitBackend(XenbusState.Closed, `Closed after ${r.what}`);
        expect(await ts.xs.tryRead(errPath), r.what).toMatch(r.error);
        expect(footprint(g), `${r.what}: nothing mapped or bound`).toEqual(idle);
        expect((await frontendStatus(g.domid))?.connectors).toEqual([]);
        if (r.cleanup) await g.p.xenstore.rm(`${dev.nodename}/${r.cleanup}`);
        await dev.switchState(XenbusState.Initialising);
        await waitBackend(XenbusState.InitWait, `InitWait after ${r.what}`);
      }
      // And the right values connect.
      await dev.publish(good, XenbusState.Initialised);
      await waitBackend(XenbusState.Connected, 'Connected with good transport parameters');
      expect((await frontendStatus(g.domid))?.connectors).toHaveLength(1);
    });
  });

  it('GET_EDID with a buffer larger than the 32 KiB minimum (64 KiB) gets the EDID', async () => {
    await withRawGuest('get-edid-64k', async (g) => {
      const edid = shbuf(g, 2 * XENDISPL_EDID_MAX_SIZE);
      const r = await call(g.c, getEdid(edid.firstRef, 2 * XENDISPL_EDID_MAX_SIZE));
      expect(r.status, 'GET_EDID buffer_sz 65536 ("must not be less than" 32768)').toBe(0);
      expect([...edid.view!.subarray(0, 8)]).toEqual([0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00]);
    });
  });

  it('a guest that closes its device properly leaves nothing behind either', async () => {
    await withRawGuest('well-behaved-close', async (g) => {
      await makeFb(g, 1n, 2n);
      expect(await status(g.c, setConfig(2n))).toBe(0);
      expect(await status(g.c, pgFlip(2n))).toBe(0);
      await g.c.waitEvents(1);
      await g.raw.close();
      expect(await ts.xs.tryRead(`/local/domain/${beDomid}/backend/vdispl/${g.domid}/0/state`)).toBe(String(XenbusState.InitWait));
      await until(() => domain(beDomid).mapsHeld === g.backendMapsIdle, 'the backend to unmap the guest');
    });
  });
  it('PG_FLIP then SET_CONFIG reset in the same batch: both succeed, the accepted flip still completes, the backend keeps serving', async () => {
    await withRawGuest('batch-flip-then-reset', async (g) => {
      await makeFb(g, 1n, 2n);
      expect(await status(g.c, setConfig(2n))).toBe(0);
      const r = await callBatch(g.c, [pgFlip(2n), setConfig(0n, { width: 0, height: 0, bpp: 0 })]);
      expect(r.map((x) => x.status)).toEqual([0, 0]);
      const done = await g.c.waitEvents(1, 1000).catch(() => []);
      expect.soft(done, 'frame done for the accepted flip').toMatchObject([{ id: 0, fb_cookie: 2n }]);
      // The ring still works, and the reset stuck.
      await expectRefused(g, pgFlip(2n), EINVAL, 'PG_FLIP after the reset');
      expect(await status(g.c, setConfig(2n))).toBe(0);
      expect(await status(g.c, pgFlip(2n))).toBe(0);
      expect(await g.c.waitEvents(1)).toMatchObject([{ id: done.length, fb_cookie: 2n }]);
    });
  });

  it('PG_FLIP then SET_CONFIG to another framebuffer in the same batch: the connector ends up showing the SET_CONFIG one', async () => {
    await withRawGuest('batch-flip-then-set-config', async (g) => {
      await makeFb(g, 1n, 2n, 0x12);
      await makeFb(g, 3n, 4n, 0x34);
      expect(await status(g.c, setConfig(2n))).toBe(0);
      const r = await callBatch(g.c, [pgFlip(2n), setConfig(4n)]);
      expect(r.map((x) => x.status)).toEqual([0, 0]);
      expect(await g.c.waitEvents(1)).toMatchObject([{ id: 0, fb_cookie: 2n }]);
      expect((await snapshot(g.domid))?.data, 'SET_CONFIG came last: framebuffer 4 is shown').toEqual(new Uint8Array(FB_BYTES).fill(0x34));
    });
  });

  // Last: with the bug it reports, the snapshot below crashes the backend domain.
  it('PG_FLIP then FB_DETACH and DBUF_DESTROY of its buffer in the same batch: the flipped framebuffer stays mapped while shown, counts stay right', async () => {
    await withRawGuest('batch-flip-then-detach', async (g) => {
      await makeFb(g, 1n, 2n, 0x11);
      await makeFb(g, 3n, 4n, 0x44);
      expect(await status(g.c, setConfig(2n))).toBe(0);
      const r = await callBatch(g.c, [pgFlip(4n), fbDetach(4n), dbufDestroy(3n)]);
      expect(r.map((x) => x.status)).toEqual([0, 0, 0]);
      expect(await g.c.waitEvents(1)).toMatchObject([{ id: 0, fb_cookie: 4n }]);
      // Framebuffer 4 is on screen: it and its buffer live (and stay mapped) until the connector moves off it.
      expect.soft((await frontendStatus(g.domid))?.usage, 'framebuffer 4 and buffer 3 live while shown').toEqual({ buffers: 2, framebuffers: 2, bytes: 2 * FB_BYTES });
      expect.soft(domain(beDomid).mapsHeld, 'buffer 3 still mapped while shown').toBe(g.backendMapsIdle + 2 + 4);
      expect((await snapshot(g.domid))?.data).toEqual(new Uint8Array(FB_BYTES).fill(0x44));
      // Back to framebuffer 2: buffer 3 goes for good, buffer 1 and framebuffer 2 remain.
      expect(await status(g.c, setConfig(2n))).toBe(0);
      await until(() => domain(beDomid).mapsHeld === g.backendMapsIdle + 2 + 2, 'buffer 3 unmapped (rings and buffer 1 left)');
      expect((await frontendStatus(g.domid))?.usage).toEqual({ buffers: 1, framebuffers: 1, bytes: FB_BYTES });
    });
  });
});

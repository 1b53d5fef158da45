/**
 * The VNC output end to end: VncServer (src/present/vnc-server.ts) on real sockets (basePort 0),
 * its clients (vnc-client.ts), the codec (rfb/rfb-update.ts) in an InlineFrameEncoder (and once
 * in a WorkerFrameEncoder), seen through the independent strict test client
 * (test/support/rfb-test-client.ts) or raw sockets. Frames are plain memory drawn with
 * packColor/storePixel; the expected client pixel of every pixel is worked out here from toRgba
 * (channel to the client's max: drop low bits for 2^n - 1, n <= 8; round(v * max / 255)
 * otherwise) or, for a client with exactly the framebuffer's channels, the framebuffer value.
 *
 * Covered:
 * - pictures: sources XRGB8888, RGB565, XRGB1555, RGB888, YUYV, ARGB4444 at 67x33 (with a row
 *   pitch larger than the row and a non-zero offset) x client formats (native; 32 bpp LE r16 g8
 *   b0; 32 bpp BE r0 g8 b16; 32 bpp BE r24 g16 b8; 16 bpp 565 LE and BE; 16 bpp 555; 8 bpp
 *   BGR233; 32 bpp with 10-bit channels) x Raw / Zlib / ZRLE with and without CopyRect: every
 *   decoded pixel exact, then incremental updates carry only the changed tile; CopyRect of
 *   repeated tiles for every source; ZRLE tiles of every kind (solid, 2/4/16-colour palettes,
 *   palette RLE, plain RLE, raw) in every client format;
 * - continuous updates and fences (announcement, pushes without requests, an area, disabling,
 *   fence answers with flags & 7 and the same payload, held behind an update being computed);
 * - mode changes (DesktopSize, ExtendedDesktopSize, neither: clipped and kept), SetDesktopSize
 *   refused with reason 1 status 1, black at the configured size before any frame and after the
 *   connector closes;
 * - RFB 3.3 / 3.7 / 3.8 with None and with VNC authentication (right and wrong password), the
 *   shared flag, several clients with different formats at once, maxClients, a connector without a
 *   port, TeePresenter, the worker encoder (inFlight back to 0), close() (ports refuse).
 *
 * Bad inputs tried (each: that client alone is disconnected with one log line giving the reason,
 * another client keeps getting updates, new clients are accepted): a truncated message then close;
 * unknown message type 7; SetPixelFormat with a colour map, with 24 bpp, with a channel past the
 * pixel; SetEncodings with 5000 entries; ClientCutText claiming 0xFFFFFFFF bytes; a ClientFence
 * payload of 65 bytes; a FramebufferUpdateRequest incremental flag of 2; SetDesktopSize with 0
 * screens; garbage instead of a version; more than 4 KiB during the handshake; a wrong password;
 * a client that never reads (stallMs 300, 1920x1080 noise with continuous updates: disconnected,
 * no more updates computed for it meanwhile). Accepted and kept in step: KeyEvent, PointerEvent,
 * ClientCutText (small and exactly 1 MiB).
 */
import { createConnection, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type PixelFormat, pixelFormatByName } from '../../src/abi/fourcc.js';
import type { ConnectorInfo, ConnectorOutput, Frame, OutputConfig, Presenter } from '../../src/back/presenter.js';
import { TeePresenter } from '../../src/back/tee-presenter.js';
import { DmaBuf } from '../../src/dmabuf/dmabuf.js';
import { type EncodedFrame, type FrameEncoder, type FrameJob, InlineFrameEncoder, WorkerFrameEncoder } from '../../src/present/frame-encoder.js';
import { packColor, storePixel, toRgba } from '../../src/present/pixels.js';
import { RFB_CODEC, rfbCodec, type RfbUpdateParams } from '../../src/present/rfb/rfb-update.js';
import { VncServer } from '../../src/present/vnc-server.js';
import { RfbEncoding, RfbFenceFlag, type RfbPixelFormat, RfbSecurityError, RfbTestClient, type RfbUpdate } from '../support/rfb-test-client.js';

const PAGE = 4096;
const fmt = (name: string): PixelFormat => pixelFormatByName(name)!;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const hash = (k: number): number => Math.imul(k + 1, 2654435761) >>> 24;

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** Resolves when `p` does, or fails the test after `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

// ------------------------------------------------------------------------------------------------
// Frames

type Rgb = [number, number, number];
type Paint = (x: number, y: number) => Rgb;

const noise =
  (seed: number): Paint =>
  (x, y) => [hash(y * 7919 + x + seed), hash(y * 104729 + x * 3 + seed), hash(x * 31 + y * 17 + seed * 5)];

const BANDS: Rgb[] = [
  [255, 0, 0],
  [0, 200, 40],
  [20, 30, 250],
  [250, 250, 10],
];

/** Bands of four colours, a checkerboard, a gradient, then noise. */
const pattern =
  (seed: number): Paint =>
  (x, y) => {
    if (y < 6) return BANDS[(x >> 3) & 3]!;
    if (y < 12) return (x + y) & 1 ? [255, 255, 255] : [0, 0, 0];
    if (y < 18) return [(x * 3) & 0xff, y * 10, 128];
    return noise(seed)(x, y);
  };

interface TestFrame {
  readonly frame: Frame;
  readonly view: Uint8Array;
}

/** A frame over plain (or shared) memory: rows at `offset`, pitch = row + `pad` bytes of 0xa5. */
function makeFrame(format: PixelFormat, width: number, height: number, paint: Paint, o: { offset?: number; pad?: number; shared?: boolean; dmabuf?: boolean } = {}): TestFrame {
  const offset = o.offset ?? 16;
  const rowBytes = Math.ceil((width * format.bpp) / 8);
  const pitch = rowBytes + (o.pad ?? 12);
  const size = offset + pitch * height;
  const pages = Math.ceil(size / PAGE);
  const view = new Uint8Array(o.shared ? new SharedArrayBuffer(pages * PAGE) : new ArrayBuffer(pages * PAGE)).fill(0xa5);
  const page = (i: number): Uint8Array => view.subarray(i * PAGE, (i + 1) * PAGE);
  const dmabuf = o.dmabuf ? DmaBuf.create({ size: pages * PAGE, page, contiguous: view, release: () => undefined }) : undefined;
  const frame: Frame = { fbCookie: 1n, format, width, height, pitch, offset, size, view, page, dmabuf };
  const tf = { frame, view };
  paintAll(tf, paint);
  return tf;
}

function paintAll(tf: TestFrame, paint: Paint): void {
  const { width, height } = tf.frame;
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) setColor(tf, x, y, paint(x, y));
}

/** Sets pixel (x, y) (for YUYV: the pair starting at even x; odd x is ignored). */
function setColor(tf: TestFrame, x: number, y: number, [r, g, b]: Rgb): void {
  const f = tf.frame;
  const p = f.offset + y * f.pitch;
  if (f.format.layout.kind === 'yuv422') {
    if (x & 1) return;
    storePixel(tf.view, p + x * 2, packColor(f.format, r, g, b), x + 1 < f.width ? 4 : 2);
    return;
  }
  const cpp = f.format.bpp / 8;
  storePixel(tf.view, p + x * cpp, packColor(f.format, r, g, b), cpp);
}

function rgbAt(tf: TestFrame, x: number, y: number): Rgb {
  const f = tf.frame;
  const c = toRgba({ bytes: tf.view, offset: f.offset, pitch: f.pitch, width: f.width, height: f.height, format: f.format }, x, y, 1, 1);
  return [c[0]!, c[1]!, c[2]!];
}

/** Changes pixel (x, y) to a colour surely different (the inverse of its own). */
function invert(tf: TestFrame, x: number, y: number): void {
  const [r, g, b] = rgbAt(tf, x, y);
  setColor(tf, x, y, [255 - r, 255 - g, 255 - b]);
}

function scale(v: number, max: number): number {
  for (let bits = 1; bits <= 8; bits++) if (max === (1 << bits) - 1) return v >> (8 - bits);
  return Math.round((v * max) / 255);
}

/** What a client in `pf` must hold for the visible `width` x `height` of `tf`. */
function expectedPicture(tf: TestFrame, pf: RfbPixelFormat, width = tf.frame.width, height = tf.frame.height): Uint32Array {
  const f = tf.frame;
  const rgba = toRgba({ bytes: tf.view, offset: f.offset, pitch: f.pitch, width: f.width, height: f.height, format: f.format }, 0, 0, width, height);
  const l = f.format.layout;
  let mask: number | undefined;
  if (l.kind === 'rgb' && f.format.bpp === pf.bitsPerPixel) {
    const same = (c: { shift: number; bits: number }, max: number, shift: number): boolean => c.shift === shift && max === 2 ** c.bits - 1;
    if (same(l.r, pf.redMax, pf.redShift) && same(l.g, pf.greenMax, pf.greenShift) && same(l.b, pf.blueMax, pf.blueShift)) mask = ((pf.redMax << pf.redShift) | (pf.greenMax << pf.greenShift) | (pf.blueMax << pf.blueShift)) >>> 0;
  }
  const cpp = f.format.bpp / 8;
  const out = new Uint32Array(width * height);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (mask !== undefined) {
        let v = 0;
        const p = f.offset + y * f.pitch + x * cpp;
        for (let k = cpp - 1; k >= 0; k--) v = v * 256 + tf.view[p + k]!;
        out[i] = (v & mask) >>> 0;
      } else {
        out[i] = ((scale(rgba[i * 4]!, pf.redMax) << pf.redShift) | (scale(rgba[i * 4 + 1]!, pf.greenMax) << pf.greenShift) | (scale(rgba[i * 4 + 2]!, pf.blueMax) << pf.blueShift)) >>> 0;
      }
    }
  return out;
}

/** Every pixel of the client's framebuffer inside the frame's visible part equals what it must be. */
function expectPicture(c: RfbTestClient, tf: TestFrame, what: string, visible = { width: tf.frame.width, height: tf.frame.height }): void {
  const w = Math.min(c.width, visible.width);
  const h = Math.min(c.height, visible.height);
  const want = expectedPicture(tf, c.pixelFormat, visible.width, visible.height);
  let bad = 0;
  let first = '';
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const got = c.pixel(x, y);
      const exp = want[y * visible.width + x]!;
      if (got !== exp && bad++ === 0) first = `(${x}, ${y}): got 0x${got.toString(16)}, want 0x${exp.toString(16)}`;
    }
  expect(bad, `${what}: ${bad} pixels differ; first ${first}`).toBe(0);
}

function expectBlack(c: RfbTestClient): void {
  let bad = 0;
  for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) if (c.pixel(x, y) !== 0) bad++;
  expect(bad, 'non-black pixels').toBe(0);
}

const pixelRects = (u: RfbUpdate): { x: number; y: number; w: number; h: number }[] => u.rects.filter((r) => r.encoding >= 0 && r.encoding !== RfbEncoding.CopyRect).map(({ x, y, w, h }) => ({ x, y, w, h }));
const areaOf = (u: RfbUpdate): number => u.rects.filter((r) => r.encoding >= 0).reduce((n, r) => n + r.w * r.h, 0);

// ------------------------------------------------------------------------------------------------
// Servers and clients

/** Counts encode() calls per slot; can hold jobs back until released. */
class CountingEncoder implements FrameEncoder<RfbUpdateParams> {
  readonly calls = new Map<string, number>();
  total = 0;
  private gate: { promise: Promise<void>; open: () => void } | undefined;

  constructor(readonly inner: FrameEncoder<RfbUpdateParams>) {}

  hold(): void {
    let open!: () => void;
    const promise = new Promise<void>((r) => (open = r));
    this.gate = { promise, open };
  }

  release(): void {
    this.gate?.open();
    this.gate = undefined;
  }

  encode(job: FrameJob<RfbUpdateParams>): Promise<EncodedFrame> {
    this.total++;
    this.calls.set(job.slot, (this.calls.get(job.slot) ?? 0) + 1);
    const g = this.gate;
    return g ? g.promise.then(() => this.inner.encode(job)) : this.inner.encode(job);
  }

  forget(slot: string): void {
    this.inner.forget(slot);
  }

  close(): Promise<void> {
    this.release();
    return this.inner.close();
  }
}

interface Harness {
  readonly vnc: VncServer;
  readonly port: number;
  readonly log: string[];
  readonly encoder: CountingEncoder;
  readonly out: ConnectorOutput;
}

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function info(index: number, width = 67, height = 33): ConnectorInfo {
  return { frontendDomid: 1, devid: 0, index, uniqueId: `DP-${index + 1}`, width, height };
}

/** Connecting to `port` is refused. */
async function expectRefused(port: number): Promise<void> {
  const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(undefined);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e));
  });
  expect(err?.code, `port ${port} should refuse connections`).toBe('ECONNREFUSED');
}

async function startVnc(o: { width?: number; height?: number; password?: string; stallMs?: number; handshakeMs?: number; maxClients?: number; encoder?: FrameEncoder<RfbUpdateParams>; connectors?: number } = {}): Promise<Harness> {
  const log: string[] = [];
  const encoder = new CountingEncoder(o.encoder ?? new InlineFrameEncoder(rfbCodec));
  const width = o.width ?? 67;
  const height = o.height ?? 33;
  const vnc = await VncServer.start({
    connectors: Array.from({ length: o.connectors ?? 1 }, (_, i) => ({ name: `test/DP-${i + 1}`, width, height })),
    basePort: 0,
    password: o.password,
    encoder,
    log: (t) => log.push(t),
    ...(o.stallMs === undefined ? {} : { stallMs: o.stallMs }),
    ...(o.maxClients === undefined ? {} : { maxClients: o.maxClients }),
    ...(o.handshakeMs === undefined ? {} : { handshakeMs: o.handshakeMs }),
  });
  const ports = vnc.ports().map((p) => p.port);
  cleanups.push(async () => {
    // (Clients were closed first.) A worker encoder is left with no job in flight.
    const inner = encoder.inner;
    if (inner instanceof WorkerFrameEncoder) await until(() => inner.inFlight === 0, 'no encoder jobs in flight', 3000);
    await vnc.close();
    for (const p of ports) await expectRefused(p);
  });
  return { vnc, port: ports[0]!, log, encoder, out: vnc.openConnector(info(0, width, height)) };
}

async function connect(h: Harness | number, o: { version?: '3.3' | '3.7' | '3.8'; password?: string; shared?: boolean } = {}): Promise<RfbTestClient> {
  const c = await RfbTestClient.connect({ port: typeof h === 'number' ? h : h.port, connectTimeoutMs: 5000, ...o });
  cleanups.push(() => c.close());
  return c;
}

function peerOf(c: RfbTestClient): string {
  return `127.0.0.1:${(c as unknown as { socket: Socket }).socket.localPort}`;
}

/** Log lines about one client (by its address). */
function linesOf(log: readonly string[], peer: string): string[] {
  return log.filter((l) => l.includes(`client ${peer}: `) || l.includes(`client ${peer} `));
}

/** The lines giving the reason a client was disconnected. */
function reasonLines(log: readonly string[], peer: string): string[] {
  return linesOf(log, peer).filter((l) => l.endsWith('; disconnected'));
}

function show(h: Harness, tf: TestFrame, width = tf.frame.width, height = tf.frame.height): void {
  const config: OutputConfig = { frame: tf.frame, x: 0, y: 0, width, height };
  h.out.configure(config);
  void h.out.present(tf.frame);
}

/** A full (non-incremental) update, checked exact. */
async function fullUpdate(c: RfbTestClient, tf: TestFrame, what: string): Promise<RfbUpdate> {
  c.requestUpdate(false);
  const u = await c.nextUpdate(5000);
  expectPicture(c, tf, what);
  return u;
}

/** A client with continuous updates on (announced first). */
async function continuous(c: RfbTestClient, encodings: number[] = [RfbEncoding.Raw]): Promise<RfbUpdate> {
  c.setEncodings([...encodings, RfbEncoding.ContinuousUpdates]);
  await until(() => c.endOfContinuousUpdates === 1, 'EndOfContinuousUpdates');
  c.enableContinuousUpdates(true);
  return c.nextUpdate(5000);
}

// A minimal client on a raw socket, for what the test client cannot do (not reading, garbage).
class RawClient {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  received = 0;
  ended = false;
  readonly closed: Promise<void>;
  /** The address the server sees (taken at connect: a closed socket has none). */
  readonly peer: string;

  private constructor(readonly sock: Socket) {
    this.peer = `127.0.0.1:${sock.localPort}`;
    sock.on('data', (d: Buffer) => {
      this.received += d.length;
      this.buf = Buffer.concat([this.buf, d]);
      this.wake?.();
    });
    sock.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      sock.on('close', () => {
        this.ended = true;
        this.wake?.();
        resolve();
      }),
    );
  }

  static async connect(port: number): Promise<RawClient> {
    const sock = createConnection({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    const c = new RawClient(sock);
    cleanups.push(() => {
      sock.destroy();
    });
    return c;
  }


  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.ended) throw new Error(`connection closed with ${this.buf.length} of ${n} bytes`);
      await new Promise<void>((r) => (this.wake = r));
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  write(b: Uint8Array | string): void {
    this.sock.write(b);
  }

  /** RFB 3.8, security None, ClientInit shared; returns the ServerInit size. */
  async handshake(): Promise<{ width: number; height: number }> {
    expect((await this.read(12)).toString('latin1')).toBe('RFB 003.008\n');
    this.write('RFB 003.008\n');
    expect([...(await this.read(2))]).toEqual([1, 1]);
    this.write(Uint8Array.of(1));
    expect((await this.read(4)).readUInt32BE(0)).toBe(0);
    this.write(Uint8Array.of(1));
    const si = await this.read(24);
    await this.read(si.readUInt32BE(20));
    return { width: si.readUInt16BE(0), height: si.readUInt16BE(2) };
  }
}

function setEncodingsBytes(list: number[]): Buffer {
  const b = Buffer.alloc(4 + 4 * list.length);
  b[0] = 2;
  b.writeUInt16BE(list.length, 2);
  list.forEach((e, i) => b.writeInt32BE(e, 4 + 4 * i));
  return b;
}

function rectMsg(type: number, flag: number, x: number, y: number, w: number, h: number): Buffer {
  const b = Buffer.alloc(10);
  b[0] = type;
  b[1] = flag;
  b.writeUInt16BE(x, 2);
  b.writeUInt16BE(y, 4);
  b.writeUInt16BE(w, 6);
  b.writeUInt16BE(h, 8);
  return b;
}

function pixelFormatBytes(pf: RfbPixelFormat): Buffer {
  const b = Buffer.alloc(20);
  b[4] = pf.bitsPerPixel;
  b[5] = pf.depth;
  b[6] = pf.bigEndian ? 1 : 0;
  b[7] = pf.trueColour ? 1 : 0;
  b.writeUInt16BE(pf.redMax, 8);
  b.writeUInt16BE(pf.greenMax, 10);
  b.writeUInt16BE(pf.blueMax, 12);
  b[14] = pf.redShift;
  b[15] = pf.greenShift;
  b[16] = pf.blueShift;
  return b;
}

// ------------------------------------------------------------------------------------------------

function pf(bitsPerPixel: 8 | 16 | 32, depth: number, bigEndian: boolean, r: [number, number], g: [number, number], b: [number, number]): RfbPixelFormat {
  return { bitsPerPixel, depth, bigEndian, trueColour: true, redMax: r[0], redShift: r[1], greenMax: g[0], greenShift: g[1], blueMax: b[0], blueShift: b[1] };
}

const CLIENT_FORMATS: [string, RfbPixelFormat | undefined][] = [
  ['native', undefined],
  ['32 LE r16 g8 b0', pf(32, 24, false, [255, 16], [255, 8], [255, 0])],
  ['32 BE r0 g8 b16', pf(32, 24, true, [255, 0], [255, 8], [255, 16])],
  ['32 BE r24 g16 b8', pf(32, 24, true, [255, 24], [255, 16], [255, 8])],
  ['16 LE 565', pf(16, 16, false, [31, 11], [63, 5], [31, 0])],
  ['16 BE 565', pf(16, 16, true, [31, 11], [63, 5], [31, 0])],
  ['16 LE 555', pf(16, 15, false, [31, 10], [31, 5], [31, 0])],
  ['8 BGR233', pf(8, 8, false, [7, 0], [7, 3], [3, 6])],
  ['32 LE 10-bit', pf(32, 30, false, [1023, 20], [1023, 10], [1023, 0])],
];

const ENCODINGS: [string, number[], number][] = [
  ['Raw', [RfbEncoding.Raw], RfbEncoding.Raw],
  ['Raw + CopyRect', [RfbEncoding.Raw, RfbEncoding.CopyRect], RfbEncoding.Raw],
  ['Zlib', [RfbEncoding.Zlib, RfbEncoding.Raw], RfbEncoding.Zlib],
  ['Zlib + CopyRect', [RfbEncoding.CopyRect, RfbEncoding.Zlib], RfbEncoding.Zlib],
  ['ZRLE', [RfbEncoding.ZRLE, RfbEncoding.Zlib, RfbEncoding.Raw], RfbEncoding.ZRLE],
  ['ZRLE + CopyRect', [RfbEncoding.ZRLE, RfbEncoding.CopyRect, RfbEncoding.Raw], RfbEncoding.ZRLE],
];

const SOURCES = ['XRGB8888', 'RGB565', 'XRGB1555', 'RGB888', 'YUYV', 'ARGB4444'];

describe('pictures: source formats x client formats x encodings', () => {
  for (const source of SOURCES) {
    describe(source, () => {
      for (const [clientName, clientPf] of CLIENT_FORMATS) {
        it(`${clientName}: exact with every encoding; incremental updates carry only the changed tile`, async () => {
          const h = await startVnc();
          const tf = makeFrame(fmt(source), 67, 33, pattern(source.length));
          show(h, tf);
          const c = await connect(h);
          expect([c.width, c.height]).toEqual([67, 33]);
          if (clientPf) c.setPixelFormat(clientPf);
          for (const [encName, list, enc] of ENCODINGS) {
            const what = `${source} -> ${clientName}, ${encName}`;
            c.setEncodings(list);
            const u = await fullUpdate(c, tf, what);
            expect(areaOf(u), what).toBe(67 * 33);
            expect(u.rects.every((r) => r.encoding === enc || r.encoding === RfbEncoding.CopyRect), `${what}: encodings ${u.rects.map((r) => r.encoding).join()}`).toBe(true);
            // A pixel in the first tile, then one in the second (3 pixels wide).
            invert(tf, 10, 20);
            void h.out.present(tf.frame);
            c.requestUpdate(true);
            const u1 = await c.nextUpdate(5000);
            expect(pixelRects(u1), what).toEqual([{ x: 0, y: 0, w: 64, h: 33 }]);
            expectPicture(c, tf, `${what}, after a change in tile 0`);
            invert(tf, 64, 30);
            void h.out.present(tf.frame);
            c.requestUpdate(true);
            const u2 = await c.nextUpdate(5000);
            expect(pixelRects(u2), what).toEqual([{ x: 64, y: 0, w: 3, h: 33 }]);
            expectPicture(c, tf, `${what}, after a change in tile 1`);
          }
          expect(c.error).toBeUndefined();
          expect(h.log.filter((l) => l.endsWith('; disconnected'))).toEqual([]);
        });
      }

      it('repeated tiles go as CopyRect (Raw, Zlib, ZRLE), exact in the native and a 16-bit format', async () => {
        // 200x130: tiles (0,0), (1,0) and (0,1) hold the same noise; (2,1) is one colour like (1,1).
        const paint: Paint = (x, y) => {
          const tx = x >> 6;
          const ty = y >> 6;
          if ((tx === 0 && ty === 0) || (tx === 1 && ty === 0) || (tx === 0 && ty === 1)) return noise(3)(x & 63, y & 63);
          if (ty === 1 && (tx === 1 || tx === 2)) return [40, 80, 160];
          return noise(9)(x, y);
        };
        const h = await startVnc({ width: 200, height: 130 });
        const tf = makeFrame(fmt(source), 200, 130, paint, { pad: 0, offset: 0 });
        show(h, tf);
        for (const clientPf of [undefined, pf(16, 16, true, [31, 11], [63, 5], [31, 0])]) {
          const c = await connect(h);
          if (clientPf) c.setPixelFormat(clientPf);
          for (const enc of [RfbEncoding.Raw, RfbEncoding.Zlib, RfbEncoding.ZRLE]) {
            c.setEncodings([enc, RfbEncoding.CopyRect]);
            const u = await fullUpdate(c, tf, `${source} CopyRect with ${enc}`);
            const copies = u.rects.filter((r) => r.encoding === RfbEncoding.CopyRect);
            expect(copies.length, `copies with encoding ${enc}`).toBeGreaterThanOrEqual(2);
            expect(areaOf(u)).toBe(200 * 130);
          }
        }
      });
    });
  }

  it('ZRLE tiles of every kind (solid, 2/4/16-colour palettes, palette RLE, plain RLE, raw) in every client format', async () => {
    // 7 tiles of 64x64 side by side.
    const palette = (n: number, k: number): Rgb => [(k * 97) % 256, (k * 57 + n) % 256, (k * 31 + 3 * n) % 256];
    const paint: Paint = (x, y) => {
      const i = (y * 64 + (x & 63)) | 0;
      switch (x >> 6) {
        case 0:
          return [9, 99, 199];
        case 1:
          return palette(2, (x + y) & 1);
        case 2:
          return palette(4, (x >> 1) & 3);
        case 3:
          return palette(16, (x * 7 + y * 3) & 15);
        case 4:
          return palette(100, (i >> 4) % 100); // runs of 16 among 100 colours
        case 5:
          return palette(200, 1 + ((i >> 4) % 200)); // 200 colours: too many for a palette
        default:
          return noise(77)(x, y);
      }
    };
    const h = await startVnc({ width: 448, height: 64 });
    const tf = makeFrame(fmt('XRGB8888'), 448, 64, paint);
    show(h, tf);
    for (const [name, clientPf] of CLIENT_FORMATS) {
      const c = await connect(h);
      if (clientPf) c.setPixelFormat(clientPf);
      c.setEncodings([RfbEncoding.ZRLE]);
      const u = await fullUpdate(c, tf, `ZRLE tiles, ${name}`);
      expect(u.rects.map((r) => r.encoding)).toEqual([RfbEncoding.ZRLE]);
      c.close();
    }
  });
});

// ------------------------------------------------------------------------------------------------

describe('continuous updates and fences', () => {
  it('SetEncodings with ContinuousUpdates and Fence: EndOfContinuousUpdates and a fence request, once', async () => {
    const h = await startVnc();
    const c = await connect(h);
    c.setEncodings([RfbEncoding.Raw, RfbEncoding.ContinuousUpdates, RfbEncoding.Fence]);
    await until(() => c.endOfContinuousUpdates === 1 && c.fences.length === 1, 'the announcements');
    expect(c.fences[0]!.flags & RfbFenceFlag.Request).not.toBe(0);
    expect(c.fences[0]!.payload.length).toBeLessThanOrEqual(64);
    // Again: nothing new.
    c.setEncodings([RfbEncoding.Raw, RfbEncoding.ContinuousUpdates, RfbEncoding.Fence]);
    c.requestUpdate(false);
    await c.nextUpdate(5000);
    expect(c.endOfContinuousUpdates).toBe(1);
    expect(c.fences.length).toBe(1);
    expect(c.error).toBeUndefined();
  });

  it('once enabled, every present() pushes an update without requests; disabling ends them with EndOfContinuousUpdates', async () => {
    const h = await startVnc();
    const tf = makeFrame(fmt('XRGB8888'), 67, 33, pattern(1));
    show(h, tf);
    const c = await connect(h);
    const first = await continuous(c, [RfbEncoding.ZRLE]);
    expect(areaOf(first)).toBe(67 * 33);
    expectPicture(c, tf, 'first pushed update');
    for (let i = 0; i < 4; i++) {
      invert(tf, (i * 17) % 64, (i * 7) % 33);
      void h.out.present(tf.frame);
      const u = await c.nextUpdate(5000);
      expect(pixelRects(u)).toEqual([{ x: 0, y: 0, w: 64, h: 33 }]);
      expectPicture(c, tf, `pushed update ${i}`);
    }
    // A flip with the same pixels: nothing to send.
    void h.out.present(tf.frame);
    await sleep(150);
    expect(c.updates).toBe(5);
    // An incremental request is ignored while they are on; a non-incremental one is answered.
    c.requestUpdate(true);
    await sleep(100);
    expect(c.updates).toBe(5);
    c.requestUpdate(false);
    const whole = await c.nextUpdate(5000);
    expect(areaOf(whole)).toBe(67 * 33);
    c.enableContinuousUpdates(false);
    await until(() => c.endOfContinuousUpdates === 2, 'EndOfContinuousUpdates after disabling');
    invert(tf, 1, 1);
    void h.out.present(tf.frame);
    await sleep(200);
    expect(c.updates).toBe(6);
    // Back to requests.
    c.requestUpdate(true);
    const u = await c.nextUpdate(5000);
    expect(pixelRects(u)).toEqual([{ x: 0, y: 0, w: 64, h: 33 }]);
    expectPicture(c, tf, 'after disabling');
  });

  it('continuous updates of an area: changes outside it are not pushed', async () => {
    const h = await startVnc({ width: 200, height: 100 });
    const tf = makeFrame(fmt('RGB565'), 200, 100, noise(2));
    show(h, tf);
    const c = await connect(h);
    c.requestUpdate(false);
    await c.nextUpdate(5000);
    c.setEncodings([RfbEncoding.Raw, RfbEncoding.ContinuousUpdates]);
    await until(() => c.endOfContinuousUpdates === 1, 'EndOfContinuousUpdates');
    c.enableContinuousUpdates(true, { x: 0, y: 0, w: 64, h: 64 });
    await sleep(100);
    const before = c.updates;
    invert(tf, 150, 80);
    void h.out.present(tf.frame);
    await sleep(200);
    expect(c.updates).toBe(before);
    invert(tf, 10, 10);
    void h.out.present(tf.frame);
    const u = await c.nextUpdate(5000);
    for (const r of pixelRects(u)) expect(r.x + r.w <= 64 && r.y + r.h <= 64, JSON.stringify(r)).toBe(true);
    expect(c.rgb(10, 10)).toEqual(rgbAt(tf, 10, 10).map((v, i) => Math.round(((v >> (i === 1 ? 2 : 3)) * 255) / (i === 1 ? 63 : 31))));
  });

  it('a client fence request is answered with flags & 3 (BlockBefore, BlockAfter; SyncNext is not offered) and the same payload; a fence without the request bit is not', async () => {
    const h = await startVnc();
    const c = await connect(h);
    c.setEncodings([RfbEncoding.Raw, RfbEncoding.Fence]);
    await until(() => c.fences.length === 1, 'the server fence request');
    const payloads = [Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), new Uint8Array(0), Uint8Array.from({ length: 64 }, (_, i) => 255 - i)];
    c.sendFence(RfbFenceFlag.Request | RfbFenceFlag.BlockBefore | RfbFenceFlag.BlockAfter | RfbFenceFlag.SyncNext | 0x40 | 0x1000, payloads[0]!);
    c.sendFence(RfbFenceFlag.Request, payloads[1]!);
    c.sendFence(RfbFenceFlag.Request | RfbFenceFlag.BlockAfter, payloads[2]!);
    c.sendFence(RfbFenceFlag.BlockBefore, Uint8Array.of(42));
    await until(() => c.fences.length === 4, 'three fence answers');
    await sleep(100);
    expect(c.fences.slice(1).map((f) => ({ flags: f.flags, payload: [...f.payload] }))).toEqual([
      { flags: 3, payload: [...payloads[0]!] },
      { flags: 0, payload: [] },
      { flags: 2, payload: [...payloads[2]!] },
    ]);
    expect(c.error).toBeUndefined();
  });

  it('a fence answer waits behind the update being computed (stream order)', async () => {
    const h = await startVnc();
    const tf = makeFrame(fmt('XRGB8888'), 67, 33, noise(5));
    show(h, tf);
    const c = await connect(h);
    c.setEncodings([RfbEncoding.ZRLE, RfbEncoding.Fence]);
    await until(() => c.fences.length === 1, 'the server fence request');
    // Record the order in which the client sees updates and fences.
    const order: string[] = [];
    const fences = c.fences;
    const push = fences.push.bind(fences);
    fences.push = (...items) => {
      order.push(`fence after ${c.updates} updates`);
      return push(...items);
    };
    h.encoder.hold();
    const calls = h.encoder.total;
    c.requestUpdate(false);
    await until(() => h.encoder.total === calls + 1, 'the update to start');
    c.sendFence(RfbFenceFlag.Request | RfbFenceFlag.BlockBefore, Uint8Array.of(7, 7));
    await sleep(150);
    expect(order, 'the fence answer must not overtake the update being computed').toEqual([]);
    h.encoder.release();
    await c.nextUpdate(5000);
    await until(() => order.length === 1, 'the fence answer');
    expect(order).toEqual(['fence after 1 updates']);
    expectPicture(c, tf, 'the update');
    // With nothing being computed, the answer comes at once.
    c.sendFence(RfbFenceFlag.Request, Uint8Array.of(1));
    await until(() => order.length === 2, 'the second fence answer');
  });
});

// ------------------------------------------------------------------------------------------------

describe('sizes and modes', () => {
  it('before any frame: black at the configured size (Raw and ZRLE), then the frame once configured', async () => {
    const h = await startVnc({ width: 80, height: 40 });
    const c = await connect(h);
    expect([c.width, c.height]).toEqual([80, 40]);
    expect(c.pixelFormat).toEqual(pf(32, 24, false, [255, 16], [255, 8], [255, 0]));
    c.requestUpdate(false);
    let u = await c.nextUpdate(5000);
    expect(areaOf(u)).toBe(80 * 40);
    expectBlack(c);
    const z = await connect(h);
    z.setEncodings([RfbEncoding.ZRLE]);
    z.setPixelFormat(pf(16, 16, false, [31, 11], [63, 5], [31, 0]));
    z.requestUpdate(false);
    u = await z.nextUpdate(5000);
    expect(areaOf(u)).toBe(80 * 40);
    expectBlack(z);
    // A flip without a mode still shows nothing.
    const tf = makeFrame(fmt('XRGB8888'), 80, 40, noise(1));
    void h.out.present(tf.frame);
    c.requestUpdate(false);
    await c.nextUpdate(5000);
    expectBlack(c);
    // Configured at the same size: the frame.
    h.out.configure({ frame: tf.frame, x: 0, y: 0, width: 80, height: 40 });
    c.requestUpdate(true);
    await c.nextUpdate(5000);
    expectPicture(c, tf, 'once configured');
    // The connector goes away: black again (same size, no DesktopSize needed).
    h.out.close();
    c.requestUpdate(true);
    await c.nextUpdate(5000);
    expectBlack(c);
  });

  it('a mode change: DesktopSize / ExtendedDesktopSize clients get the pseudo-rect (an update of its own), then the whole new frame; a client with neither keeps its size, clipped', async () => {
    const h = await startVnc();
    const f1 = makeFrame(fmt('XRGB8888'), 67, 33, pattern(1));
    show(h, f1);
    const ds = await connect(h);
    ds.setEncodings([RfbEncoding.Raw, RfbEncoding.DesktopSize]);
    await fullUpdate(ds, f1, 'DesktopSize client, first frame');
    const eds = await connect(h);
    // LastRect is used for clients that also speak ContinuousUpdates (vncsnapshot announces
    // LastRect without decoding it); this one has not turned them on.
    eds.setEncodings([RfbEncoding.ZRLE, RfbEncoding.ExtendedDesktopSize, RfbEncoding.LastRect, RfbEncoding.ContinuousUpdates]);
    // The layout is told as soon as the client says it understands it, in an update of its own
    // (one with ExtendedDesktopSize must not change pixels); the pixels follow on the next request.
    eds.requestUpdate(false);
    const layout = await eds.nextUpdate(5000);
    expect(layout.rects).toEqual([{ x: 0, y: 0, w: 67, h: 33, encoding: RfbEncoding.ExtendedDesktopSize }]);
    const first = await fullUpdate(eds, f1, 'ExtendedDesktopSize client, first frame');
    expect(first.rects.at(-1)!.encoding).toBe(RfbEncoding.LastRect);
    const none = await connect(h);
    none.setEncodings([RfbEncoding.Zlib]);
    await fullUpdate(none, f1, 'plain client, first frame');
    const peer = peerOf(none);

    // The guest sets a bigger mode, in another format.
    const f2 = makeFrame(fmt('RGB565'), 100, 50, pattern(2));
    show(h, f2);
    for (const c of [ds, eds, none]) c.requestUpdate(true);
    // The new size first, alone; then (an incremental request is enough) the whole new frame.
    expect((await ds.nextUpdate(5000)).rects).toEqual([{ x: 0, y: 0, w: 100, h: 50, encoding: RfbEncoding.DesktopSize }]);
    expect([ds.width, ds.height]).toEqual([100, 50]);
    ds.requestUpdate(true);
    const u1 = await ds.nextUpdate(5000);
    expect(areaOf(u1)).toBe(100 * 50);
    expectPicture(ds, f2, 'DesktopSize client, new mode');
    expect((await eds.nextUpdate(5000)).rects).toEqual([{ x: 0, y: 0, w: 100, h: 50, encoding: RfbEncoding.ExtendedDesktopSize }]);
    expect(eds.desktopSizes.at(-1)).toEqual({ encoding: RfbEncoding.ExtendedDesktopSize, x: 0, y: 0, w: 100, h: 50, screens: [{ id: 0, x: 0, y: 0, w: 100, h: 50, flags: 0 }] });
    eds.requestUpdate(true);
    const u2 = await eds.nextUpdate(5000);
    expect(areaOf(u2)).toBe(100 * 50);
    expectPicture(eds, f2, 'ExtendedDesktopSize client, new mode');
    const u3 = await none.nextUpdate(5000);
    expect(u3.rects.every((r) => r.encoding === RfbEncoding.Zlib)).toBe(true);
    expect([none.width, none.height]).toEqual([67, 33]);
    expectPicture(none, f2, 'plain client, clipped', { width: 100, height: 50 });
    expect(linesOf(h.log, peer).filter((l) => /cannot be told/.test(l))).toHaveLength(1);

    // Smaller again: the plain client keeps 67x33 and gets the 40x20 that exists.
    const f3 = makeFrame(fmt('XRGB8888'), 40, 20, noise(3));
    show(h, f3);
    for (const c of [ds, eds, none]) c.requestUpdate(true);
    await ds.nextUpdate(5000);
    expect([ds.width, ds.height]).toEqual([40, 20]);
    ds.requestUpdate(true);
    await ds.nextUpdate(5000);
    expectPicture(ds, f3, 'DesktopSize client, 40x20');
    await eds.nextUpdate(5000);
    eds.requestUpdate(true);
    await eds.nextUpdate(5000);
    expectPicture(eds, f3, 'ExtendedDesktopSize client, 40x20');
    const u4 = await none.nextUpdate(5000);
    for (const r of pixelRects(u4)) expect(r.x + r.w <= 40 && r.y + r.h <= 20).toBe(true);
    expect([none.width, none.height]).toEqual([67, 33]);
    expectPicture(none, f3, 'plain client, 40x20 of 67x33');
    for (const c of [ds, eds, none]) expect(c.error).toBeUndefined();
    expect(h.vnc.figures()[0]!.clients).toBe(3);
    expect(h.log.filter((l) => l.endsWith('; disconnected'))).toEqual([]);
  });

  it('SetDesktopSize is refused: ExtendedDesktopSize reason 1 (this client) status 1 (prohibited); the size stays', async () => {
    const h = await startVnc();
    const tf = makeFrame(fmt('XRGB8888'), 67, 33, noise(4));
    show(h, tf);
    const c = await connect(h);
    c.setEncodings([RfbEncoding.Raw, RfbEncoding.ExtendedDesktopSize]);
    // The layout, in an update of its own (one with ExtendedDesktopSize must not change pixels).
    c.requestUpdate(false);
    expect((await c.nextUpdate(5000)).rects).toEqual([{ x: 0, y: 0, w: 67, h: 33, encoding: RfbEncoding.ExtendedDesktopSize }]);
    await fullUpdate(c, tf, 'first');
    const msg = Buffer.alloc(8 + 16);
    msg[0] = 251;
    msg.writeUInt16BE(1024, 2);
    msg.writeUInt16BE(768, 4);
    msg[6] = 1;
    msg.writeUInt16BE(1024, 8 + 8);
    msg.writeUInt16BE(768, 8 + 10);
    c.sendRaw(msg);
    c.requestUpdate(true);
    const u = await c.nextUpdate(5000);
    expect(u.rects).toEqual([{ x: 1, y: 1, w: 67, h: 33, encoding: RfbEncoding.ExtendedDesktopSize }]);
    expect([c.width, c.height]).toEqual([67, 33]);
    // Still fine.
    invert(tf, 3, 3);
    void h.out.present(tf.frame);
    c.requestUpdate(true);
    await c.nextUpdate(5000);
    expectPicture(c, tf, 'after SetDesktopSize');
    expect(c.error).toBeUndefined();
  });

  it('a non-incremental request for an area the (smaller) frame does not cover does not keep the server computing', async () => {
    // On the worker encoder: with an InlineFrameEncoder a spin here is all promise microtasks and
    // freezes the whole process (no timer can fire to fail the test).
    const h = await startVnc({ encoder: new WorkerFrameEncoder<RfbUpdateParams>(RFB_CODEC) });
    const f1 = makeFrame(fmt('XRGB8888'), 67, 33, noise(1));
    show(h, f1);
    const c = await connect(h);
    await fullUpdate(c, f1, 'first');
    const f2 = makeFrame(fmt('XRGB8888'), 40, 20, noise(2));
    show(h, f2);
    c.requestUpdate(true);
    await c.nextUpdate(5000);
    expectPicture(c, f2, '40x20 of 67x33');
    c.requestUpdate(false, { x: 50, y: 0, w: 17, h: 33 });
    // It is answered, with an empty update.
    expect((await c.nextUpdate(5000)).rects).toEqual([]);
    await sleep(100);
    const calls = h.encoder.total;
    await sleep(300);
    expect(h.encoder.total - calls, 'updates computed in 300 ms with nothing to do').toBeLessThanOrEqual(2);
    // And the client is still served.
    invert(f2, 5, 5);
    void h.out.present(f2.frame);
    c.requestUpdate(true);
    await c.nextUpdate(5000);
    expectPicture(c, f2, 'after the request outside');
  });
});

// ------------------------------------------------------------------------------------------------

describe('versions, security, sharing', () => {
  for (const version of ['3.3', '3.7', '3.8'] as const) {
    it(`RFB ${version}: None without a password`, async () => {
      const h = await startVnc();
      const tf = makeFrame(fmt('XRGB8888'), 67, 33, noise(1));
      show(h, tf);
      const c = await connect(h, { version });
      expect(c.serverVersion).toBe('RFB 003.008');
      expect(c.securityTypes).toEqual([1]);
      expect(c.name).toBe('test/DP-1');
      await fullUpdate(c, tf, `RFB ${version}`);
      expect(linesOf(h.log, peerOf(c)).some((l) => l.includes(`connected (RFB ${version}, shared;`))).toBe(true);
    });

    it(`RFB ${version}: VNC authentication, right and wrong password`, async () => {
      const h = await startVnc({ password: 'secret' });
      const tf = makeFrame(fmt('RGB565'), 67, 33, noise(2));
      show(h, tf);
      const c = await connect(h, { version, password: 'secret' });
      expect(c.securityTypes).toEqual([2]);
      await fullUpdate(c, tf, `RFB ${version} with a password`);
      const marks = h.log.length;
      const err = await RfbTestClient.connect({ port: h.port, version, password: 'wrong', connectTimeoutMs: 5000 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RfbSecurityError);
      expect((err as RfbSecurityError).reason).toBe(version === '3.8' ? 'VNC authentication failed (wrong password)' : '');
      await until(() => h.log.slice(marks).some((l) => l.includes('handshake: VNC authentication failed (wrong password); disconnected')), 'the log line');
      expect(h.log.slice(marks).filter((l) => l.endsWith('; disconnected'))).toHaveLength(1);
      // No password at all: the client is told (3.7/3.8 offer only type 2) and stops.
      await expect(RfbTestClient.connect({ port: h.port, version, connectTimeoutMs: 5000 })).rejects.toThrow(/requires VNC authentication|no supported security type/);
      // The first client is unaffected and the server keeps accepting.
      invert(tf, 2, 2);
      void h.out.present(tf.frame);
      c.requestUpdate(true);
      await c.nextUpdate(5000);
      expectPicture(c, tf, 'after the failed attempts');
      const again = await connect(h, { version, password: 'secret' });
      await fullUpdate(again, tf, 'a new client');
    });
  }

  it('shared clients coexist; a shared=false client disconnects the others; later shared clients join it', async () => {
    const h = await startVnc();
    const tf = makeFrame(fmt('XRGB1555'), 67, 33, pattern(3));
    show(h, tf);
    const a = await connect(h);
    const b = await connect(h);
    const peers = new Map([a, b].map((c) => [c, peerOf(c)]));
    await fullUpdate(a, tf, 'a');
    await fullUpdate(b, tf, 'b');
    expect(h.vnc.figures()[0]!.clients).toBe(2);
    const x = await connect(h, { shared: false });
    await within(Promise.all([a.closed, b.closed]), 3000, 'the shared clients to be disconnected');
    await fullUpdate(x, tf, 'exclusive client');
    // One line each for the clients sent away, naming the one that asked.
    for (const c of [a, b]) {
      const lines = reasonLines(h.log, peers.get(c)!);
      expect(lines, h.log.join('\n')).toHaveLength(1);
      expect(lines[0]).toContain(`another client (${peerOf(x)}) asked for exclusive access (shared flag 0); disconnected`);
    }
    expect(reasonLines(h.log, peerOf(x))).toEqual([]);
    const d = await connect(h);
    await fullUpdate(d, tf, 'shared after exclusive');
    expect(x.error).toBeUndefined();
    expect(h.vnc.figures()[0]!.clients).toBe(2);
  });

  it('several clients at once, each in its own format and encoding, each exact on every pushed update', async () => {
    const h = await startVnc({ width: 130, height: 70 });
    const tf = makeFrame(fmt('XRGB8888'), 130, 70, pattern(4));
    show(h, tf);
    const setups: [RfbPixelFormat | undefined, number[]][] = [
      [undefined, [RfbEncoding.Raw]],
      [CLIENT_FORMATS[4]![1], [RfbEncoding.ZRLE, RfbEncoding.CopyRect]],
      [CLIENT_FORMATS[7]![1], [RfbEncoding.Zlib]],
      [CLIENT_FORMATS[8]![1], [RfbEncoding.ZRLE, RfbEncoding.LastRect]],
      [CLIENT_FORMATS[2]![1], [RfbEncoding.CopyRect, RfbEncoding.Raw]],
    ];
    const clients: RfbTestClient[] = [];
    for (const [p, enc] of setups) {
      const c = await connect(h);
      if (p) c.setPixelFormat(p);
      await continuous(c, enc);
      expectPicture(c, tf, 'first');
      clients.push(c);
    }
    for (let i = 0; i < 5; i++) {
      for (let k = 0; k < 6; k++) invert(tf, (i * 41 + k * 13) % 130, (i * 23 + k * 29) % 70);
      void h.out.present(tf.frame);
      await Promise.all(clients.map((c) => c.nextUpdate(5000)));
      clients.forEach((c, n) => expectPicture(c, tf, `client ${n}, flip ${i}`));
    }
    const fig = h.vnc.figures()[0]!;
    expect(fig.clients).toBe(5);
    expect(fig.presented).toBe(6);
    await until(() => h.vnc.figures()[0]!.updates === 30, 'figures to count every update');
    expect(fig.bytes).toBeGreaterThan(0);
  });

  it('maxClients: one more is refused with a log line; the others stay', async () => {
    const h = await startVnc({ maxClients: 2 });
    const a = await connect(h);
    const b = await connect(h);
    await expect(RfbTestClient.connect({ port: h.port, connectTimeoutMs: 3000 })).rejects.toThrow();
    expect(h.log.filter((l) => /refused .*: 2 clients already/.test(l))).toHaveLength(1);
    a.requestUpdate(false);
    b.requestUpdate(false);
    await a.nextUpdate(5000);
    await b.nextUpdate(5000);
    a.close();
    await until(() => h.vnc.figures()[0]!.clients === 1, 'the client to go');
    const c = await connect(h);
    c.requestUpdate(false);
    await c.nextUpdate(5000);
  });

  it('each connector has its own port; a connector beyond them gets a no-op output and a log line', async () => {
    const h = await startVnc({ connectors: 2 });
    const ports = h.vnc.ports();
    expect(ports.map((p) => p.name)).toEqual(['test/DP-1', 'test/DP-2']);
    expect(ports[0]!.port).not.toBe(ports[1]!.port);
    const out2 = h.vnc.openConnector(info(1));
    const tf1 = makeFrame(fmt('XRGB8888'), 67, 33, noise(1));
    const tf2 = makeFrame(fmt('RGB565'), 67, 33, noise(2));
    show(h, tf1);
    out2.configure({ frame: tf2.frame, x: 0, y: 0, width: 67, height: 33 });
    void out2.present(tf2.frame);
    const c1 = await connect(h);
    const c2 = await connect(ports[1]!.port);
    expect(c2.name).toBe('test/DP-2');
    await fullUpdate(c1, tf1, 'connector 0');
    await fullUpdate(c2, tf2, 'connector 1');
    const none = h.vnc.openConnector(info(5));
    none.configure({ frame: tf1.frame, x: 0, y: 0, width: 67, height: 33 });
    expect(none.present(tf1.frame)).toBeUndefined();
    none.close();
    expect(h.log.filter((l) => l.includes('connector #5 (DP-6) has no VNC port'))).toHaveLength(1);
  });

  it('start() rejects when a port is taken', async () => {
    const h = await startVnc();
    await expect(VncServer.start({ connectors: [{ name: 'x', width: 10, height: 10 }], basePort: h.port })).rejects.toThrow(/EADDRINUSE/);
  });
});

// ------------------------------------------------------------------------------------------------

describe('bad input', () => {
  /** A server with a frame, a well-behaved client on continuous updates and a client to misbehave. */
  async function scene(): Promise<{ h: Harness; tf: TestFrame; good: RfbTestClient; bad: RfbTestClient; peer: string }> {
    const h = await startVnc();
    const tf = makeFrame(fmt('XRGB8888'), 67, 33, pattern(7));
    show(h, tf);
    const good = await connect(h);
    await continuous(good, [RfbEncoding.ZRLE]);
    expectPicture(good, tf, 'good client, first');
    const bad = await connect(h);
    await fullUpdate(bad, tf, 'bad client, first');
    return { h, tf, good, bad, peer: peerOf(bad) };
  }

  /** The other client still gets updates, and a new client is served. */
  async function othersUnaffected(s: { h: Harness; tf: TestFrame; good: RfbTestClient }): Promise<void> {
    invert(s.tf, 30, 30);
    void s.h.out.present(s.tf.frame);
    await s.good.nextUpdate(5000);
    expectPicture(s.good, s.tf, 'good client after the bad input');
    expect(s.good.error).toBeUndefined();
    const fresh = await connect(s.h);
    await fullUpdate(fresh, s.tf, 'a new client after the bad input');
  }

  const sevenBad: [string, () => Uint8Array, RegExp][] = [
    ['unknown message type 7', () => Uint8Array.of(7, 0, 0, 0, 0, 0, 0, 0), /: unknown client message type 7; disconnected$/],
    ['SetPixelFormat with a colour map', () => pixelFormatBytes({ ...pf(8, 8, false, [7, 0], [7, 3], [3, 6]), trueColour: false }), /: SetPixelFormat: a colour-map pixel format .*; disconnected$/],
    ['SetPixelFormat with 24 bpp', () => pixelFormatBytes(pf(24 as 32, 24, false, [255, 16], [255, 8], [255, 0])), /: SetPixelFormat: 24 bits per pixel .*; disconnected$/],
    ['SetPixelFormat with a channel past the pixel', () => pixelFormatBytes(pf(16, 16, false, [63, 11], [63, 5], [31, 0])), /: SetPixelFormat: red max 63 at shift 11 does not fit in 16 bits; disconnected$/],
    ['SetEncodings with 5000 entries', () => setEncodingsBytes(Array.from({ length: 5000 }, (_, i) => i)), /: SetEncodings with 5000 encodings \(at most 512\); disconnected$/],
    ['ClientCutText claiming 0xFFFFFFFF bytes', () => Uint8Array.of(6, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x41, 0x42), /: ClientCutText of 4294967295 bytes .*; disconnected$/],
    ['a ClientFence payload of 65 bytes', () => Uint8Array.from([248, 0, 0, 0, 0x80, 0, 0, 0, 65, ...new Uint8Array(65)]), /: ClientFence with a 65-byte payload .*; disconnected$/],
    ['FramebufferUpdateRequest with incremental flag 2', () => rectMsg(3, 2, 0, 0, 10, 10), /: FramebufferUpdateRequest: incremental flag 2; disconnected$/],
    ['SetDesktopSize with 0 screens', () => Uint8Array.of(251, 0, 0, 100, 0, 100, 0, 0), /: SetDesktopSize with 0 screens; disconnected$/],
  ];

  it.each(sevenBad)('%s: that client alone is disconnected, with one log line giving the reason', async (_name, bytes, why) => {
    const s = await scene();
    s.bad.sendRaw(bytes());
    await within(s.bad.closed, 3000, 'the bad client to be disconnected');
    await until(() => reasonLines(s.h.log, s.peer).length > 0, 'the log line');
    const lines = reasonLines(s.h.log, s.peer);
    expect(lines, lines.join('\n')).toHaveLength(1);
    expect(lines[0]).toMatch(why);
    expect(lines[0]).toMatch(new RegExp(`^vnc test/DP-1: client ${s.peer.replace(/\./g, '\\.')}: `));
    await othersUnaffected(s);
    expect(s.h.vnc.figures()[0]!.clients).toBe(2);
    // Only the bad client was ever disconnected.
    expect(s.h.log.filter((l) => l.endsWith('; disconnected'))).toHaveLength(1);
  });

  it('a bad-input disconnect is one log line in all (the reason), not a second "disconnected" line', async () => {
    const s = await scene();
    s.bad.sendRaw(Uint8Array.of(7));
    await within(s.bad.closed, 3000, 'the bad client to be disconnected');
    await sleep(50);
    const after = linesOf(s.h.log, s.peer).filter((l) => !l.includes(': connected ('));
    expect(after, after.join('\n')).toHaveLength(1);
  });

  it('a truncated message then close: a plain disconnect (one line), the others unaffected', async () => {
    const s = await scene();
    s.bad.sendRaw(setEncodingsBytes([0, 1, 16, 6]).subarray(0, 9));
    await sleep(50);
    s.bad.close();
    await within(s.bad.closed, 3000, 'the close');
    await until(() => linesOf(s.h.log, s.peer).some((l) => /disconnected$/.test(l)), 'the log line');
    await sleep(50);
    expect(linesOf(s.h.log, s.peer).filter((l) => /disconnected$/.test(l))).toHaveLength(1);
    await othersUnaffected(s);
  });

  it('KeyEvent, PointerEvent and ClientCutText (small and exactly 1 MiB) are accepted and the stream stays in step', async () => {
    const s = await scene();
    s.bad.sendKey(true, 0x61);
    s.bad.sendKey(false, 0x61);
    s.bad.sendPointer(1, 10, 10);
    s.bad.sendPointer(0, 66, 32);
    s.bad.sendCutText('hello, clipboard');
    const big = Buffer.alloc(8 + (1 << 20), 0x41);
    big[0] = 6;
    big.writeUInt32BE(1 << 20, 4);
    s.bad.sendRaw(big);
    s.bad.sendKey(true, 0xff0d);
    invert(s.tf, 40, 20);
    void s.h.out.present(s.tf.frame);
    s.bad.requestUpdate(true);
    const u = await s.bad.nextUpdate(5000);
    expect(pixelRects(u)).toEqual([{ x: 0, y: 0, w: 64, h: 33 }]);
    expectPicture(s.bad, s.tf, 'after input events');
    await s.good.nextUpdate(5000);
    expect(s.bad.error).toBeUndefined();
    expect(reasonLines(s.h.log, s.peer)).toEqual([]);
  });

  it('garbage instead of a version: disconnected with one line, nothing sent after the greeting', async () => {
    const s = await scene();
    const raw = await RawClient.connect(s.h.port);
    expect((await raw.read(12)).toString('latin1')).toBe('RFB 003.008\n');
    raw.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await within(raw.closed, 3000, 'the garbage client to be disconnected');
    expect(raw.received).toBe(12);
    const lines = reasonLines(s.h.log, raw.peer);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/: handshake: not an RFB client \(it sent "GET \/ HTTP\/1"\); disconnected$/);
    await othersUnaffected(s);
  });

  it('more than 4 KiB during the handshake: disconnected with one line', async () => {
    const s = await scene();
    const raw = await RawClient.connect(s.h.port);
    await raw.read(12);
    const flood = Buffer.alloc(12 + 5000, 0xaa);
    flood.write('RFB 003.008\n', 'latin1');
    raw.write(flood);
    await within(raw.closed, 3000, 'the flooding client to be disconnected');
    const lines = reasonLines(s.h.log, raw.peer);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/: (sent 5012 bytes during the handshake|handshake: .*); disconnected$/);
    await othersUnaffected(s);
  });

  it('a wrong password (raw client, RFB 3.8): told why, disconnected with one line', async () => {
    const h = await startVnc({ password: 'pw' });
    const raw = await RawClient.connect(h.port);
    await raw.read(12);
    raw.write('RFB 003.008\n');
    expect([...(await raw.read(2))]).toEqual([1, 2]);
    raw.write(Uint8Array.of(2));
    await raw.read(16);
    raw.write(new Uint8Array(16));
    const status = await raw.read(4);
    expect(status.readUInt32BE(0)).toBe(1);
    const len = (await raw.read(4)).readUInt32BE(0);
    expect((await raw.read(len)).toString()).toBe('VNC authentication failed (wrong password)');
    await within(raw.closed, 3000, 'the close');
    expect(reasonLines(h.log, raw.peer)).toHaveLength(1);
  });

  it('a client that never reads is disconnected after stallMs; no updates are computed for it meanwhile', async () => {
    const h = await startVnc({ width: 1920, height: 1080, stallMs: 300 });
    const tf = makeFrame(fmt('XRGB8888'), 1920, 1080, noise(1), { pad: 0, offset: 0 });
    show(h, tf);
    const good = await connect(h);
    await continuous(good, [RfbEncoding.ZRLE]);
    expectPicture(good, tf, 'good client, first');
    const raw = await RawClient.connect(h.port);
    await raw.handshake();
    raw.write(setEncodingsBytes([RfbEncoding.Raw, RfbEncoding.ContinuousUpdates]));
    raw.write(rectMsg(150, 1, 0, 0, 1920, 1080));
    raw.sock.pause();
    const slot = '0:2';
    await until(() => (h.encoder.calls.get(slot) ?? 0) >= 1, 'the first update for the stalled client');
    const t0 = Date.now();
    let flips = 0;
    // (A paused socket does not see the server's close: the log says when it happened.)
    const gone = (): boolean => reasonLines(h.log, raw.peer).length > 0;
    while (!gone() && Date.now() - t0 < 3000) {
      // Small changes: the stalled client would get an update for each if it could take them.
      for (let k = 0; k < 20; k++) invert(tf, (flips * 97 + k * 5) % 1920, (flips * 31 + k) % 1080);
      void h.out.present(tf.frame);
      flips++;
      await good.nextUpdate(5000);
      await sleep(30);
    }
    expect(gone(), 'the stalled client was disconnected').toBe(true);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(h.vnc.figures()[0]!.clients).toBe(1);
    raw.sock.resume();
    await within(raw.closed, 3000, 'the stalled socket to close once read');
    expect(flips).toBeGreaterThan(3);
    // At most the one update it could not take (and one the kernel buffers swallowed) was computed.
    expect(h.encoder.calls.get(slot)!).toBeLessThanOrEqual(2);
    const lines = reasonLines(h.log, raw.peer);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/: took nothing for 300 ms with \d+ bytes waiting \(not reading\); disconnected$/);
    expectPicture(good, tf, 'good client after the stall');
    expect(good.error).toBeUndefined();
    const fresh = await connect(h);
    fresh.setEncodings([RfbEncoding.ZRLE]);
    await fullUpdate(fresh, tf, 'a new client after the stall');
  });

  it('a connection that never finishes the handshake (sends nothing) is closed after handshakeMs with one line; it held no client slot for good', async () => {
    const h = await startVnc({ handshakeMs: 300, maxClients: 1 });
    const idle = await RawClient.connect(h.port);
    await until(() => idle.ended, 'the idle connection closed', 3000);
    expect(reasonLines(h.log, idle.peer)).toEqual([expect.stringMatching(/: no handshake within 300 ms; disconnected$/)]);
    // The one slot is free again.
    const tf = makeFrame(fmt('XRGB8888'), 67, 33, noise(1));
    show(h, tf);
    const c = await connect(h);
    await fullUpdate(c, tf, 'after the idle connection');
  });

  it('a client flooding fence requests while never reading: its input stops being read once 64 answers wait (so they cannot pile up), and it goes as not reading', async () => {
    const h = await startVnc({ stallMs: 1500 });
    const tf = makeFrame(fmt('XRGB8888'), 67, 33, noise(1));
    show(h, tf);
    const other = await connect(h);
    const raw = await RawClient.connect(h.port);
    await raw.handshake();
    raw.sock.pause();
    // 200,000 fence requests with 64-byte payloads: 14.6 MB of answers, more than the kernel's
    // socket buffers hold, never read.
    const one = Buffer.alloc(9 + 64);
    one[0] = 248;
    one.writeUInt32BE(0x80000000, 4);
    one[8] = 64;
    const flood = Buffer.concat(Array.from({ length: 200_000 }, () => one));
    raw.write(flood);
    // The server stopped reading: most of the flood is still on the client's side (read on, it
    // would all have been taken in well under a second).
    await sleep(800);
    expect(reasonLines(h.log, raw.peer)).toEqual([]);
    expect(raw.sock.writableLength).toBeGreaterThan(flood.length / 4);
    await until(() => reasonLines(h.log, raw.peer).length === 1, 'the flooding client disconnected', 10_000);
    expect(reasonLines(h.log, raw.peer)[0]).toMatch(/took nothing for 1500 ms .*\(not reading\); disconnected$/);
    // The other client is still served.
    await fullUpdate(other, tf, 'the other client after the flood');
  });

  it('after an incremental update of one area, a request for a larger area gets the rest of the flip without waiting for another', async () => {
    const h = await startVnc();
    const tf = makeFrame(fmt('XRGB8888'), 67, 33, noise(1));
    show(h, tf);
    const c = await connect(h);
    await fullUpdate(c, tf, 'first');
    // One flip changes a pixel on the left and one on the right.
    invert(tf, 2, 2);
    invert(tf, 66, 32);
    void h.out.present(tf.frame);
    c.requestUpdate(true, { x: 0, y: 0, w: 32, h: 33 });
    const left = await c.nextUpdate(5000);
    expect(left.rects.every((r) => r.x + r.w <= 32)).toBe(true);
    // The whole screen now: the right-hand change comes at once (the guest does not flip again).
    c.requestUpdate(true);
    const rest = await c.nextUpdate(2000);
    expect(rest.rects.some((r) => r.x <= 66 && 66 < r.x + r.w && r.y <= 32 && 32 < r.y + r.h)).toBe(true);
    expectPicture(c, tf, 'both changes');
  });

  it('SetDesktopSize sent 10,000 times without a request: one refusal owed, sent once asked', async () => {
    const h = await startVnc();
    const tf = makeFrame(fmt('XRGB8888'), 67, 33, noise(4));
    show(h, tf);
    const c = await connect(h);
    c.setEncodings([RfbEncoding.Raw, RfbEncoding.ExtendedDesktopSize]);
    const one = Buffer.alloc(8 + 16);
    one[0] = 251;
    one.writeUInt16BE(1024, 2);
    one.writeUInt16BE(768, 4);
    one[6] = 1;
    c.sendRaw(Buffer.concat(Array.from({ length: 10_000 }, () => one)));
    await sleep(200);
    c.requestUpdate(false);
    const u = await c.nextUpdate(5000);
    expect(u.rects).toEqual([
      { x: 1, y: 1, w: 67, h: 33, encoding: RfbEncoding.ExtendedDesktopSize },
      { x: 0, y: 0, w: 67, h: 33, encoding: RfbEncoding.ExtendedDesktopSize },
    ]);
    await fullUpdate(c, tf, 'after the refusals');
    expect(c.error).toBeUndefined();
  });

  it('a client that reads slowly but steadily is not taken for one that never reads', async () => {
    // 2 s, not less: Linux wakes a blocked writer only once a third of the socket's send buffer is
    // free (measured here: 1.3 MB, half a second at this client's pace, between slices).
    const h = await startVnc({ width: 1920, height: 1080, stallMs: 2000 });
    const tf = makeFrame(fmt('XRGB8888'), 1920, 1080, noise(2), { pad: 0, offset: 0 });
    show(h, tf);
    const raw = await RawClient.connect(h.port);
    await raw.handshake();
    raw.write(setEncodingsBytes([RfbEncoding.Raw]));
    raw.write(rectMsg(3, 0, 0, 0, 1920, 1080));
    // Read about 64 KiB every 20 ms (~3 MB/s): always taking bytes, but the 8 MB update takes seconds.
    raw.sock.on('data', () => {
      raw.sock.pause();
      setTimeout(() => raw.sock.resume(), 20);
    });
    const want = 4 + 12 + 1920 * 1080 * 4;
    const t0 = Date.now();
    await until(() => raw.received >= 12 + 2 + 4 + 24 + 'test/DP-1'.length + want || raw.ended, 'the whole update', 20000);
    const took = Date.now() - t0;
    expect(raw.ended, `disconnected after ${took} ms: ${reasonLines(h.log, raw.peer).join()}`).toBe(false);
    expect(reasonLines(h.log, raw.peer)).toEqual([]);
  });
});

// ------------------------------------------------------------------------------------------------

describe('the worker encoder, TeePresenter, close', () => {
  it('WorkerFrameEncoder: exact pictures for several clients (shared memory with a dma-buf, and plain memory); inFlight back to 0; close() refuses connections', async () => {
    const worker = new WorkerFrameEncoder<RfbUpdateParams>(RFB_CODEC);
    const h = await startVnc({ width: 150, height: 90, encoder: worker });
    const shared = makeFrame(fmt('XRGB8888'), 150, 90, pattern(5), { shared: true, dmabuf: true });
    show(h, shared);
    const a = await connect(h);
    const b = await connect(h);
    b.setPixelFormat(pf(16, 16, true, [31, 11], [63, 5], [31, 0]));
    await continuous(a, [RfbEncoding.ZRLE, RfbEncoding.CopyRect]);
    await continuous(b, [RfbEncoding.Zlib, RfbEncoding.LastRect]);
    expectPicture(a, shared, 'a, first');
    expectPicture(b, shared, 'b, first');
    for (let i = 0; i < 4; i++) {
      invert(shared, (i * 37) % 150, (i * 19) % 90);
      void h.out.present(shared.frame);
      await Promise.all([a.nextUpdate(5000), b.nextUpdate(5000)]);
      expectPicture(a, shared, `a, flip ${i}`);
      expectPicture(b, shared, `b, flip ${i}`);
    }
    await until(() => worker.inFlight === 0, 'no jobs in flight');
    expect(shared.frame.dmabuf!.refCount).toBe(1);
    // A mode in plain memory (copied for the worker).
    const plain = makeFrame(fmt('RGB888'), 150, 90, noise(6));
    show(h, plain);
    await Promise.all([a.nextUpdate(5000), b.nextUpdate(5000)]);
    expectPicture(a, plain, 'a, RGB888');
    expectPicture(b, plain, 'b, RGB888');
    // A client leaving while an update may be computing.
    invert(plain, 1, 1);
    void h.out.present(plain.frame);
    a.close();
    await b.nextUpdate(5000);
    await until(() => worker.inFlight === 0 && h.vnc.figures()[0]!.clients === 1, 'the client gone and no jobs in flight');
    const port = h.port;
    await h.vnc.close();
    await expectRefused(port);
    expect(worker.inFlight).toBe(0);
    expect(h.vnc.clientCount).toBe(0);
    await within(b.closed, 3000, 'the remaining client to be closed by close()');
  });

  it('TeePresenter: configure/present/close reach the VNC output and the other presenter; a present waits for the other', async () => {
    const h = await startVnc();
    const calls: string[] = [];
    let settle!: (ok: boolean) => void;
    const other: Presenter = {
      openConnector: () => ({
        configure: (c) => calls.push(`configure ${c ? `${c.width}x${c.height}` : 'none'}`),
        present: () => {
          calls.push('present');
          return new Promise<void>((resolve, reject) => (settle = (ok) => (ok ? resolve() : reject(new Error('display gone')))));
        },
        close: () => calls.push('close'),
      }),
    };
    const tee = new TeePresenter([h.vnc, other]);
    const out = tee.openConnector(info(0));
    const tf = makeFrame(fmt('XRGB8888'), 67, 33, noise(8));
    out.configure({ frame: tf.frame, x: 0, y: 0, width: 67, height: 33 });
    const p = out.present(tf.frame);
    expect(p).toBeInstanceOf(Promise);
    const c = await connect(h);
    await fullUpdate(c, tf, 'through the tee');
    let done = false;
    void p!.then(() => (done = true));
    await sleep(20);
    expect(done).toBe(false);
    settle(false);
    await p;
    expect(done).toBe(true);
    out.close();
    expect(calls).toEqual(['configure 67x33', 'present', 'close']);
    c.requestUpdate(true);
    await c.nextUpdate(5000);
    expectBlack(c);
    // A tee of one is that presenter's own output.
    expect(new TeePresenter([h.vnc]).openConnector(info(0))).toBe(h.vnc.openConnector(info(0)));
  });
});

/**
 * A raw-socket RFB (VNC) client for tests, written from RFC 6143 and the community protocol
 * document (rfbproto.rst), independently of the server under src/present/ (only the DES helper
 * for VNC authentication is shared).
 *
 * It is deliberately strict: anything it does not understand (a server message type, an
 * encoding, a malformed ZRLE tile, a rectangle outside the framebuffer, zlib output of the
 * wrong length) stops the client — the pending nextUpdate() rejects with an Error naming the
 * problem, `error` keeps it, and the socket is closed. Nothing is ever skipped silently.
 *
 * What it speaks:
 * - Handshake: ProtocolVersion (answers 3.3, 3.7 or 3.8), security None (1) or VNC
 *   authentication (2), SecurityResult as each version has it (3.3/3.7: none after None, a bare
 *   status after VNC auth; 3.8: always a status, followed by a reason string on failure),
 *   ClientInit, ServerInit.
 * - Server messages: FramebufferUpdate (0), SetColourMapEntries (1, kept only for rgb() in
 *   colour-map formats), Bell (2), ServerCutText (3, Latin-1), EndOfContinuousUpdates (150),
 *   ServerFence (248; requests are answered at once, in stream order, with flags & 7 and the
 *   same payload).
 * - Encodings, decoded into a framebuffer of client pixel values in the client's current pixel
 *   format (8, 16 or 32 bpp, either byte order, any shifts and maxima): Raw (0), CopyRect (1),
 *   Zlib (6, one inflate stream per connection), ZRLE (16, its own inflate stream), and the
 *   pseudo-encodings DesktopSize (-223), LastRect (-224) and ExtendedDesktopSize (-308).
 *
 * The incoming byte stream is consumed by one async loop, strictly in order; zlib streams are
 * Node inflate streams driven with write() + flush(Z_SYNC_FLUSH), collecting the output emitted
 * before the flush callback (the pattern `ws` uses for permessage-deflate).
 */
import { createConnection, type Socket } from 'node:net';
import { createInflate, constants as zlibConstants, type Inflate } from 'node:zlib';
import { vncAuthResponse } from '../../src/present/rfb/des.js';

export interface RfbPixelFormat {
  bitsPerPixel: number;
  depth: number;
  bigEndian: boolean;
  trueColour: boolean;
  redMax: number;
  greenMax: number;
  blueMax: number;
  redShift: number;
  greenShift: number;
  blueShift: number;
}

export interface RfbRect {
  x: number;
  y: number;
  w: number;
  h: number;
  encoding: number;
}

export interface RfbUpdate {
  /** Every rectangle header of the message in wire order, pseudo-rectangles included (a terminating LastRect too). */
  rects: RfbRect[];
  /** Wire bytes of the whole FramebufferUpdate message (type byte to the last rectangle's data). */
  bytes: number;
  /** performance.timeOrigin + performance.now() when the message's last byte arrived. */
  receivedAt: number;
}

export interface RfbTestClientOptions {
  /** Default 127.0.0.1. */
  host?: string;
  port: number;
  /** The version the client answers with; default 3.8. */
  version?: '3.3' | '3.7' | '3.8';
  /** Needed if the server insists on VNC authentication; with it, VNC auth is preferred when offered. */
  password?: string;
  /** ClientInit shared-flag; default true. */
  shared?: boolean;
  /** Limit for connecting plus the whole handshake; default 10 s. */
  connectTimeoutMs?: number;
}

export interface RfbScreen {
  id: number;
  x: number;
  y: number;
  w: number;
  h: number;
  flags: number;
}

export interface RfbDesktopSize {
  encoding: number;
  /** For ExtendedDesktopSize: the reason (0 server, 1 this client, 2 another client). */
  x: number;
  /** For ExtendedDesktopSize: the status (0 = no error). */
  y: number;
  w: number;
  h: number;
  /** ExtendedDesktopSize only. */
  screens?: RfbScreen[];
}

export interface RfbFence {
  flags: number;
  payload: Uint8Array;
}

/** Encoding numbers (RFC 6143 §7.7, rfbproto "Encodings"). */
export const RfbEncoding = {
  Raw: 0,
  CopyRect: 1,
  Zlib: 6,
  ZRLE: 16,
  DesktopSize: -223,
  LastRect: -224,
  ExtendedDesktopSize: -308,
  Fence: -312,
  ContinuousUpdates: -313,
} as const;

/** Fence flag bits (rfbproto "ClientFence"). */
export const RfbFenceFlag = {
  BlockBefore: 0x1,
  BlockAfter: 0x2,
  SyncNext: 0x4,
  Request: 0x80000000,
} as const;

/** The connection was refused during the security handshake; `reason` is the server's string ('' if the version sends none). */
export class RfbSecurityError extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'RfbSecurityError';
  }
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_UPDATE_TIMEOUT_MS = 10_000;
const MAX_STRING = 16 << 20;
const FENCE_UNDERSTOOD = RfbFenceFlag.BlockBefore | RfbFenceFlag.BlockAfter | RfbFenceFlag.SyncNext;

const now = (): number => performance.timeOrigin + performance.now();

function errorOf(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

// ---------------------------------------------------------------------------------------------
// Incoming byte queue

interface Chunk {
  buf: Buffer;
  at: number;
}

/** The socket's bytes, in order, for one sequential reader. */
class ByteQueue {
  private readonly chunks: Chunk[] = [];
  private head = 0;
  private available = 0;
  private wake: (() => void) | undefined;
  private ended: Error | undefined;
  /** Bytes taken so far. */
  consumed = 0;
  /** Arrival time of the chunk that held the last byte taken. */
  lastAt = 0;

  push(buf: Buffer, at: number): void {
    if (buf.length === 0) return;
    this.chunks.push({ buf, at });
    this.available += buf.length;
    this.notify();
  }

  /** No more bytes will come; reads that cannot be satisfied from what is here fail with `err`. */
  end(err: Error): void {
    this.ended ??= err;
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  async read(n: number): Promise<Buffer> {
    while (this.available < n) {
      if (this.ended) throw this.ended;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
    return this.take(n);
  }

  private take(n: number): Buffer {
    this.available -= n;
    this.consumed += n;
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    if (first.buf.length - this.head >= n) {
      const out = first.buf.subarray(this.head, this.head + n);
      this.head += n;
      this.lastAt = first.at;
      if (this.head === first.buf.length) this.dropFirst();
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const k = Math.min(n - off, c.buf.length - this.head);
      c.buf.copy(out, off, this.head, this.head + k);
      off += k;
      this.head += k;
      this.lastAt = c.at;
      if (this.head === c.buf.length) this.dropFirst();
    }
    return out;
  }

  private dropFirst(): void {
    this.chunks.shift();
    this.head = 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Persistent zlib inflate stream, used strictly one call at a time

class OrderedInflate {
  private readonly stream: Inflate = createInflate();
  private out: Buffer[] = [];
  private failed: Error | undefined;

  constructor(private readonly label: string) {
    this.stream.on('data', (c: Buffer) => {
      this.out.push(c);
    });
    this.stream.on('error', (e: Error) => {
      this.failed ??= new Error(`${this.label}: zlib inflate failed: ${e.message}`);
    });
  }

  /** Feeds `data` to the stream and returns everything it inflates to (sync-flushed). */
  inflate(data: Buffer): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      if (this.failed) {
        reject(this.failed);
        return;
      }
      this.out = [];
      const onError = (): void => {
        reject(this.failed ?? new Error(`${this.label}: zlib inflate failed`));
      };
      this.stream.once('error', onError);
      this.stream.write(data);
      this.stream.flush(zlibConstants.Z_SYNC_FLUSH, () => {
        this.stream.off('error', onError);
        if (this.failed) {
          reject(this.failed);
          return;
        }
        const out = Buffer.concat(this.out);
        this.out = [];
        resolve(out);
      });
    });
  }

  close(): void {
    this.stream.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Pixel helpers

function readPixelFormat(b: Buffer, o: number): RfbPixelFormat {
  return {
    bitsPerPixel: b[o]!,
    depth: b[o + 1]!,
    bigEndian: b[o + 2]! !== 0,
    trueColour: b[o + 3]! !== 0,
    redMax: b.readUInt16BE(o + 4),
    greenMax: b.readUInt16BE(o + 6),
    blueMax: b.readUInt16BE(o + 8),
    redShift: b[o + 10]!,
    greenShift: b[o + 11]!,
    blueShift: b[o + 12]!,
  };
}

function writePixelFormat(b: Buffer, o: number, pf: RfbPixelFormat): void {
  b[o] = pf.bitsPerPixel;
  b[o + 1] = pf.depth;
  b[o + 2] = pf.bigEndian ? 1 : 0;
  b[o + 3] = pf.trueColour ? 1 : 0;
  b.writeUInt16BE(pf.redMax, o + 4);
  b.writeUInt16BE(pf.greenMax, o + 6);
  b.writeUInt16BE(pf.blueMax, o + 8);
  b[o + 10] = pf.redShift;
  b[o + 11] = pf.greenShift;
  b[o + 12] = pf.blueShift;
  // o+13..o+15: padding (already zero)
}

function checkPixelFormat(pf: RfbPixelFormat, where: string): void {
  if (pf.bitsPerPixel !== 8 && pf.bitsPerPixel !== 16 && pf.bitsPerPixel !== 32) {
    throw new Error(`${where}: bits-per-pixel ${pf.bitsPerPixel} is not 8, 16 or 32`);
  }
  if (pf.trueColour) {
    for (const s of [pf.redShift, pf.greenShift, pf.blueShift]) {
      if (s >= pf.bitsPerPixel) throw new Error(`${where}: colour shift ${s} >= bits-per-pixel ${pf.bitsPerPixel}`);
    }
  }
}

type PixelReader = (b: Buffer, o: number) => number;

function pixelReader(bytes: number, bigEndian: boolean): PixelReader {
  switch (bytes) {
    case 1:
      return (b, o) => b[o]!;
    case 2:
      return bigEndian ? (b, o) => b.readUInt16BE(o) : (b, o) => b.readUInt16LE(o);
    case 3:
      return bigEndian
        ? (b, o) => (b[o]! << 16) | (b[o + 1]! << 8) | b[o + 2]!
        : (b, o) => b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16);
    case 4:
      return bigEndian ? (b, o) => b.readUInt32BE(o) : (b, o) => b.readUInt32LE(o);
    default:
      throw new Error(`no pixel reader for ${bytes} bytes`);
  }
}

/** Highest value each colour channel can put in a pixel, OR-ed together. */
function maxPixel(pf: RfbPixelFormat): number {
  return ((pf.redMax << pf.redShift) | (pf.greenMax << pf.greenShift) | (pf.blueMax << pf.blueShift)) >>> 0;
}

/**
 * How a ZRLE CPIXEL reads in format `pf`. It is a PIXEL except for true colour, 32 bpp, depth
 * <= 24 with every colour bit in the 3 least or the 3 most significant bytes: then it is those 3
 * bytes (the least significant ones when both would do, by the spec's convention), in the
 * pixel's own byte order — i.e. the 4-byte wire pixel with its always-zero byte left out.
 */
export function zrleCpixel(pf: RfbPixelFormat): { bytes: number; shift: number } {
  if (pf.trueColour && pf.bitsPerPixel === 32 && pf.depth <= 24) {
    const max = maxPixel(pf);
    if (max < 0x1000000) return { bytes: 3, shift: 0 };
    if ((max & 0xff) === 0) return { bytes: 3, shift: 8 };
  }
  return { bytes: pf.bitsPerPixel / 8, shift: 0 };
}

function scaleTo255(v: number, max: number): number {
  return max === 0 ? 0 : Math.round((v * 255) / max);
}

function encodeLatin1(text: string, what: string): Buffer {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0xff) throw new Error(`${what}: character ${JSON.stringify(text[i])} is not Latin-1`);
  }
  return Buffer.from(text, 'latin1');
}

// ---------------------------------------------------------------------------------------------

interface UpdateWaiter {
  resolve: (u: RfbUpdate) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class RfbTestClient {
  private readonly socket: Socket;
  private readonly q = new ByteQueue();
  private zlibStream: OrderedInflate | undefined;
  private zrleStream: OrderedInflate | undefined;

  private _serverVersion = '';
  private _securityTypes: number[] = [];
  private _width = 0;
  private _height = 0;
  private _name = '';
  private _serverPixelFormat: RfbPixelFormat | undefined;
  private _pixelFormat: RfbPixelFormat | undefined;
  private fb = new Uint32Array(0);
  private readonly colourMap = new Map<number, [number, number, number]>();

  private _updates = 0;
  private _endOfContinuousUpdates = 0;
  private _bells = 0;
  private readonly _fences: RfbFence[] = [];
  private readonly _desktopSizes: RfbDesktopSize[] = [];
  private readonly _cutTexts: string[] = [];

  private readonly queued: RfbUpdate[] = [];
  private readonly waiters: UpdateWaiter[] = [];
  private _error: Error | undefined;

  /** Resolves when the socket has closed, for whatever reason. */
  readonly closed: Promise<void>;

  private constructor(o: RfbTestClientOptions) {
    const socket = createConnection({ host: o.host ?? '127.0.0.1', port: o.port });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      this.q.push(d, now());
    });
    socket.on('error', (e: Error) => {
      this.q.end(e);
      this.fail(e);
    });
    this.closed = new Promise<void>((resolve) => {
      socket.on('close', () => {
        const err = new Error('RFB connection closed');
        this.q.end(err);
        this.fail(err);
        this.zlibStream?.close();
        this.zrleStream?.close();
        resolve();
      });
    });
  }

  /** Connects and runs the handshake; resolves after ServerInit. */
  static async connect(o: RfbTestClientOptions): Promise<RfbTestClient> {
    const client = new RfbTestClient(o);
    const timeoutMs = o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const handshake = client.handshake(o);
    handshake.catch(() => undefined); // the race below reports it
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`RFB connect/handshake to port ${o.port} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      await Promise.race([handshake, timeout]);
    } catch (e) {
      client.socket.destroy();
      throw errorOf(e);
    } finally {
      clearTimeout(timer);
    }
    void client.run();
    return client;
  }

  // ---- state ----

  /** The server's ProtocolVersion without the newline, e.g. "RFB 003.008". */
  get serverVersion(): string {
    return this._serverVersion;
  }
  /** Security types the server offered (3.7/3.8), or [the one it chose] (3.3). */
  get securityTypes(): number[] {
    return [...this._securityTypes];
  }
  get width(): number {
    return this._width;
  }
  get height(): number {
    return this._height;
  }
  get name(): string {
    return this._name;
  }
  get serverPixelFormat(): RfbPixelFormat {
    return { ...this._serverPixelFormat! };
  }
  /** The client's current pixel format (the server's until setPixelFormat()). */
  get pixelFormat(): RfbPixelFormat {
    return { ...this._pixelFormat! };
  }
  /** FramebufferUpdate messages received. */
  get updates(): number {
    return this._updates;
  }
  /** EndOfContinuousUpdates messages received. */
  get endOfContinuousUpdates(): number {
    return this._endOfContinuousUpdates;
  }
  /** ServerFence messages received, flags as sent (requests included). */
  get fences(): RfbFence[] {
    return this._fences;
  }
  /** DesktopSize and ExtendedDesktopSize pseudo-rectangles received, in order. */
  get desktopSizes(): RfbDesktopSize[] {
    return this._desktopSizes;
  }
  get bells(): number {
    return this._bells;
  }
  /** ServerCutText texts (decoded as Latin-1). */
  get cutTexts(): string[] {
    return this._cutTexts;
  }
  /** Why the client stopped (protocol error, socket error, close), if it has. */
  get error(): Error | undefined {
    return this._error;
  }

  // ---- framebuffer ----

  /** The raw client pixel value at (x, y) in the current pixel format. */
  pixel(x: number, y: number): number {
    if (!Number.isInteger(x) || !Number.isInteger(y) || x < 0 || y < 0 || x >= this._width || y >= this._height) {
      throw new RangeError(`pixel (${x}, ${y}) is outside the ${this._width}x${this._height} framebuffer`);
    }
    return this.fb[y * this._width + x]!;
  }

  /** The pixel at (x, y) as [r, g, b], each scaled from its channel max to 0..255 as round(v * 255 / max). */
  rgb(x: number, y: number): [number, number, number] {
    return this.toRgb(this.pixel(x, y));
  }

  /** The whole framebuffer as RGBA (A = 255), width * height * 4 bytes. */
  rgba(): Uint8Array {
    const out = new Uint8Array(this._width * this._height * 4);
    for (let i = 0; i < this._width * this._height; i++) {
      const [r, g, b] = this.toRgb(this.fb[i]!);
      out[i * 4] = r;
      out[i * 4 + 1] = g;
      out[i * 4 + 2] = b;
      out[i * 4 + 3] = 255;
    }
    return out;
  }

  private toRgb(p: number): [number, number, number] {
    const pf = this._pixelFormat!;
    if (!pf.trueColour) {
      const e = this.colourMap.get(p);
      if (!e) throw new Error(`pixel value ${p} has no colour map entry (colour-map pixel format)`);
      return [...e];
    }
    return [
      scaleTo255((p >>> pf.redShift) & pf.redMax, pf.redMax),
      scaleTo255((p >>> pf.greenShift) & pf.greenMax, pf.greenMax),
      scaleTo255((p >>> pf.blueShift) & pf.blueMax, pf.blueMax),
    ];
  }

  // ---- client → server ----

  sendRaw(bytes: Uint8Array): void {
    if (this.socket.destroyed || !this.socket.writable) throw new Error('RFB test client: the socket is closed');
    this.socket.write(bytes);
  }

  /**
   * SetPixelFormat (0). The client switches at once (updates already in flight would be
   * misread — the spec forbids an outstanding FramebufferUpdateRequest here) and converts its
   * framebuffer to the new format channel by channel, so rgb() stays meaningful (zeroed if either
   * format is colour-mapped).
   */
  setPixelFormat(pf: RfbPixelFormat): void {
    checkPixelFormat(pf, 'setPixelFormat');
    const b = Buffer.alloc(20);
    b[0] = 0;
    writePixelFormat(b, 4, pf);
    this.sendRaw(b);
    const old = this._pixelFormat!;
    const next = { ...pf };
    if (old.trueColour && next.trueColour) {
      for (let i = 0; i < this.fb.length; i++) {
        const p = this.fb[i]!;
        const conv = (shift: number, max: number, nmax: number): number =>
          max === 0 ? 0 : Math.round((((p >>> shift) & max) * nmax) / max);
        const r = conv(old.redShift, old.redMax, next.redMax);
        const g = conv(old.greenShift, old.greenMax, next.greenMax);
        const bl = conv(old.blueShift, old.blueMax, next.blueMax);
        this.fb[i] = ((r << next.redShift) | (g << next.greenShift) | (bl << next.blueShift)) >>> 0;
      }
    } else {
      this.fb.fill(0);
    }
    if (!next.trueColour) this.colourMap.clear();
    this._pixelFormat = next;
  }

  /** SetEncodings (2). */
  setEncodings(encodings: number[]): void {
    const b = Buffer.alloc(4 + 4 * encodings.length);
    b[0] = 2;
    b.writeUInt16BE(encodings.length, 2);
    encodings.forEach((e, i) => b.writeInt32BE(e, 4 + 4 * i));
    this.sendRaw(b);
  }

  /** FramebufferUpdateRequest (3); the whole framebuffer by default. */
  requestUpdate(incremental: boolean, rect?: { x: number; y: number; w: number; h: number }): void {
    const r = rect ?? { x: 0, y: 0, w: this._width, h: this._height };
    const b = Buffer.alloc(10);
    b[0] = 3;
    b[1] = incremental ? 1 : 0;
    b.writeUInt16BE(r.x, 2);
    b.writeUInt16BE(r.y, 4);
    b.writeUInt16BE(r.w, 6);
    b.writeUInt16BE(r.h, 8);
    this.sendRaw(b);
  }

  /** EnableContinuousUpdates (150); the whole framebuffer by default. */
  enableContinuousUpdates(enable: boolean, rect?: { x: number; y: number; w: number; h: number }): void {
    const r = rect ?? { x: 0, y: 0, w: this._width, h: this._height };
    const b = Buffer.alloc(10);
    b[0] = 150;
    b[1] = enable ? 1 : 0;
    b.writeUInt16BE(r.x, 2);
    b.writeUInt16BE(r.y, 4);
    b.writeUInt16BE(r.w, 6);
    b.writeUInt16BE(r.h, 8);
    this.sendRaw(b);
  }

  /** ClientFence (248). The payload is limited to 64 bytes by the spec (use sendRaw() to break that). */
  sendFence(flags: number, payload: Uint8Array): void {
    if (payload.length > 64) throw new Error(`sendFence: payload of ${payload.length} bytes > 64`);
    const b = Buffer.alloc(9 + payload.length);
    b[0] = 248;
    b.writeUInt32BE(flags >>> 0, 4);
    b[8] = payload.length;
    b.set(payload, 9);
    this.sendRaw(b);
  }

  /** KeyEvent (4). */
  sendKey(down: boolean, keysym: number): void {
    const b = Buffer.alloc(8);
    b[0] = 4;
    b[1] = down ? 1 : 0;
    b.writeUInt32BE(keysym >>> 0, 4);
    this.sendRaw(b);
  }

  /** PointerEvent (5). */
  sendPointer(mask: number, x: number, y: number): void {
    const b = Buffer.alloc(6);
    b[0] = 5;
    b[1] = mask;
    b.writeUInt16BE(x, 2);
    b.writeUInt16BE(y, 4);
    this.sendRaw(b);
  }

  /** ClientCutText (6); Latin-1 only. */
  sendCutText(text: string): void {
    const t = encodeLatin1(text, 'sendCutText');
    const b = Buffer.alloc(8 + t.length);
    b[0] = 6;
    b.writeUInt32BE(t.length, 4);
    t.copy(b, 8);
    this.sendRaw(b);
  }

  // ---- updates ----

  /** The next complete FramebufferUpdate (one that already arrived is returned first). */
  nextUpdate(timeoutMs = DEFAULT_UPDATE_TIMEOUT_MS): Promise<RfbUpdate> {
    const u = this.queued.shift();
    if (u) return Promise.resolve(u);
    if (this._error) return Promise.reject(this._error);
    return new Promise<RfbUpdate>((resolve, reject) => {
      const waiter: UpdateWaiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(new Error(`RFB test client: no FramebufferUpdate within ${timeoutMs} ms (${this._updates} received so far)`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  close(): void {
    this.fail(new Error('RFB test client closed'));
  }

  // ---- internals ----

  private fail(err: Error): void {
    this._error ??= err;
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(this._error);
    }
    if (!this.socket.destroyed) this.socket.destroy();
  }

  private write(bytes: Uint8Array | number[]): void {
    this.sendRaw(bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes));
  }

  private async readString(what: string): Promise<string> {
    const len = (await this.q.read(4)).readUInt32BE(0);
    if (len > MAX_STRING) throw new Error(`RFB: ${what} length ${len} is implausible`);
    return (await this.q.read(len)).toString('utf8');
  }

  private async handshake(o: RfbTestClientOptions): Promise<void> {
    const v = (await this.q.read(12)).toString('latin1');
    if (!/^RFB \d{3}\.\d{3}\n$/.test(v)) throw new Error(`RFB: bad ProtocolVersion ${JSON.stringify(v)}`);
    this._serverVersion = v.slice(0, 11);
    const minor = { '3.3': 3, '3.7': 7, '3.8': 8 }[o.version ?? '3.8'];
    this.write(Buffer.from(`RFB 003.00${minor}\n`, 'latin1'));

    let type: number;
    if (minor === 3) {
      type = (await this.q.read(4)).readUInt32BE(0);
      this._securityTypes = [type];
      if (type === 0) {
        const reason = await this.readString('failure reason');
        throw new RfbSecurityError(reason, `RFB connection refused by the server: ${reason}`);
      }
      if (type !== 1 && type !== 2) throw new Error(`RFB 3.3: server chose unsupported security type ${type}`);
    } else {
      const n = (await this.q.read(1))[0]!;
      if (n === 0) {
        const reason = await this.readString('failure reason');
        throw new RfbSecurityError(reason, `RFB connection refused by the server: ${reason}`);
      }
      const types = [...(await this.q.read(n))];
      this._securityTypes = types;
      if (o.password !== undefined && types.includes(2)) type = 2;
      else if (types.includes(1)) type = 1;
      else if (types.includes(2)) type = 2;
      else throw new Error(`RFB: no supported security type among [${types.join(', ')}] (this client does 1 and 2)`);
      this.write([type]);
    }

    if (type === 2) {
      if (o.password === undefined) throw new Error('RFB: the server requires VNC authentication but no password was given');
      const challenge = await this.q.read(16);
      this.write(vncAuthResponse(o.password, Uint8Array.from(challenge)));
    }

    // SecurityResult: always in 3.8; in 3.3 and 3.7 only after VNC authentication.
    if (minor === 8 || type === 2) {
      const status = (await this.q.read(4)).readUInt32BE(0);
      if (status !== 0) {
        if (minor === 8) {
          const reason = await this.readString('failure reason');
          throw new RfbSecurityError(reason, `RFB security handshake failed (status ${status}): ${reason}`);
        }
        throw new RfbSecurityError('', `RFB security handshake failed (status ${status}; RFB 3.${minor} sends no reason)`);
      }
    }

    this.write([(o.shared ?? true) ? 1 : 0]);
    const si = await this.q.read(24);
    const pf = readPixelFormat(si, 4);
    checkPixelFormat(pf, 'ServerInit');
    this._width = si.readUInt16BE(0);
    this._height = si.readUInt16BE(2);
    this._serverPixelFormat = pf;
    this._pixelFormat = { ...pf };
    this.fb = new Uint32Array(this._width * this._height);
    const nameLen = si.readUInt32BE(20);
    if (nameLen > MAX_STRING) throw new Error(`RFB: ServerInit name length ${nameLen} is implausible`);
    this._name = (await this.q.read(nameLen)).toString('utf8');
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        const start = this.q.consumed;
        const type = (await this.q.read(1))[0]!;
        switch (type) {
          case 0:
            await this.readUpdate(start);
            break;
          case 1: {
            const h = await this.q.read(5);
            const first = h.readUInt16BE(1);
            const n = h.readUInt16BE(3);
            const d = await this.q.read(n * 6);
            for (let i = 0; i < n; i++) {
              this.colourMap.set(first + i, [
                scaleTo255(d.readUInt16BE(i * 6), 0xffff),
                scaleTo255(d.readUInt16BE(i * 6 + 2), 0xffff),
                scaleTo255(d.readUInt16BE(i * 6 + 4), 0xffff),
              ]);
            }
            break;
          }
          case 2:
            this._bells++;
            break;
          case 3: {
            const h = await this.q.read(7);
            const len = h.readUInt32BE(3);
            if (len > MAX_STRING) {
              throw new Error(`RFB: ServerCutText length ${len} (0x${len.toString(16)}) is implausible (extended clipboard is not supported)`);
            }
            this._cutTexts.push((await this.q.read(len)).toString('latin1'));
            break;
          }
          case 150:
            this._endOfContinuousUpdates++;
            break;
          case 248: {
            const h = await this.q.read(8);
            const flags = h.readUInt32BE(3);
            const len = h[7]!;
            if (len > 64) throw new Error(`RFB: ServerFence payload of ${len} bytes (the spec allows at most 64)`);
            const payload = Uint8Array.from(await this.q.read(len));
            this._fences.push({ flags, payload });
            if ((flags & RfbFenceFlag.Request) !== 0) this.sendFence(flags & FENCE_UNDERSTOOD, payload);
            break;
          }
          default:
            throw new Error(`RFB test client: unknown server message type ${type}`);
        }
      }
    } catch (e) {
      this.fail(errorOf(e));
    }
  }

  private async readUpdate(start: number): Promise<void> {
    const h = await this.q.read(3);
    const count = h.readUInt16BE(1);
    const rects: RfbRect[] = [];
    for (let i = 0; i < count; i++) {
      const r = await this.q.read(12);
      const rect: RfbRect = {
        x: r.readUInt16BE(0),
        y: r.readUInt16BE(2),
        w: r.readUInt16BE(4),
        h: r.readUInt16BE(6),
        encoding: r.readInt32BE(8),
      };
      rects.push(rect);
      if (rect.encoding === RfbEncoding.LastRect) break;
      await this.decodeRect(rect, i);
    }
    this._updates++;
    const update: RfbUpdate = { rects, bytes: this.q.consumed - start, receivedAt: this.q.lastAt };
    const w = this.waiters.shift();
    if (w) {
      clearTimeout(w.timer);
      w.resolve(update);
    } else {
      this.queued.push(update);
    }
  }

  private checkBounds(r: RfbRect, what: string): void {
    if (r.x + r.w > this._width || r.y + r.h > this._height) {
      throw new Error(
        `RFB: ${what} rectangle ${r.w}x${r.h}+${r.x}+${r.y} exceeds the ${this._width}x${this._height} framebuffer`,
      );
    }
  }

  private async decodeRect(r: RfbRect, index: number): Promise<void> {
    const pf = this._pixelFormat!;
    const bypp = pf.bitsPerPixel / 8;
    switch (r.encoding) {
      case RfbEncoding.Raw: {
        this.checkBounds(r, 'Raw');
        const data = await this.q.read(r.w * r.h * bypp);
        this.putPixels(r, data);
        return;
      }
      case RfbEncoding.CopyRect: {
        this.checkBounds(r, 'CopyRect');
        const s = await this.q.read(4);
        const sx = s.readUInt16BE(0);
        const sy = s.readUInt16BE(2);
        this.checkBounds({ ...r, x: sx, y: sy }, 'CopyRect source');
        const tmp = new Uint32Array(r.w * r.h);
        for (let y = 0; y < r.h; y++) {
          const from = (sy + y) * this._width + sx;
          tmp.set(this.fb.subarray(from, from + r.w), y * r.w);
        }
        for (let y = 0; y < r.h; y++) {
          this.fb.set(tmp.subarray(y * r.w, (y + 1) * r.w), (r.y + y) * this._width + r.x);
        }
        return;
      }
      case RfbEncoding.Zlib: {
        this.checkBounds(r, 'Zlib');
        const len = (await this.q.read(4)).readUInt32BE(0);
        const data = await this.q.read(len);
        this.zlibStream ??= new OrderedInflate('Zlib encoding');
        const out = len === 0 ? Buffer.alloc(0) : await this.zlibStream.inflate(data);
        const want = r.w * r.h * bypp;
        if (out.length !== want) {
          throw new Error(`RFB: Zlib rectangle ${index} inflated to ${out.length} bytes, expected ${want} (${r.w}x${r.h}x${bypp})`);
        }
        this.putPixels(r, out);
        return;
      }
      case RfbEncoding.ZRLE: {
        this.checkBounds(r, 'ZRLE');
        const len = (await this.q.read(4)).readUInt32BE(0);
        const data = await this.q.read(len);
        this.zrleStream ??= new OrderedInflate('ZRLE encoding');
        const out = len === 0 ? Buffer.alloc(0) : await this.zrleStream.inflate(data);
        this.decodeZrle(r, out);
        return;
      }
      case RfbEncoding.DesktopSize:
        this._desktopSizes.push({ encoding: r.encoding, x: r.x, y: r.y, w: r.w, h: r.h });
        this.resize(r.w, r.h);
        return;
      case RfbEncoding.ExtendedDesktopSize: {
        const head = await this.q.read(4);
        const n = head[0]!;
        const d = await this.q.read(n * 16);
        const screens: RfbScreen[] = [];
        for (let i = 0; i < n; i++) {
          const o = i * 16;
          screens.push({
            id: d.readUInt32BE(o),
            x: d.readUInt16BE(o + 4),
            y: d.readUInt16BE(o + 6),
            w: d.readUInt16BE(o + 8),
            h: d.readUInt16BE(o + 10),
            flags: d.readUInt32BE(o + 12),
          });
        }
        this._desktopSizes.push({ encoding: r.encoding, x: r.x, y: r.y, w: r.w, h: r.h, screens });
        // y is the status: on an error the other fields are undefined. A layout-only change keeps the contents.
        if (r.y === 0 && (r.w !== this._width || r.h !== this._height)) this.resize(r.w, r.h);
        return;
      }
      default:
        throw new Error(
          `RFB test client: unknown encoding ${r.encoding} (rectangle ${index}: ${r.w}x${r.h}+${r.x}+${r.y})`,
        );
    }
  }

  /** A new, zeroed framebuffer of w x h (nothing is kept). */
  private resize(w: number, h: number): void {
    this._width = w;
    this._height = h;
    this.fb = new Uint32Array(w * h);
  }

  private putPixels(r: RfbRect, data: Buffer): void {
    const pf = this._pixelFormat!;
    const bypp = pf.bitsPerPixel / 8;
    const read = pixelReader(bypp, pf.bigEndian);
    let o = 0;
    for (let y = 0; y < r.h; y++) {
      let i = (r.y + y) * this._width + r.x;
      for (let x = 0; x < r.w; x++, o += bypp) this.fb[i++] = read(data, o);
    }
  }

  private decodeZrle(r: RfbRect, d: Buffer): void {
    const pf = this._pixelFormat!;
    const cp = zrleCpixel(pf);
    const cs = cp.bytes;
    const readRaw = pixelReader(cs, pf.bigEndian);
    const readCpixel = cp.shift === 0 ? readRaw : (b: Buffer, o: number): number => (readRaw(b, o) << cp.shift) >>> 0;
    const fb = this.fb;
    const W = this._width;
    let p = 0;
    let tile = '';
    const need = (n: number): void => {
      if (p + n > d.length) {
        throw new Error(`RFB: ZRLE data ends inside ${tile} (need ${n} more bytes at ${p}, have ${d.length})`);
      }
    };
    const readRun = (): number => {
      let len = 1;
      for (;;) {
        need(1);
        const b = d[p++]!;
        len += b;
        if (b !== 255) return len;
      }
    };
    const readPalette = (n: number): number[] => {
      need(n * cs);
      const pal: number[] = [];
      for (let i = 0; i < n; i++, p += cs) pal.push(readCpixel(d, p));
      return pal;
    };

    for (let ty = 0; ty < r.h; ty += 64) {
      const th = Math.min(64, r.h - ty);
      for (let tx = 0; tx < r.w; tx += 64) {
        const tw = Math.min(64, r.w - tx);
        const n = tw * th;
        tile = `the ${tw}x${th} tile at +${tx}+${ty} of ZRLE rectangle ${r.w}x${r.h}+${r.x}+${r.y}`;
        const base = (r.y + ty) * W + r.x + tx;
        /** Sets pixels k .. k+len-1 of the tile (row-major) to v. */
        const fill = (k: number, len: number, v: number): void => {
          for (let j = k; j < k + len; j++) fb[base + Math.floor(j / tw) * W + (j % tw)] = v;
        };
        need(1);
        const sub = d[p++]!;
        if (sub === 0) {
          need(n * cs);
          for (let k = 0; k < n; k++, p += cs) fill(k, 1, readCpixel(d, p));
        } else if (sub === 1) {
          fill(0, n, readPalette(1)[0]!);
        } else if (sub <= 16) {
          const pal = readPalette(sub);
          const bits = sub === 2 ? 1 : sub <= 4 ? 2 : 4;
          const mask = (1 << bits) - 1;
          const rowBytes = Math.ceil((tw * bits) / 8);
          need(rowBytes * th);
          for (let y = 0; y < th; y++, p += rowBytes) {
            for (let x = 0; x < tw; x++) {
              const bit = x * bits;
              const idx = (d[p + (bit >> 3)]! >> (8 - bits - (bit & 7))) & mask;
              if (idx >= sub) throw new Error(`RFB: ZRLE packed palette index ${idx} >= palette size ${sub} in ${tile}`);
              fb[base + y * W + x] = pal[idx]!;
            }
          }
        } else if (sub === 128) {
          let k = 0;
          while (k < n) {
            need(cs);
            const v = readCpixel(d, p);
            p += cs;
            const len = readRun();
            if (k + len > n) throw new Error(`RFB: ZRLE plain RLE run of ${len} at pixel ${k} overruns ${tile}`);
            fill(k, len, v);
            k += len;
          }
        } else if (sub >= 130) {
          const size = sub - 128;
          const pal = readPalette(size);
          let k = 0;
          while (k < n) {
            need(1);
            const b = d[p++]!;
            const idx = b & 127;
            if (idx >= size) throw new Error(`RFB: ZRLE palette RLE index ${idx} >= palette size ${size} in ${tile}`);
            const len = b & 128 ? readRun() : 1;
            if (k + len > n) throw new Error(`RFB: ZRLE palette RLE run of ${len} at pixel ${k} overruns ${tile}`);
            fill(k, len, pal[idx]!);
            k += len;
          }
        } else {
          throw new Error(`RFB: ZRLE subencoding ${sub} is unused by the spec (${tile})`);
        }
      }
    }
    if (p !== d.length) {
      throw new Error(`RFB: ZRLE rectangle ${r.w}x${r.h}+${r.x}+${r.y} left ${d.length - p} inflated bytes unused`);
    }
  }
}

/**
 * One VNC client of one connector: the RFB session over its socket. The handshake and the
 * message parser are pure (rfb/handshake.ts, rfb/client-messages.ts); this file decides what to
 * send when.
 *
 * Updates are pushed by flips, never polled: a flip marks the connector changed and every client
 * that may receive an update (it asked with FramebufferUpdateRequest, or turned on continuous
 * updates) gets one computed from the newest frame, in the encoder worker (rfb/rfb-update.ts).
 * A client has at most one update being computed, and none while the socket still holds unsent
 * bytes: a slow client gets the newest frame when it has taken the last one, never a backlog,
 * and its memory is at most one update. Messages that must keep their place in the stream (fence
 * answers, EndOfContinuousUpdates) wait behind the update being computed.
 *
 * Anything wrong from the client (a malformed or unknown message, a limit exceeded, a socket that
 * has taken nothing for `stallMs`) ends that client only, with one log line.
 */
import type { Socket } from 'node:net';
import type { Frame } from '../back/presenter.js';
import type { FrameEncoder } from './frame-encoder.js';
import { epochMs } from './shown-connector.js';
import { type ClientMessage, clientMessageNeeds, parseClientMessage, RfbProtocolError } from './rfb/client-messages.js';
import { RfbHandshake } from './rfb/handshake.js';
import { describePixelFormat, nativePixelFormat, type RfbPixelFormat } from './rfb/pixel-format.js';
import {
  desktopSizeRect,
  EDS_REASON_CLIENT,
  EDS_REASON_SERVER,
  EDS_STATUS_OK,
  EDS_STATUS_PROHIBITED,
  ENCODING_COPY_RECT,
  ENCODING_RAW,
  ENCODING_ZLIB,
  ENCODING_ZRLE,
  endOfContinuousUpdates,
  extendedDesktopSizeRect,
  FENCE_REQUEST,
  FENCE_SUPPORTED,
  PSEUDO_COMPRESS_LEVEL_0,
  PSEUDO_COMPRESS_LEVEL_9,
  PSEUDO_CONTINUOUS_UPDATES,
  PSEUDO_DESKTOP_SIZE,
  PSEUDO_EXTENDED_DESKTOP_SIZE,
  PSEUDO_FENCE,
  PSEUDO_LAST_RECT,
  pseudoUpdate,
  type RfbVersion,
  serverFence,
  serverInit,
} from './rfb/protocol.js';
import type { PixelEncoding, RfbUpdateParams } from './rfb/rfb-update.js';
import type { Rect } from './tiles.js';

/** What a client needs of its connector (vnc-server.ts). */
export interface VncSource {
  readonly name: string;
  /** The frame to show and its visible size, or undefined (nothing shown: black). */
  current(): { frame: Frame; width: number; height: number } | undefined;
  /** The size shown: the mode's, or the connector's configured size when there is none. */
  size(): { width: number; height: number };
  /** Increments on every flip and mode change. */
  readonly seq: number;
  readonly flipTime: number;
  /** A black frame of this size (for a connector that shows nothing). */
  black(width: number, height: number): Frame;
  /** A client asked for exclusive access (shared flag 0): the others go. */
  exclusive(client: VncClient): void;
  removed(client: VncClient): void;
}

export interface VncClientOptions {
  readonly encoder: FrameEncoder<RfbUpdateParams>;
  readonly password?: string | undefined;
  readonly log: (text: string) => void;
  /** A client whose socket takes nothing for this long is disconnected (default 10 s). */
  readonly stallMs?: number;
  /** A client that has not finished the handshake after this long is disconnected (default 30 s). */
  readonly handshakeMs?: number | undefined;
  readonly slot: string;
  /** Called with each update sent: bytes, encode ms and flip-to-written latency (ms). */
  readonly onUpdate?: (bytes: number, encodeMs: number, latencyMs: number) => void;
}

const HANDSHAKE_LIMIT = 4096;
/** Messages waiting to be sent beyond which the client's input is not read (fence answers, ...). */
const MAX_QUEUED_CONTROLS = 64;
/** Updates are written in slices, so a client taking a big one slowly shows progress. */
const WRITE_SLICE = 256 * 1024;
const DEFAULT_ZLIB_LEVEL = 1;

function clip(a: Rect, w: number, h: number): Rect | undefined {
  const x1 = Math.min(a.x + a.w, w);
  const y1 = Math.min(a.y + a.h, h);
  return x1 > a.x && y1 > a.y ? { x: a.x, y: a.y, w: x1 - a.x, h: y1 - a.y } : undefined;
}

function contains(a: Rect, b: Rect): boolean {
  return b.x >= a.x && b.y >= a.y && b.x + b.w <= a.x + a.w && b.y + b.h <= a.y + a.h;
}

function union(a: Rect | undefined, b: Rect): Rect {
  if (!a) return b;
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  return { x, y, w: Math.max(a.x + a.w, b.x + b.w) - x, h: Math.max(a.y + a.h, b.y + b.h) - y };
}

export class VncClient {
  readonly peer: string;
  private readonly handshake: RfbHandshake;
  private inbox: Uint8Array[] = [];
  private inboxBytes = 0;
  /** Bytes the message being received needs in all (0: unknown). */
  private needed = 0;
  private handshakeBytes = 0;
  private ready = false;
  private closed = false;
  pf: RfbPixelFormat = nativePixelFormat(undefined);
  /** The framebuffer size the client knows. */
  width = 0;
  height = 0;
  private encoding: PixelEncoding = ENCODING_RAW;
  private copyRect = false;
  private lastRect = false;
  private desktopSize = false;
  private extendedDesktopSize = false;
  private zlibLevel = DEFAULT_ZLIB_LEVEL;
  private fenceSent = false;
  private cuAnnounced = false;
  /** Continuous updates: the area pushed on every change. */
  private cu: Rect | undefined;
  /** The area asked for by FramebufferUpdateRequest since the last update, and whether whole. */
  private request: { area: Rect; full: boolean } | undefined;
  /** Pseudo-rectangles owed to the client, sent as an update of their own before any pixels. */
  private layoutPending = false;
  private refusalPending = false;
  private resizePending = false;
  /** The connection's Zlib / ZRLE stream has carried data (the client's inflater is mid-stream). */
  private zlibUsed = false;
  private zrleUsed = false;
  /** The source seq and area the last update was computed for (nothing to do until either grows). */
  private lastSeq = -1;
  private lastArea: Rect | undefined;
  private busy = false;
  /** Control messages waiting behind the update being computed. */
  private after: Uint8Array[] = [];
  private stallTimer: NodeJS.Timeout | undefined;
  /** Bytes to send (slices) and callbacks to run once what precedes them was sent. */
  private readonly out: (Uint8Array | (() => void))[] = [];
  private writing = false;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private clippedLogged = false;

  constructor(
    private readonly socket: Socket,
    private readonly source: VncSource,
    private readonly o: VncClientOptions,
  ) {
    this.peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.handshake = new RfbHandshake({ password: o.password });
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.receive(d));
    socket.on('error', () => undefined);
    socket.on('close', () => this.end(undefined));
    socket.on('end', () => this.end(undefined));
    const hs = o.handshakeMs ?? 30_000;
    this.handshakeTimer = setTimeout(() => this.end(`no handshake within ${hs} ms`), hs);
    this.handshakeTimer.unref();
    this.write(this.handshake.greeting());
  }

  private get label(): string {
    return `vnc ${this.source.name}: client ${this.peer}`;
  }

  /**
   * Ends the session with one log line (saying why, if it was the client's fault). `flush`: send
   * what is queued first (a handshake failure's reason), else drop it.
   */
  end(why: string | undefined, flush = false): void {
    if (this.closed) return;
    this.closed = true;
    this.o.log(why ? `${this.label}: ${why}; disconnected` : `${this.label}: disconnected`);
    clearTimeout(this.stallTimer);
    clearTimeout(this.handshakeTimer);
    if (flush) {
      for (const b of this.out) if (typeof b !== 'function') this.socket.write(b);
      this.socket.end();
      // A client that does not take the last bytes does not keep the socket.
      setTimeout(() => this.socket.destroy(), 2000).unref();
    } else {
      this.socket.destroy();
    }
    this.out.length = 0;
    this.o.encoder.forget(this.o.slot);
    this.source.removed(this);
  }

  /**
   * Queues bytes for the client. They go to the socket one slice at a time, the next when the
   * last has been handed to the kernel, so a client reading a big update slowly shows progress
   * (Node would hand buffered chunks over in one writev and report them all at once). `done`:
   * called once `b` has all been handed over.
   */
  private write(b: Uint8Array, done?: () => void): void {
    if (this.closed) return;
    for (let o = 0; o < b.length; o += WRITE_SLICE) this.out.push(b.subarray(o, o + WRITE_SLICE));
    if (done) this.out.push(done);
    this.flush();
  }

  /** Whether everything queued has gone to the kernel. */
  private get flushed(): boolean {
    return !this.writing && this.out.length === 0;
  }

  private flush(): void {
    while (!this.writing && !this.closed) {
      const next = this.out.shift();
      if (next === undefined) {
        clearTimeout(this.stallTimer);
        this.stallTimer = undefined;
        if (this.socket.isPaused()) this.socket.resume();
        this.pump();
        return;
      }
      if (typeof next === 'function') {
        next();
        continue;
      }
      this.writing = true;
      this.armStall();
      this.socket.write(next, (err) => {
        this.writing = false;
        if (!err) this.flush();
      });
    }
  }

  /** The client is disconnected if its socket takes nothing for stallMs. */
  private armStall(): void {
    clearTimeout(this.stallTimer);
    const ms = this.o.stallMs ?? 10_000;
    this.stallTimer = setTimeout(() => {
      let waiting = 0;
      for (const b of this.out) if (typeof b !== 'function') waiting += b.length;
      this.end(`took nothing for ${ms} ms with ${waiting + this.socket.writableLength} bytes waiting (not reading)`);
    }, ms);
    this.stallTimer.unref();
  }

  private receive(d: Buffer): void {
    if (this.closed) return;
    try {
      if (!this.ready) {
        this.handshakeBytes += d.length;
        if (this.handshakeBytes > HANDSHAKE_LIMIT) throw new RfbProtocolError(`sent ${this.handshakeBytes} bytes during the handshake`);
        const r = this.handshake.receive(d);
        for (const b of r.send) this.write(b);
        if (r.error) {
          this.end(`handshake: ${r.error}`, true);
          return;
        }
        if (!r.done) return;
        clearTimeout(this.handshakeTimer);
        this.start(r.done.version, r.done.shared);
        if (this.closed) return;
        this.consume(r.done.rest);
        return;
      }
      this.consume(d);
    } catch (e) {
      if (e instanceof RfbProtocolError) this.end(e.message);
      else this.end(`internal error: ${(e as Error).message}`);
    }
  }

  private start(version: RfbVersion, shared: boolean): void {
    this.ready = true;
    if (!shared) this.source.exclusive(this);
    const { width, height } = this.source.size();
    this.width = width;
    this.height = height;
    this.pf = nativePixelFormat(this.source.current()?.frame.format);
    this.write(serverInit(width, height, this.pf, this.source.name));
    this.o.log(`${this.label}: connected (RFB ${version}${shared ? ', shared' : ', exclusive'}; ${width}x${height} ${describePixelFormat(this.pf)})`);
  }

  /**
   * Handles what the client sent. A message cut by the network waits as a list of chunks until
   * all of it is there (the parser bounds how much that can be), and is joined once.
   */
  private consume(d: Uint8Array): void {
    this.inbox.push(d);
    this.inboxBytes += d.length;
    if (this.inboxBytes < this.needed) return;
    let buf = this.inbox.length === 1 ? this.inbox[0]! : Buffer.concat(this.inbox);
    this.inbox = [];
    this.inboxBytes = 0;
    let o = 0;
    while (o < buf.length && !this.closed) {
      const rest = buf.subarray(o);
      const m = parseClientMessage(rest);
      if (!m) {
        this.needed = clientMessageNeeds(rest);
        break;
      }
      o += m.size;
      this.needed = 0;
      this.handle(m.msg);
    }
    if (o < buf.length && !this.closed) {
      buf = buf.slice(o);
      this.inbox = [buf];
      this.inboxBytes = buf.length;
    }
    // A client that sends faster than it reads waits: nothing more is read until its answers went out.
    if (this.queuedControls() > MAX_QUEUED_CONTROLS) this.socket.pause();
    this.pump();
  }

  private queuedControls(): number {
    return this.out.length + this.after.length;
  }

  private handle(m: ClientMessage): void {
    switch (m.type) {
      case 'setPixelFormat':
        this.pf = m.pf;
        return;
      case 'setEncodings':
        this.setEncodings(m.encodings);
        return;
      case 'updateRequest': {
        if (this.cu && m.incremental) return;
        const area = clip(m.area, this.width, this.height);
        if (!area) return;
        this.request = { area: union(this.request?.area, area), full: (this.request?.full ?? false) || !m.incremental };
        return;
      }
      case 'key':
      case 'pointer':
      case 'cutText':
        // displif carries no input and no clipboard: parsed (the stream stays in step) and dropped.
        return;
      case 'enableContinuousUpdates':
        if (m.enable) {
          this.cu = clip(m.area, this.width, this.height) ?? { x: 0, y: 0, w: this.width, h: this.height };
          this.lastSeq = -1;
        } else {
          this.cu = undefined;
          this.control(endOfContinuousUpdates());
        }
        return;
      case 'fence':
        // Messages are handled strictly in order, so every flag is honoured by answering in place.
        if (m.flags & FENCE_REQUEST) this.control(serverFence(m.flags & FENCE_SUPPORTED, m.payload));
        return;
      case 'setDesktopSize':
        // The guest's mode is the guest's to set: refused, and said so as the extension asks.
        if (this.extendedDesktopSize) this.refusalPending = true;
        return;
    }
  }

  private setEncodings(list: readonly number[]): void {
    const has = (e: number): boolean => list.includes(e);
    this.encoding = list.find((e): e is PixelEncoding => e === ENCODING_ZRLE || e === ENCODING_ZLIB || e === ENCODING_RAW) ?? ENCODING_RAW;
    this.copyRect = has(ENCODING_COPY_RECT);
    // LastRect only for clients that also speak ContinuousUpdates (TigerVNC, noVNC): vncsnapshot
    // announces LastRect but reads the rectangle count and hangs on 0xFFFF.
    this.lastRect = has(PSEUDO_LAST_RECT) && has(PSEUDO_CONTINUOUS_UPDATES);
    this.desktopSize = has(PSEUDO_DESKTOP_SIZE);
    const ext = has(PSEUDO_EXTENDED_DESKTOP_SIZE);
    // The extension asks the server to tell a client its layout as soon as it says it understands it.
    if (ext && !this.extendedDesktopSize) this.layoutPending = true;
    this.extendedDesktopSize = ext;
    const level = list.find((e) => e >= PSEUDO_COMPRESS_LEVEL_0 && e <= PSEUDO_COMPRESS_LEVEL_9);
    this.zlibLevel = level === undefined ? DEFAULT_ZLIB_LEVEL : level - PSEUDO_COMPRESS_LEVEL_0;
    if (has(PSEUDO_CONTINUOUS_UPDATES) && !this.cuAnnounced) {
      // EndOfContinuousUpdates is how a server says it supports them.
      this.cuAnnounced = true;
      this.control(endOfContinuousUpdates());
    }
    if (has(PSEUDO_FENCE) && !this.fenceSent) {
      // A fence request is how a server says it supports fences; the answer is not needed.
      this.fenceSent = true;
      this.control(serverFence(FENCE_REQUEST, new TextEncoder().encode('vdispl')));
    }
  }

  /** Sends a control message in stream order (behind the update being computed). */
  private control(b: Uint8Array): void {
    if (this.busy) this.after.push(b);
    else this.write(b);
  }

  /** The connector changed (flip or mode): maybe send an update. */
  changed(): void {
    this.pump();
  }

  private pump(): void {
    if (this.closed || !this.ready || this.busy || !this.flushed) return;
    const area = this.cu && this.request ? union(this.cu, this.request.area) : (this.cu ?? this.request?.area);
    if (!area) return;
    const size = this.source.size();
    if (size.width !== this.width || size.height !== this.height) {
      if (this.extendedDesktopSize || this.desktopSize) {
        this.width = size.width;
        this.height = size.height;
        if (this.extendedDesktopSize) this.layoutPending = true;
        else this.resizePending = true;
        if (this.cu) this.cu = { x: 0, y: 0, w: size.width, h: size.height };
      } else if (!this.clippedLogged) {
        this.clippedLogged = true;
        this.o.log(`${this.label}: the display is now ${size.width}x${size.height}, but the client cannot be told (no DesktopSize): it keeps ${this.width}x${this.height}`);
      }
    }
    if (this.layoutPending || this.refusalPending || this.resizePending) {
      // Pseudo-rectangles go in an update of their own (an update with ExtendedDesktopSize must
      // not change pixels; early DesktopSize clients want it last): it answers the request, and
      // the pixels (all of them after a resize) follow with the next request or continuous update.
      const rects: Uint8Array[] = [];
      if (this.refusalPending) rects.push(extendedDesktopSizeRect(EDS_REASON_CLIENT, EDS_STATUS_PROHIBITED, this.width, this.height));
      if (this.layoutPending) rects.push(extendedDesktopSizeRect(EDS_REASON_SERVER, EDS_STATUS_OK, this.width, this.height));
      if (this.resizePending) rects.push(desktopSizeRect(this.width, this.height));
      this.refusalPending = this.layoutPending = this.resizePending = false;
      this.request = undefined;
      this.write(pseudoUpdate(rects));
      return;
    }
    const full = this.request?.full ?? false;
    const seq = this.source.seq;
    if (!full && seq === this.lastSeq && this.lastArea && contains(this.lastArea, area)) return;
    const cur = this.source.current();
    const width = Math.min(cur?.width ?? this.width, this.width);
    const height = Math.min(cur?.height ?? this.height, this.height);
    const frame = cur?.frame ?? this.source.black(this.width, this.height);
    const flipTime = this.source.flipTime;
    const request = this.request;
    const continued = this.encoding === ENCODING_ZLIB ? this.zlibUsed : this.encoding === ENCODING_ZRLE ? this.zrleUsed : false;
    const params: RfbUpdateParams = {
      pf: this.pf,
      encoding: this.encoding,
      copyRect: this.copyRect,
      lastRect: this.lastRect,
      zlibLevel: this.zlibLevel,
      full,
      area: clip(area, width, height) ?? { x: 0, y: 0, w: 0, h: 0 },
      continued,
    };
    this.busy = true;
    this.lastSeq = seq;
    this.lastArea = area;
    this.o.encoder.encode({ slot: this.o.slot, frame, width, height, params }).then(
      (r) => {
        this.busy = false;
        if (this.closed) return;
        if (r.msg.length === 0 && request?.full && this.request === request) {
          // A non-incremental request whose area has nothing of the frame in it (a smaller mode
          // than the client knows): answered with an empty update, not retried.
          this.request = undefined;
          this.write(Uint8Array.of(0, 0, 0, 0));
        }
        if (r.msg.length > 0) {
          // The request is answered (a newer one, arrived meanwhile, is kept).
          if (this.request === request) this.request = undefined;
          if (params.encoding === ENCODING_ZLIB) this.zlibUsed = true;
          if (params.encoding === ENCODING_ZRLE) this.zrleUsed = true;
          this.write(r.msg, () => this.o.onUpdate?.(r.msg.length, r.encodeMs, epochMs() - flipTime));
        }
        const after = this.after;
        this.after = [];
        for (const b of after) this.write(b);
        this.pump();
      },
      (e: unknown) => {
        this.busy = false;
        // The zlib streams lived in the encoder: this client cannot be continued.
        this.end(`encoding an update failed: ${e instanceof Error ? e.message : String(e)}`);
      },
    );
  }
}

/**
 * The display card a guest program draws with: KMS-like (connectors, dumb buffers,
 * framebuffers, mode set, page flip), over one connected vdispl device. Every call is one
 * displif request (or two, for a flip: the response, then the frame-done event) and rejects with
 * a DisplayError carrying the backend's status.
 *
 *   const card = await front.waitCard();
 *   const [out] = card.connectors;
 *   const buf = await card.createDumb({ width: out.width, height: out.height, format: DRM_FORMAT_XRGB8888 });
 *   buf.pixels.fill(0xff);                 // the buffer's own memory, shared with the backend
 *   const fb = await card.addFramebuffer(buf);
 *   await card.setMode(out, fb);
 *   await card.pageFlip(out, fb);          // resolves on frame-done
 *
 * When the backend goes away the card is unplugged: every pending and later call rejects with
 * -ENODEV, and its buffers are released. The program then calls `card.close()`; the device
 * reconnects when a backend is back and `front.waitCard()` gives a new card.
 */
import { dumbLayout, type PixelFormat, pixelFormatByFourcc, XEN_FRONT_FORMATS } from '../abi/fourcc.js';
import type { DisplResp } from '../abi/displif-packets.js';
import {
  DISPLIF_OPERATION_NAMES,
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
} from '../abi/displif-constants.js';
import { XEN_ERRNO } from '../abi/xen-errno.js';
import { DmaBuf } from '../dmabuf/dmabuf.js';
import type { Platform } from '../hypervisor/platform.js';
import { FrontShbuf, ShbufError } from '../shbuf/front-shbuf.js';
import type { FrontChannel, RequestBody } from './channel.js';
import { DisplayError } from './errors.js';

export interface ConnectorConfig {
  readonly width: number;
  readonly height: number;
  readonly uniqueId: string;
}

export class Connector {
  status: 'connected' | 'disconnected' = 'connected';
  /** The framebuffer last set or flipped to (undefined: disabled). */
  current: Framebuffer | undefined;
  constructor(
    readonly index: number,
    readonly uniqueId: string,
    readonly width: number,
    readonly height: number,
    /** Pixel formats the card accepts for framebuffers (Linux xen-front's list). */
    readonly formats: readonly PixelFormat[],
  ) {}
}

export interface DumbBufferOptions {
  readonly width: number;
  readonly height: number;
  /** A DRM fourcc (DRM_FORMAT_*), or a PixelFormat. */
  readonly format: number | PixelFormat;
}

export class DisplayBuffer {
  private destroyed = false;
  constructor(
    private readonly card: Card,
    readonly cookie: bigint,
    readonly shbuf: FrontShbuf,
    /** 0 for an imported buffer. */
    readonly width: number,
    readonly height: number,
    readonly format: PixelFormat | undefined,
    /** Bytes per row (Linux: ceil(width * bpp / 8)). */
    readonly pitch: number,
    /** buffer_sz: pitch * height. */
    readonly size: number,
    /** Where pixel data starts (imported buffers). */
    readonly offset: number,
  ) {}

  /** The buffer's memory (writable, zero-copy: the backend reads these very pages). */
  get pixels(): Uint8Array {
    const v = this.shbuf.view;
    if (!v) throw new DisplayError(-XEN_ERRNO.EINVAL, this.destroyed ? 'the buffer was destroyed' : 'the buffer is not one contiguous view');
    return v;
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }

  /** DBUF_DESTROY, in Linux's order for the allocation mode. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await this.card.destroyBuffer(this);
  }

  /** Frees without telling the backend (it is gone). */
  dropLocal(): void {
    if (!this.shbuf.isFreed) this.shbuf.free();
    this.destroyed = true;
  }
}

export class Framebuffer {
  private removed = false;
  constructor(
    private readonly card: Card,
    readonly cookie: bigint,
    readonly buffer: DisplayBuffer,
    readonly format: PixelFormat,
    readonly width: number,
    readonly height: number,
  ) {}

  get isRemoved(): boolean {
    return this.removed;
  }

  /** FB_DETACH. */
  async remove(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    await this.card.detach(this);
  }
}

interface FlipWaiter {
  readonly cookie: bigint;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

export interface CardOptions {
  readonly platform: Platform;
  readonly backendDomid: number;
  readonly beAlloc: boolean;
  readonly connectors: readonly ConnectorConfig[];
  readonly channels: readonly FrontChannel[];
  /** Frame-done timeout (Linux: 3000 + 100 ms). */
  readonly flipTimeoutMs: number;
  /** The program let go of the card. */
  readonly onClose: (card: Card) => void;
  /** A new dbuf/fb cookie (unique across the device's cards; default: per card). */
  readonly cookie?: () => bigint;
}

export class Card {
  readonly connectors: readonly Connector[];
  readonly beAlloc: boolean;
  private nextCookie = 1n;
  private readonly buffers = new Set<DisplayBuffer>();
  private readonly fbs = new Set<Framebuffer>();
  private readonly flips: FlipWaiter[][];
  private unpluggedBy: DisplayError | undefined;
  private closed = false;
  /** close() in progress or done: new objects are refused. */
  private closing: Promise<void> | undefined;
  private readonly unplugListeners = new Set<(e: DisplayError) => void>();
  /** Counters. */
  readonly stats = { flips: 0, frameDone: 0, flipTimeouts: 0 };

  constructor(private readonly opts: CardOptions) {
    this.beAlloc = opts.beAlloc;
    this.connectors = opts.connectors.map((c, i) => new Connector(i, c.uniqueId, c.width, c.height, XEN_FRONT_FORMATS));
    this.flips = opts.connectors.map(() => []);
    for (const ch of opts.channels) {
      ch.onEvent = (evt) => {
        if (evt.type === XENDISPL_EVT_PG_FLIP && !('unknown' in evt)) this.frameDone(ch.index, evt.fb_cookie);
      };
    }
  }

  get unplugged(): boolean {
    return this.unpluggedBy !== undefined;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Runs `listener` when the card is unplugged (at once if it already is). */
  onUnplug(listener: (e: DisplayError) => void): () => void {
    if (this.unpluggedBy) listener(this.unpluggedBy);
    else this.unplugListeners.add(listener);
    return () => this.unplugListeners.delete(listener);
  }

  private check(): void {
    if (this.closed) throw new DisplayError(-XEN_ERRNO.ENODEV, 'the card was closed');
    if (this.unpluggedBy) throw this.unpluggedBy;
  }

  /** check(), and refuses new objects once close() has started. */
  private checkOpen(): void {
    this.check();
    if (this.closing) throw new DisplayError(-XEN_ERRNO.ENODEV, 'the card is closing');
  }

  /** A page-directory shared buffer; its errors as DisplayError. */
  private newShbuf(opts: Omit<Parameters<typeof FrontShbuf.create>[0], 'platform' | 'backendDomid'>): FrontShbuf {
    try {
      return FrontShbuf.create({ platform: this.opts.platform, backendDomid: this.opts.backendDomid, ...opts });
    } catch (e) {
      if (e instanceof ShbufError) throw new DisplayError(e.errno, e.message);
      throw e;
    }
  }

  /**
   * Sends the request creating `buf`, which is registered first: a close() meanwhile destroys it
   * through the usual path (its DBUF_DESTROY queued behind the DBUF_CREATE on the same ring), and
   * then this rejects with ENODEV. A refused request unregisters it.
   */
  private async createOnBackend(buf: DisplayBuffer, body: RequestBody): Promise<void> {
    this.buffers.add(buf);
    try {
      await this.call(0, body);
    } catch (e) {
      this.buffers.delete(buf);
      // close() got there first: it may have let go of our side (a be-alloc directory) before
      // the backend read it, so whatever the backend answered, the reason is the close.
      const closed = buf.isDestroyed;
      buf.dropLocal();
      if (closed) throw new DisplayError(-XEN_ERRNO.ENODEV, 'the card was closed');
      throw e;
    }
    if (buf.isDestroyed) throw new DisplayError(-XEN_ERRNO.ENODEV, 'the card was closed');
  }

  private connectorOf(c: Connector | number): Connector {
    const conn = typeof c === 'number' ? this.connectors[c] : c;
    if (!conn || this.connectors[conn.index] !== conn) throw new DisplayError(-XEN_ERRNO.EINVAL, `no connector ${typeof c === 'number' ? c : c.index} on this card`);
    return conn;
  }

  /** Sends `body` on connector `index`'s ring; rejects unless the status is 0. */
  private async call(index: number, body: RequestBody): Promise<DisplResp> {
    this.check();
    const r = await this.opts.channels[index]!.request(body);
    if (r.status !== 0) {
      throw new DisplayError(r.status < 0 ? r.status : -XEN_ERRNO.EIO, `${DISPLIF_OPERATION_NAMES[body.operation]} on connector ${index} failed with status ${r.status}`);
    }
    return r;
  }

  private cookie(): bigint {
    return this.opts.cookie ? this.opts.cookie() : this.nextCookie++;
  }

  /** A dumb buffer (DBUF_CREATE) in the device's allocation mode. */
  async createDumb(opts: DumbBufferOptions): Promise<DisplayBuffer> {
    this.checkOpen();
    const format = typeof opts.format === 'number' ? pixelFormatByFourcc(opts.format) : opts.format;
    if (!format) throw new DisplayError(-XEN_ERRNO.EINVAL, `unknown pixel format ${typeof opts.format === 'number' ? `0x${opts.format.toString(16)}` : opts.format.name}`);
    const lay = dumbLayout(opts.width, opts.height, format.bpp);
    if (!lay.ok) throw new DisplayError(-XEN_ERRNO.EINVAL, lay.error.message);
    const { pitch, size } = lay.value;
    const shbuf = this.newShbuf({ size, mode: this.beAlloc ? 'backend-alloc' : 'frontend-alloc' });
    const cookie = this.cookie();
    const buf = new DisplayBuffer(this, cookie, shbuf, opts.width, opts.height, format, pitch, size, 0);
    await this.createOnBackend(buf, {
      operation: XENDISPL_OP_DBUF_CREATE,
      dbuf_cookie: cookie,
      width: opts.width,
      height: opts.height,
      bpp: format.bpp,
      buffer_sz: size,
      flags: this.beAlloc ? XENDISPL_DBUF_FLG_REQ_ALLOC : 0,
      gref_directory: shbuf.firstRef,
      data_ofs: 0,
    });
    if (this.beAlloc) {
      try {
        shbuf.mapBackendPages();
      } catch (e) {
        this.buffers.delete(buf);
        buf.dropLocal();
        // Mapped nothing: tell the backend to drop the buffer it made.
        await this.opts.channels[0]!.request({ operation: XENDISPL_OP_DBUF_DESTROY, dbuf_cookie: cookie }).catch(() => undefined);
        if (e instanceof ShbufError) throw new DisplayError(e.errno, e.message);
        throw e;
      }
    }
    return buf;
  }

  /** @internal DBUF_DESTROY for DisplayBuffer.destroy(). */
  async destroyBuffer(buf: DisplayBuffer): Promise<void> {
    this.buffers.delete(buf);
    if (this.unpluggedBy || this.closed) {
      buf.dropLocal();
      return;
    }
    if (buf.shbuf.mode === 'backend-alloc') {
      // Linux: release our references first, so the backend can free the buffer.
      buf.shbuf.free();
      await this.call(0, { operation: XENDISPL_OP_DBUF_DESTROY, dbuf_cookie: buf.cookie });
      return;
    }
    try {
      await this.call(0, { operation: XENDISPL_OP_DBUF_DESTROY, dbuf_cookie: buf.cookie });
    } finally {
      // Whatever the result: grants still mapped are ended when the backend unmaps them.
      buf.shbuf.free();
    }
  }

  /** FB_ATTACH: a framebuffer over `buffer` (its format and size by default). */
  async addFramebuffer(buffer: DisplayBuffer, opts: { format?: number | PixelFormat; width?: number; height?: number } = {}): Promise<Framebuffer> {
    this.checkOpen();
    const f = opts.format ?? buffer.format;
    const format = typeof f === 'number' ? pixelFormatByFourcc(f) : f;
    if (!format) throw new DisplayError(-XEN_ERRNO.EINVAL, `unknown or missing pixel format ${f === undefined ? '(none)' : typeof f === 'number' ? `0x${f.toString(16)}` : f.name}`);
    const width = opts.width ?? buffer.width;
    const height = opts.height ?? buffer.height;
    if (buffer.isDestroyed) throw new DisplayError(-XEN_ERRNO.ENOENT, 'the buffer was destroyed');
    // Cookies are per device: another card's buffer could name one of ours.
    if (!this.buffers.has(buffer)) throw new DisplayError(-XEN_ERRNO.EINVAL, 'the buffer belongs to another card');
    const cookie = this.cookie();
    // Registered first, as buffers are (createOnBackend): a close() meanwhile detaches it.
    const fb = new Framebuffer(this, cookie, buffer, format, width, height);
    this.fbs.add(fb);
    try {
      await this.call(0, { operation: XENDISPL_OP_FB_ATTACH, dbuf_cookie: buffer.cookie, fb_cookie: cookie, width, height, pixel_format: format.fourcc });
    } catch (e) {
      this.fbs.delete(fb);
      throw e;
    }
    if (fb.isRemoved) throw new DisplayError(-XEN_ERRNO.ENODEV, 'the card was closed');
    return fb;
  }

  /** @internal FB_DETACH for Framebuffer.remove(). */
  async detach(fb: Framebuffer): Promise<void> {
    this.fbs.delete(fb);
    if (this.unpluggedBy || this.closed) return;
    await this.call(0, { operation: XENDISPL_OP_FB_DETACH, fb_cookie: fb.cookie });
  }

  /** SET_CONFIG: shows `fb` on `connector` (at 0, 0, the framebuffer's size). */
  async setMode(connector: Connector | number, fb: Framebuffer): Promise<void> {
    const c = this.connectorOf(connector);
    await this.call(c.index, { operation: XENDISPL_OP_SET_CONFIG, fb_cookie: fb.cookie, x: 0, y: 0, width: fb.width, height: fb.height, bpp: fb.format.bpp });
    c.current = fb;
  }

  /** SET_CONFIG with all zeros: the connector shows nothing. */
  async disable(connector: Connector | number): Promise<void> {
    const c = this.connectorOf(connector);
    await this.call(c.index, { operation: XENDISPL_OP_SET_CONFIG, fb_cookie: 0n, x: 0, y: 0, width: 0, height: 0, bpp: 0 });
    c.current = undefined;
  }

  /**
   * PG_FLIP: resolves when the backend reports the frame presented (EVT_PG_FLIP), rejects with
   * the request's status, or -ETIMEDOUT after the frame-done timeout (3100 ms).
   */
  pageFlip(connector: Connector | number, fb: Framebuffer): Promise<void> {
    let c: Connector;
    try {
      c = this.connectorOf(connector);
      this.check();
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    this.stats.flips++;
    const list = this.flips[c.index]!;
    return new Promise<void>((resolve, reject) => {
      const w: FlipWaiter = {
        cookie: fb.cookie,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.removeFlip(c.index, w);
          this.stats.flipTimeouts++;
          reject(new DisplayError(-XEN_ERRNO.ETIMEDOUT, `frame done timed out on connector ${c.index} after ${this.opts.flipTimeoutMs} ms`));
        }, this.opts.flipTimeoutMs),
      };
      // Waiting before sending: the event may overtake the response.
      list.push(w);
      this.call(c.index, { operation: XENDISPL_OP_PG_FLIP, fb_cookie: fb.cookie }).then(() => {
        c.current = fb;
      }, (e: Error) => {
        if (this.removeFlip(c.index, w)) {
          clearTimeout(w.timer);
          reject(e);
        }
      });
    });
  }

  private removeFlip(index: number, w: FlipWaiter): boolean {
    const list = this.flips[index]!;
    const i = list.indexOf(w);
    if (i < 0) return false;
    list.splice(i, 1);
    return true;
  }

  private frameDone(index: number, cookie: bigint): void {
    const list = this.flips[index];
    if (!list) return;
    const i = list.findIndex((w) => w.cookie === cookie);
    if (i < 0) return;
    const [w] = list.splice(i, 1);
    clearTimeout(w!.timer);
    this.stats.frameDone++;
    w!.resolve();
  }

  /** GET_EDID: the connector's EDID as the backend describes it. */
  async getEdid(connector: Connector | number): Promise<Uint8Array> {
    const c = this.connectorOf(connector);
    this.check();
    const shbuf = this.newShbuf({ size: XENDISPL_EDID_MAX_SIZE, mode: 'frontend-alloc' });
    try {
      const r = await this.call(c.index, { operation: XENDISPL_OP_GET_EDID, buffer_sz: XENDISPL_EDID_MAX_SIZE, gref_directory: shbuf.firstRef });
      const n = r.edid_sz ?? 0;
      if (n === 0 || n > XENDISPL_EDID_MAX_SIZE) throw new DisplayError(-XEN_ERRNO.EIO, `the backend reported an EDID of ${n} bytes`);
      return shbuf.view!.slice(0, n);
    } finally {
      shbuf.free();
    }
  }

  /**
   * Exports `buffer` as a dma-buf another device of this guest can use, zero-copy. The buffer
   * must stay alive while the dma-buf is used; put() the dma-buf when done.
   */
  exportBuffer(buffer: DisplayBuffer): DmaBuf {
    this.check();
    if (buffer.isDestroyed) throw new DisplayError(-XEN_ERRNO.ENOENT, 'the buffer was destroyed');
    const p = this.opts.platform;
    const gfns = buffer.shbuf.gfns;
    return DmaBuf.create({
      size: buffer.shbuf.pages * 4096,
      page: (i) => buffer.shbuf.page(i),
      contiguous: p.memory.contiguous(gfns),
      gfns,
      domid: p.domid,
      foreign: buffer.shbuf.mode === 'backend-alloc',
      exporter: 'vdispl',
      release: () => undefined,
    });
  }

  /**
   * Imports a dma-buf of this guest (PRIME import): DBUF_CREATE with width = height = bpp = 0,
   * granting the dma-buf's own pages to the backend. The display buffer holds a reference on the
   * dma-buf until the backend has let go of every page.
   */
  async importBuffer(dmabuf: DmaBuf, opts: { offset?: number } = {}): Promise<DisplayBuffer> {
    this.checkOpen();
    const gfns = dmabuf.gfns;
    if (!gfns || dmabuf.foreign) throw new DisplayError(-XEN_ERRNO.EINVAL, 'only a dma-buf of this domain\'s own memory can be imported');
    const offset = opts.offset ?? 0;
    const ref = dmabuf.get();
    let shbuf: FrontShbuf;
    try {
      shbuf = this.newShbuf({ size: dmabuf.size, mode: 'frontend-alloc', pages: { gfns, onUnshared: () => ref.put() } });
    } catch (e) {
      ref.put();
      throw e;
    }
    const cookie = this.cookie();
    const buf = new DisplayBuffer(this, cookie, shbuf, 0, 0, undefined, 0, dmabuf.size, offset);
    await this.createOnBackend(buf, { operation: XENDISPL_OP_DBUF_CREATE, dbuf_cookie: cookie, width: 0, height: 0, bpp: 0, buffer_sz: dmabuf.size, flags: 0, gref_directory: shbuf.firstRef, data_ofs: offset });
    return buf;
  }

  /** @internal The backend went away: fail everything, release every buffer. */
  unplug(err: DisplayError): void {
    if (this.unpluggedBy) return;
    this.unpluggedBy = err;
    for (const c of this.connectors) c.status = 'disconnected';
    for (const list of this.flips) {
      for (const w of list.splice(0)) {
        clearTimeout(w.timer);
        w.reject(err);
      }
    }
    for (const b of this.buffers) b.dropLocal();
    this.buffers.clear();
    this.fbs.clear();
    for (const l of this.unplugListeners) l(err);
    this.unplugListeners.clear();
  }

  /**
   * The program lets go of the card: flips still pending reject, buffers are released (destroyed
   * on the backend if it is still there). After an unplug this lets the device reconnect.
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    if (!this.unpluggedBy) {
      // All issued at once, so every object (those still being created too) is marked gone
      // before any response can arrive; on ring 0 the detaches and destroys queue behind any
      // create in flight, and the backend keeps a shown framebuffer until its connector is off.
      const ops: Promise<void>[] = [];
      for (const c of this.connectors) if (c.current) ops.push(this.disable(c));
      for (const fb of this.fbs) ops.push(fb.remove());
      for (const buf of this.buffers) ops.push(buf.destroy());
      await Promise.allSettled(ops);
    }
    this.closed = true;
    const err = new DisplayError(-XEN_ERRNO.ENODEV, 'the card was closed');
    for (const list of this.flips) {
      for (const w of list.splice(0)) {
        clearTimeout(w.timer);
        w.reject(err);
      }
    }
    for (const b of this.buffers) b.dropLocal();
    this.buffers.clear();
    this.opts.onClose(this);
  }
}

export { DisplayError };

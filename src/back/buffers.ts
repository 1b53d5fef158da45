/**
 * One frontend device's display buffers and framebuffers (displ_be's BuffersStorage), shared by
 * all its connectors, with per-frontend limits so a misbehaving guest cannot exhaust the backend.
 *
 * Lifetimes: a display buffer lives while it is in the table (until DBUF_DESTROY) or a
 * framebuffer uses it; a framebuffer lives while it is attached (until FB_DETACH) or a connector
 * shows it or presents it. Only then is the memory unmapped (or ungranted and freed), so an
 * output never reads pages that went away under it. Limits count buffers until they are
 * really released.
 */
import { type PixelFormat, pixelFormatByFourcc, pixelRowBytes } from '../abi/fourcc.js';
import { pagesForBytes } from '../abi/page-directory.js';
import type { DbufCreateReq, FbAttachReq } from '../abi/displif-packets.js';
import { XENDISPL_DBUF_FLG_REQ_ALLOC } from '../abi/displif-constants.js';
import { XEN_ERRNO } from '../abi/xen-errno.js';
import type { DmaBuf } from '../dmabuf/dmabuf.js';
import type { Platform } from '../hypervisor/platform.js';
import { allocateGuestBuffer, type BackBuffer, mapGuestBuffer } from './buffer-memory.js';
import { EDID_MAX_DIMENSION } from './edid.js';
import type { Frame } from './presenter.js';

export interface DisplayLimits {
  /** Display buffers one frontend device may have at once (default 256). */
  readonly maxBuffers: number;
  /** Framebuffers one frontend device may have attached at once (default 256). */
  readonly maxFramebuffers: number;
  /** Bytes of display buffers (mapped or allocated) per frontend device (default 128 MiB). */
  readonly maxBytes: number;
  /**
   * Bytes of display buffers for all frontends together (default 256 MiB), so that guests keeping
   * within their own limit still cannot exhaust the backend domain (its grant mappings, grant
   * entries and memory: give it at least this much of each).
   */
  readonly maxTotalBytes: number;
  /** Frame-done events a connector may hold back while the event page is full (default 1024). */
  readonly maxPendingEvents: number;
  /** Connectors per device (default 64). */
  readonly maxConnectors: number;
  /** Largest connector resolution accepted (default 8192 in each direction: what GET_EDID can describe). */
  readonly maxResolution: number;
}

export const DEFAULT_LIMITS: DisplayLimits = {
  maxBuffers: 256,
  maxFramebuffers: 256,
  maxBytes: 128 << 20,
  maxTotalBytes: 256 << 20,
  maxPendingEvents: 1024,
  maxConnectors: 64,
  maxResolution: EDID_MAX_DIMENSION,
};

/** A request's outcome: 0 or a negative Xen errno, with why (for the log). */
export interface Status {
  readonly status: number;
  readonly why?: string;
}

const OK: Status = { status: 0 };
const err = (errno: number, why: string): Status => ({ status: -errno, why });

const VALID_BPP = new Set([8, 16, 24, 32]);

export class DisplayBuffer {
  /** Table entry + framebuffers using it. */
  refs = 1;
  constructor(
    readonly cookie: bigint,
    readonly memory: BackBuffer,
    /** data_ofs: where pixel data starts. */
    readonly offset: number,
    /** Row pitch (Linux dumb pitch); undefined for a PRIME import until its first FB_ATTACH. */
    public pitch: number | undefined,
  ) {}
}

export class Framebuffer implements Frame {
  /** Attachment + connectors showing or presenting it. */
  refs = 1;
  constructor(
    readonly fbCookie: bigint,
    readonly dbuf: DisplayBuffer,
    readonly format: PixelFormat,
    readonly width: number,
    readonly height: number,
    readonly pitch: number,
  ) {}
  get offset(): number {
    return this.dbuf.offset;
  }
  get size(): number {
    return this.dbuf.memory.size;
  }
  get view(): Uint8Array | undefined {
    return this.dbuf.memory.view;
  }
  page(i: number): Uint8Array {
    return this.dbuf.memory.page(i);
  }
  get dmabuf(): DmaBuf {
    return this.dbuf.memory.dmabuf;
  }
}

/** Bytes of buffers held by every frontend of one backend. */
export class BackendBudget {
  bytes = 0;
  constructor(readonly maxBytes: number) {}
}

export interface BufferUsage {
  readonly buffers: number;
  readonly framebuffers: number;
  readonly bytes: number;
}

export class BufferStore {
  private readonly dbufs = new Map<bigint, DisplayBuffer>();
  private readonly fbs = new Map<bigint, Framebuffer>();
  /** Buffers not yet released (in the table or still used), for the limits. */
  private liveBuffers = 0;
  private liveFbs = 0;
  private liveBytes = 0;

  constructor(
    private readonly platform: Platform,
    private readonly frontendDomid: number,
    private readonly limits: DisplayLimits,
    private readonly budget: BackendBudget = new BackendBudget(limits.maxTotalBytes),
  ) {}

  get usage(): BufferUsage {
    return { buffers: this.liveBuffers, framebuffers: this.liveFbs, bytes: this.liveBytes };
  }

  /** DBUF_CREATE. */
  createBuffer(req: DbufCreateReq): Status {
    const cookie = req.dbuf_cookie;
    if (cookie === 0n) return err(XEN_ERRNO.EINVAL, 'dbuf_cookie 0');
    if (this.dbufs.has(cookie)) return err(XEN_ERRNO.EEXIST, `dbuf_cookie ${cookie} already exists`);
    // Linux ORs the flag into a dirty ring slot: only bit 0 means anything.
    const beAlloc = (req.flags & XENDISPL_DBUF_FLG_REQ_ALLOC) !== 0;
    const { width, height, bpp, buffer_sz: size, data_ofs: offset } = req;
    const prime = width === 0 && height === 0 && bpp === 0;
    if (!prime && (width === 0 || height === 0 || bpp === 0)) return err(XEN_ERRNO.EINVAL, `${width}x${height}x${bpp}: only all three may be 0 (an imported buffer)`);
    if (!prime && !VALID_BPP.has(bpp)) return err(XEN_ERRNO.EINVAL, `bpp ${bpp}`);
    if (size === 0) return err(XEN_ERRNO.EINVAL, 'buffer_sz 0');
    if (beAlloc && prime) return err(XEN_ERRNO.EINVAL, 'a backend-allocated buffer needs its width, height and bpp');
    if (beAlloc && offset !== 0) return err(XEN_ERRNO.EINVAL, `data_ofs ${offset} with a backend-allocated buffer`);
    if (offset >= size) return err(XEN_ERRNO.EINVAL, `data_ofs ${offset} is not inside the ${size}-byte buffer`);
    let pitch: number | undefined;
    if (!prime) {
      pitch = pixelRowBytes({ bpp }, width);
      if (offset + pitch * height > size) return err(XEN_ERRNO.EINVAL, `${width}x${height}x${bpp} (pitch ${pitch}) does not fit in ${size - offset} bytes`);
    }
    if (this.liveBuffers >= this.limits.maxBuffers) return err(XEN_ERRNO.ENOMEM, `limit of ${this.limits.maxBuffers} display buffers reached`);
    const bytes = pagesForBytes(size) * 4096;
    if (bytes > this.limits.maxBytes - this.liveBytes) return err(XEN_ERRNO.ENOMEM, `limit of ${this.limits.maxBytes} bytes of buffers reached (${this.liveBytes} in use, ${bytes} asked)`);
    if (bytes > this.budget.maxBytes - this.budget.bytes) return err(XEN_ERRNO.ENOMEM, `the backend's limit of ${this.budget.maxBytes} bytes of buffers for all frontends is reached (${this.budget.bytes} in use, ${bytes} asked)`);
    const left = Math.min(this.limits.maxBytes - this.liveBytes, this.budget.maxBytes - this.budget.bytes);
    const limits = { maxPages: Math.floor(left / 4096) };
    const r = beAlloc
      ? allocateGuestBuffer(this.platform, this.frontendDomid, req.gref_directory, size, limits)
      : mapGuestBuffer(this.platform, this.frontendDomid, req.gref_directory, size, limits);
    if (!r.ok) return { status: r.errno, why: r.message };
    this.dbufs.set(cookie, new DisplayBuffer(cookie, r.value, offset, pitch));
    this.liveBuffers++;
    this.liveBytes += bytes;
    this.budget.bytes += bytes;
    return OK;
  }

  /** DBUF_DESTROY: the memory goes once no framebuffer uses it. */
  destroyBuffer(cookie: bigint): Status {
    const d = this.dbufs.get(cookie);
    if (!d) return err(XEN_ERRNO.ENOENT, `no display buffer ${cookie}`);
    this.dbufs.delete(cookie);
    this.dropBuffer(d);
    return OK;
  }

  /** FB_ATTACH. */
  attach(req: FbAttachReq): Status {
    const cookie = req.fb_cookie;
    if (cookie === 0n) return err(XEN_ERRNO.EINVAL, 'fb_cookie 0');
    if (this.fbs.has(cookie)) return err(XEN_ERRNO.EEXIST, `fb_cookie ${cookie} already attached`);
    const d = this.dbufs.get(req.dbuf_cookie);
    if (!d) return err(XEN_ERRNO.ENOENT, `no display buffer ${req.dbuf_cookie}`);
    const format = pixelFormatByFourcc(req.pixel_format);
    if (!format) return err(XEN_ERRNO.EINVAL, `unknown pixel format 0x${(req.pixel_format >>> 0).toString(16)}`);
    const { width, height } = req;
    if (width === 0 || height === 0) return err(XEN_ERRNO.EINVAL, `framebuffer ${width}x${height}`);
    const rowBytes = pixelRowBytes(format, width);
    const pitch = d.pitch ?? rowBytes;
    if (rowBytes > pitch) return err(XEN_ERRNO.EINVAL, `a ${width}-pixel ${format.name} row (${rowBytes} bytes) is wider than the buffer's pitch ${pitch}`);
    if (d.offset + pitch * (height - 1) + rowBytes > d.memory.size) {
      return err(XEN_ERRNO.EINVAL, `a ${width}x${height} ${format.name} framebuffer (pitch ${pitch}) does not fit in the ${d.memory.size}-byte buffer at offset ${d.offset}`);
    }
    if (this.liveFbs >= this.limits.maxFramebuffers) return err(XEN_ERRNO.ENOMEM, `limit of ${this.limits.maxFramebuffers} framebuffers reached`);
    if (d.pitch === undefined) {
      // An imported buffer takes its geometry from its first framebuffer.
      d.pitch = pitch;
    }
    d.refs++;
    this.fbs.set(cookie, new Framebuffer(cookie, d, format, width, height, pitch));
    this.liveFbs++;
    return OK;
  }

  /** FB_DETACH: the framebuffer goes once no connector shows or presents it. */
  detach(cookie: bigint): Status {
    const fb = this.fbs.get(cookie);
    if (!fb) return err(XEN_ERRNO.ENOENT, `no framebuffer ${cookie}`);
    this.fbs.delete(cookie);
    this.release(fb);
    return OK;
  }

  framebuffer(cookie: bigint): Framebuffer | undefined {
    return this.fbs.get(cookie);
  }

  /** A connector starts using `fb`. */
  hold(fb: Framebuffer): Framebuffer {
    fb.refs++;
    return fb;
  }

  /** A connector stops using `fb` (or its attachment ended). */
  release(fb: Framebuffer): void {
    if (--fb.refs > 0) return;
    this.liveFbs--;
    this.dropBuffer(fb.dbuf);
  }

  private dropBuffer(d: DisplayBuffer): void {
    if (--d.refs > 0) return;
    this.liveBuffers--;
    const bytes = pagesForBytes(d.memory.size) * 4096;
    // Counted until the memory is really gone: the backend's own pages stay allocated while the
    // frontend still maps them.
    d.memory.release(() => {
      this.liveBytes -= bytes;
      this.budget.bytes -= bytes;
    });
  }

  /** Ends every attachment and table entry (the frontend went away); connectors release theirs. */
  clear(): void {
    for (const fb of [...this.fbs.values()]) this.detach(fb.fbCookie);
    for (const d of [...this.dbufs.values()]) this.destroyBuffer(d.cookie);
  }
}

/**
 * The memory behind a backend display buffer, always a dma-buf, as in displ_be's zero-copy paths:
 *
 * - `mapGuestBuffer` (frontend-allocated, DumbZCopyFront): the directory's refs exported as a
 *   dma-buf (gntdev EXP_FROM_REFS, write-combined): the guest's own pages, mapped read-write;
 * - `allocateGuestBuffer` (backend-allocated, DumbZCopyBack): a (preferably contiguous) dma-buf of
 *   the backend's pages, granted to the guest (IMP_TO_REFS) and listed in its directory.
 *
 * Releasing drops the backend's reference: a mapping goes when no output holds the dma-buf any
 * more; the backend's own pages are freed only once the guest has unmapped every one (the import
 * holds the dma-buf until its grants end). Failures leave nothing mapped or allocated.
 */
import { describeStatus } from '../abi/xen-errno.js';
import { allocDmaBuf } from '../dmabuf/alloc.js';
import type { DmaBuf } from '../dmabuf/dmabuf.js';
import { exportFromRefs, GNTDEV_DMA_FLAG_WC, importToRefs } from '../dmabuf/gntdev-dmabuf.js';
import type { Platform } from '../hypervisor/platform.js';
import { type BufferLimits, checkSize, fillFrontendDirectory, readFrontendRefs, type ShbufResult } from '../shbuf/back-shbuf.js';
import { pagesForBytes } from '../abi/page-directory.js';

/** A buffer the backend can use: zero-copy page views, one contiguous view when possible. */
export interface BackBuffer {
  readonly dmabuf: DmaBuf;
  readonly size: number;
  readonly pages: number;
  readonly refs: Uint32Array;
  /** The whole buffer as one view, when its pages are adjacent in machine memory. */
  readonly view: Uint8Array | undefined;
  page(i: number): Uint8Array;
  /** Drops the backend's reference (idempotent); `onGone` runs once the memory is really gone. */
  release(onGone?: () => void): void;
}

class DmaBufMemory implements BackBuffer {
  private released = false;
  /** The buffer's bytes as one view (made once: frames read it on every flip). */
  private readonly whole: Uint8Array | undefined;
  constructor(
    readonly dmabuf: DmaBuf,
    readonly size: number,
    readonly refs: Uint32Array,
    private readonly drop: () => void,
  ) {
    this.whole = dmabuf.contiguous?.subarray(0, size);
  }
  get pages(): number {
    return this.refs.length;
  }
  get view(): Uint8Array | undefined {
    return this.released ? undefined : this.whole;
  }
  page(i: number): Uint8Array {
    return this.dmabuf.page(i);
  }
  release(onGone?: () => void): void {
    if (this.released) return;
    this.released = true;
    if (onGone) this.dmabuf.onRelease(onGone);
    this.drop();
  }
}

/** A frontend-allocated buffer: its directory's refs exported as a dma-buf. */
export function mapGuestBuffer(p: Platform, domid: number, firstRef: number, size: number, limits: BufferLimits = {}): ShbufResult<BackBuffer> {
  const refs = readFrontendRefs(p, domid, firstRef, size, limits);
  if (!refs.ok) return refs;
  const e = exportFromRefs(p, domid, refs.value, { flags: GNTDEV_DMA_FLAG_WC });
  if (!e.ok) return { ok: false, errno: e.errno, message: e.message };
  return { ok: true, value: new DmaBufMemory(e.dmabuf, size, refs.value, () => e.dmabuf.put()) };
}

/** A backend-allocated buffer: the backend's pages as a dma-buf, granted to the guest and listed in its directory. */
export function allocateGuestBuffer(p: Platform, domid: number, firstRef: number, size: number, limits: BufferLimits = {}): ShbufResult<BackBuffer> {
  const bad = checkSize(size, limits);
  if (bad) return bad as ShbufResult<BackBuffer>;
  const pages = pagesForBytes(size);
  let d = allocDmaBuf(p, pages, { contiguous: true });
  if (typeof d === 'number') d = allocDmaBuf(p, pages);
  if (typeof d === 'number') return { ok: false, errno: d, message: `allocating ${pages} pages: ${describeStatus(d)}` };
  const dmabuf = d;
  const imp = importToRefs(p, dmabuf, domid);
  if (!imp.ok) {
    dmabuf.put();
    return { ok: false, errno: imp.errno, message: imp.message };
  }
  const filled = fillFrontendDirectory(p, domid, firstRef, size, imp.refs);
  if (!filled.ok) {
    imp.release();
    dmabuf.put();
    return filled;
  }
  return {
    ok: true,
    value: new DmaBufMemory(dmabuf, size, imp.refs, () => {
      imp.release();
      dmabuf.put();
    }),
  };
}

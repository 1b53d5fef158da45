/**
 * The gntdev dma-buf series (Linux drivers/xen/gntdev-dmabuf.c), over the platform interface:
 *
 * - `exportFromRefs` (IOCTL_GNTDEV_DMABUF_EXP_FROM_REFS): maps another domain's grants
 *   read-write, all or nothing, and wraps them as a dma-buf; the grants stay mapped until the
 *   dma-buf is finally released (last reference);
 * - `waitReleased` (IOCTL_GNTDEV_DMABUF_EXP_WAIT_RELEASED): waits for such a dma-buf to go;
 * - `importToRefs` (IOCTL_GNTDEV_DMABUF_IMP_TO_REFS / IMP_RELEASE): grants every page of a local
 *   dma-buf to another domain and hands back the refs; releasing ends the grants (deferred by the
 *   grant layer while the peer still maps a page) and drops the dma-buf only once all have ended.
 *
 * Errors are results, never exceptions: `{ ok: false, errno, message }` with a negative errno.
 */
import { errnoForGntst, gntstMessage } from '../abi/grant-table.js';
import { XEN_PAGE_SIZE } from '../abi/page-directory.js';
import { describeStatus, XEN_ERRNO } from '../abi/xen-errno.js';
import type { GrantMapping, Platform } from '../hypervisor/platform.js';
import { DmaBuf } from './dmabuf.js';

/** Backing storage allocated with dma_alloc_wc. */
export const GNTDEV_DMA_FLAG_WC = 1 << 0;
/** Backing storage allocated with dma_alloc_coherent. */
export const GNTDEV_DMA_FLAG_COHERENT = 1 << 1;
/** gntdev's `limit` module parameter: most grants one request may name. */
export const GNTDEV_DEFAULT_LIMIT = 65536;

export interface DmaBufFailure {
  readonly ok: false;
  /** Negative errno. */
  readonly errno: number;
  readonly message: string;
}

export type ExportResult = { readonly ok: true; readonly dmabuf: DmaBuf } | DmaBufFailure;

export interface ImportHandle {
  readonly ok: true;
  /** One ref per page, in page order. */
  readonly refs: Uint32Array;
  /**
   * IMP_RELEASE: ends every grant (a grant the peer still maps ends once it unmaps) and drops the
   * dma-buf reference once all have ended. Idempotent.
   */
  release(): void;
}

export type ImportResult = ImportHandle | DmaBufFailure;

const failure = (errno: number, message: string): DmaBufFailure => ({ ok: false, errno, message });


function checkCount(count: number, limit: number): DmaBufFailure | undefined {
  if (!Number.isSafeInteger(limit) || limit <= 0) return failure(-XEN_ERRNO.EINVAL, `bad grant limit ${limit}`);
  if (count === 0) return failure(-XEN_ERRNO.EINVAL, 'count is 0');
  if (count > limit) return failure(-XEN_ERRNO.EINVAL, `count ${count} is over the limit of ${limit} grants`);
  return undefined;
}

/** Dma-bufs made by exportFromRefs (what EXP_WAIT_RELEASED knows). */
const exported = new WeakSet<DmaBuf>();

export interface ExportOptions {
  /** GNTDEV_DMA_FLAG_*: WC and COHERENT together, or unknown bits, are -EINVAL. */
  readonly flags?: number;
  /** Most refs per request (gntdev's `limit`, default 65536). */
  readonly limit?: number;
  /**
   * Map the grants at ballooned gfns of this domain (as gntdev does with gnttab_alloc_pages), so
   * memory.page() reaches them and the dma-buf reports them as `gfns`. Default false.
   */
  readonly ballooned?: boolean;
}

/**
 * EXP_FROM_REFS: maps `refs` of `domid` read-write and returns a dma-buf of refs.length pages
 * holding one reference. The grants are unmapped when it is finally released. On any failure
 * nothing stays mapped: -EINVAL for count 0 or over the limit, bad flags; a failed map's GNTST
 * becomes an errno as for displif responses (bad ref -EINVAL; not granted to us, read-only or
 * not a grant -EACCES).
 */
export function exportFromRefs(platform: Platform, domid: number, refs: ArrayLike<number>, opts: ExportOptions = {}): ExportResult {
  const flags = opts.flags ?? 0;
  if (!Number.isInteger(flags) || flags < 0 || (flags & ~(GNTDEV_DMA_FLAG_WC | GNTDEV_DMA_FLAG_COHERENT)) !== 0) {
    return failure(-XEN_ERRNO.EINVAL, `unknown flags ${String(flags)}`);
  }
  if ((flags & GNTDEV_DMA_FLAG_WC) !== 0 && (flags & GNTDEV_DMA_FLAG_COHERENT) !== 0) {
    return failure(-XEN_ERRNO.EINVAL, 'GNTDEV_DMA_FLAG_WC and GNTDEV_DMA_FLAG_COHERENT together');
  }
  const bad = checkCount(refs.length, opts.limit ?? GNTDEV_DEFAULT_LIMIT);
  if (bad) return bad;
  const count = refs.length;
  let balloon: Int32Array | undefined;
  if (opts.ballooned) {
    const b = platform.memory.allocBallooned(count);
    if (typeof b === 'number') return failure(b, `reserving ${count} gfns: ${describeStatus(b)}`);
    balloon = b;
  }
  const m = platform.maps.map(domid, refs, false, balloon);
  if (!m.ok) {
    if (balloon) platform.memory.freeBallooned(balloon);
    const e = errnoForGntst(m.status);
    return failure(e, `mapping ref ${String(refs[m.index])} (index ${m.index}) of d${domid}: ${gntstMessage(m.status)}`);
  }
  const mapping: GrantMapping = m.mapping;
  const dmabuf = DmaBuf.create({
    size: count * XEN_PAGE_SIZE,
    page: (i) => mapping.page(i),
    contiguous: mapping.contiguous,
    gfns: mapping.hostGfns,
    domid: platform.domid,
    foreign: true,
    exporter: 'gntdev',
    release: () => {
      platform.maps.unmap(mapping);
      if (balloon) platform.memory.freeBallooned(balloon);
    },
  });
  exported.add(dmabuf);
  return { ok: true, dmabuf };
}

/** Longest single setTimeout (Node clamps longer delays to 1 ms). */
const MAX_TIMER_MS = 0x7fff_ffff;

/**
 * EXP_WAIT_RELEASED: 0 once `dmabuf` is released (at once if it already is), -ETIMEDOUT when it
 * is not within `timeoutMs` (a u32 like wait_to_ms; 0 just checks), -ENOENT for a dma-buf
 * exportFromRefs did not make, -EINVAL for a bad timeout. The timer is cleared as soon as the
 * wait ends; while it waits it keeps the process alive, as a blocked ioctl would.
 */
export function waitReleased(dmabuf: DmaBuf, timeoutMs: number): Promise<number> {
  if (!exported.has(dmabuf)) return Promise.resolve(-XEN_ERRNO.ENOENT);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > 0xffff_ffff) return Promise.resolve(-XEN_ERRNO.EINVAL);
  if (dmabuf.released) return Promise.resolve(0);
  if (timeoutMs === 0) return Promise.resolve(-XEN_ERRNO.ETIMEDOUT);
  return new Promise<number>((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = Date.now() + timeoutMs;
    const finish = (status: number): void => {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      unsubscribe();
      resolve(status);
    };
    const arm = (): void => {
      const left = deadline - Date.now();
      if (left <= 0) {
        finish(-XEN_ERRNO.ETIMEDOUT);
        return;
      }
      timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    };
    const unsubscribe = dmabuf.onRelease(() => finish(0));
    arm();
  });
}

export interface ImportOptions {
  /** Grant the pages read-only (default read-write, as gntdev does). */
  readonly readonly?: boolean;
  /** Most pages per request (gntdev's `limit`, default 65536). */
  readonly limit?: number;
}

/**
 * IMP_TO_REFS: grants every page of `dmabuf` (this domain's own memory: it must have gfns and
 * not be a foreign mapping) to `domid`, all or nothing, and takes a reference on it (an
 * attachment mapped bidirectional) until `release()`. -EINVAL for a buffer without own pages
 * or over the limit, -EBADF for a released one; a grant failure's errno otherwise.
 */
export function importToRefs(platform: Platform, dmabuf: DmaBuf, domid: number, opts: ImportOptions = {}): ImportResult {
  if (dmabuf.released) return failure(-XEN_ERRNO.EBADF, 'the dma-buf is released');
  const gfns = dmabuf.gfns;
  if (gfns === undefined || dmabuf.foreign || dmabuf.domid !== platform.domid) {
    const why = gfns === undefined ? 'has no pages of this domain (no gfns)' : dmabuf.foreign ? 'is a foreign mapping' : `is memory of d${String(dmabuf.domid)}`;
    return failure(-XEN_ERRNO.EINVAL, `the ${dmabuf.exporter} dma-buf ${why}`);
  }
  const bad = checkCount(dmabuf.pageCount, opts.limit ?? GNTDEV_DEFAULT_LIMIT);
  if (bad) return bad;
  const granted = platform.grants.grantAccessBatch(domid, gfns, opts.readonly ?? false);
  if (typeof granted === 'number') return failure(granted, `granting ${gfns.length} pages to d${domid}: ${describeStatus(granted)}`);
  const refs = Uint32Array.from(granted);
  const attachment = dmabuf.attach(`gntdev-import:d${domid}`, 'bidirectional');
  let released = false;
  return {
    ok: true,
    refs,
    release: () => {
      if (released) return;
      released = true;
      let pending = refs.length;
      const ended = (): void => {
        if (--pending === 0) attachment.detach();
      };
      for (const r of refs) platform.grants.endAccess(r, ended);
    },
  };
}

/**
 * The backend's side of a page-directory shared buffer:
 *
 * - `mapFrontendBuffer`: walks the frontend's directory for ceil(size/4096) refs and maps them
 *   all read-write, zero-copy (frontend-allocated buffers);
 * - `allocateForFrontend`: allocates the buffer in the backend (contiguous), grants its pages to
 *   the frontend and writes their refs into the frontend's directory (backend-allocated, be-alloc).
 *
 * Every malformed directory is an error with nothing left mapped or allocated: gref 0, a chain
 * shorter than the buffer, a loop in gref_dir_next_page, more directory pages than needed, refs
 * not granted to this domain, read-only refs where writing is needed, a buffer over the limit.
 */
import { GNTST_bad_gntref, GNTST_general_error, GNTST_no_space, GNTST_permission_denied, gntstMessage } from '../abi/grant-table.js';
import { PGDIR_GREFS_PER_PAGE } from '../abi/page-directory.js';
import { XEN_ERRNO, xenErrnoName } from '../abi/xen-errno.js';
import type { GrantMapping, Platform } from '../hypervisor/platform.js';
import { geometry, readPage, setRefs } from './directory.js';

export type ShbufResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly errno: number; readonly message: string };

const fail = <T>(errno: number, message: string): ShbufResult<T> => ({ ok: false, errno, message });

/** The errno a failed grant map becomes in a response. */
export function errnoForGntst(status: number): number {
  switch (status) {
    case GNTST_bad_gntref:
      return -XEN_ERRNO.EINVAL;
    case GNTST_general_error:
    case GNTST_permission_denied:
      return -XEN_ERRNO.EACCES;
    case GNTST_no_space:
      return -XEN_ERRNO.ENOMEM;
    default:
      return -XEN_ERRNO.EINVAL;
  }
}

/** A buffer the backend can use: zero-copy page views, one contiguous view when possible. */
export interface BackBuffer {
  readonly size: number;
  readonly pages: number;
  readonly refs: Uint32Array;
  /** The whole buffer as one view, when its pages are adjacent in machine memory. */
  readonly view: Uint8Array | undefined;
  page(i: number): Uint8Array;
  /**
   * Unmaps (or ungrants and frees) it; idempotent. `onGone` runs once the memory is really gone:
   * at once for a mapping, and for the backend's own pages once the frontend unmapped every one
   * (a grant still mapped is ended later by the grant layer).
   */
  release(onGone?: () => void): void;
}

/**
 * Visits the frontend's directory chain from `firstRef`, mapping each directory page just long
 * enough to read (or, with `fill`, write) it. Returns the refs listed (ceil(size/4096) of them).
 */
function walk(
  p: Platform, domid: number, firstRef: number, size: number, fill?: Uint32Array,
): ShbufResult<Uint32Array> {
  const g = geometry(size);
  const refs = fill ?? new Uint32Array(g.pages);
  const seen = new Set<number>();
  let ref = firstRef;
  for (let d = 0; d < g.dirPages; d++) {
    if (ref === 0) {
      return d === 0
        ? fail(-XEN_ERRNO.EINVAL, 'gref_directory is 0')
        : fail(-XEN_ERRNO.EINVAL, `the directory ends after ${d} pages; ${g.pages} buffer pages need ${g.dirPages}`);
    }
    if (seen.has(ref)) return fail(-XEN_ERRNO.EINVAL, `gref_dir_next_page loops back to ref ${ref}`);
    seen.add(ref);
    const m = p.maps.map(domid, [ref], fill === undefined);
    if (!m.ok) return fail(errnoForGntst(m.status), `directory page ${d} (ref ${ref}): ${gntstMessage(m.status)}`);
    const page = m.mapping.page(0);
    const at = d * PGDIR_GREFS_PER_PAGE;
    const listed = readPage(page);
    if (fill) setRefs([page], fill, d);
    else refs.set(listed.gref.subarray(0, Math.min(PGDIR_GREFS_PER_PAGE, g.pages - at)), at);
    const next = listed.gref_dir_next_page;
    p.maps.unmap(m.mapping);
    if (d === g.dirPages - 1 && next !== 0) {
      return fail(-XEN_ERRNO.EINVAL, `the directory has more pages than the ${g.dirPages} a ${size}-byte buffer needs (next ref ${next})`);
    }
    ref = next;
  }
  if (!fill) {
    const zero = refs.indexOf(0);
    if (zero >= 0) return fail(-XEN_ERRNO.EINVAL, `gref[${zero}] of the directory is 0`);
  }
  return { ok: true, value: refs };
}

class MappedBuffer implements BackBuffer {
  private released = false;
  constructor(
    private readonly p: Platform,
    readonly size: number,
    readonly refs: Uint32Array,
    private readonly mapping: GrantMapping,
  ) {}
  get pages(): number {
    return this.refs.length;
  }
  get view(): Uint8Array | undefined {
    return this.released ? undefined : this.mapping.contiguous?.subarray(0, this.size);
  }
  page(i: number): Uint8Array {
    return this.mapping.page(i);
  }
  release(onGone?: () => void): void {
    if (this.released) return;
    this.released = true;
    this.p.maps.unmap(this.mapping);
    onGone?.();
  }
}

export interface BufferLimits {
  /** Most pages one buffer may have. */
  readonly maxPages?: number;
  /**
   * mapFrontendBuffer: map only the first `mapPages` pages (the whole directory is still walked
   * and checked); the buffer then covers min(size, mapPages * 4096) bytes.
   */
  readonly mapPages?: number;
}

function checkSize(size: number, limits: BufferLimits): ShbufResult<void> | undefined {
  if (!Number.isInteger(size) || size <= 0 || size > 0xffff_ffff) return fail(-XEN_ERRNO.EINVAL, `buffer_sz ${size} is not a size`);
  const pages = geometry(size).pages;
  if (limits.maxPages !== undefined && pages > limits.maxPages) {
    return fail(-XEN_ERRNO.ENOMEM, `a ${size}-byte buffer (${pages} pages) is over the limit of ${limits.maxPages} pages`);
  }
  return undefined;
}

/**
 * Walks and checks a frontend's directory for a `size`-byte buffer and returns the buffer's refs
 * (what displ_be hands to gntdev's EXP_FROM_REFS). Nothing stays mapped.
 */
export function readFrontendRefs(p: Platform, domid: number, firstRef: number, size: number, limits: BufferLimits = {}): ShbufResult<Uint32Array> {
  const bad = checkSize(size, limits);
  if (bad) return bad as ShbufResult<Uint32Array>;
  return walk(p, domid, firstRef, size);
}

/**
 * be-alloc: writes `refs` (the backend's grants of its buffer) into the frontend's directory for
 * a `size`-byte buffer, after checking the directory as readFrontendRefs does.
 */
export function fillFrontendDirectory(p: Platform, domid: number, firstRef: number, size: number, refs: Uint32Array, limits: BufferLimits = {}): ShbufResult<Uint32Array> {
  const bad = checkSize(size, limits);
  if (bad) return bad as ShbufResult<Uint32Array>;
  if (refs.length !== geometry(size).pages) return fail(-XEN_ERRNO.EINVAL, `${refs.length} refs for a ${size}-byte buffer`);
  return walk(p, domid, firstRef, size, refs);
}

/** Maps a frontend-allocated buffer read-write (all or nothing). */
export function mapFrontendBuffer(p: Platform, domid: number, firstRef: number, size: number, limits: BufferLimits = {}): ShbufResult<BackBuffer> {
  const bad = checkSize(size, limits);
  if (bad) return bad as ShbufResult<BackBuffer>;
  const walked = walk(p, domid, firstRef, size);
  if (!walked.ok) return walked;
  const n = limits.mapPages !== undefined ? Math.max(1, Math.min(limits.mapPages, walked.value.length)) : walked.value.length;
  const refs = walked.value.subarray(0, n);
  const m = p.maps.map(domid, refs, false);
  if (!m.ok) return fail(errnoForGntst(m.status), `buffer page ${m.index} (ref ${refs[m.index]}): ${gntstMessage(m.status)}`);
  return { ok: true, value: new MappedBuffer(p, Math.min(size, n * 4096), refs, m.mapping) };
}

class GrantedBuffer implements BackBuffer {
  private released = false;
  constructor(
    private readonly p: Platform,
    readonly size: number,
    readonly refs: Uint32Array,
    private readonly gfns: Int32Array,
    private ownView: Uint8Array | undefined,
  ) {}
  get pages(): number {
    return this.refs.length;
  }
  get view(): Uint8Array | undefined {
    return this.ownView;
  }
  page(i: number): Uint8Array {
    return this.p.memory.page(this.gfns[i]!)!;
  }
  release(onGone?: () => void): void {
    if (this.released) return;
    this.released = true;
    this.ownView = undefined;
    endAndFree(this.p, this.refs, this.gfns, onGone);
  }
}

/**
 * Ends the grants of our own pages and frees each page only once its grant has ended (the peer
 * may still map it: freeing it earlier would let the gfn be reused while the peer reaches it).
 */
function endAndFree(p: Platform, refs: ArrayLike<number>, gfns: Int32Array, onGone?: () => void): void {
  let left = refs.length;
  for (let i = 0; i < refs.length; i++) {
    const gfn = gfns[i]!;
    p.grants.endAccess(refs[i]!, () => {
      p.memory.freePages([gfn]);
      if (--left === 0) onGone?.();
    });
  }
  if (refs.length === 0) onGone?.();
}

/**
 * be-alloc without a dma-buf: allocates the buffer here (contiguous when possible), grants every
 * page read-write to the frontend and writes the refs into its directory. Nothing is left behind
 * on failure. (The backend itself goes through a dma-buf: see allocateBufferFor in back/buffers.ts.)
 */
export function allocateForFrontend(p: Platform, domid: number, firstRef: number, size: number, limits: BufferLimits = {}): ShbufResult<BackBuffer> {
  const bad = checkSize(size, limits);
  if (bad) return bad as ShbufResult<BackBuffer>;
  const { pages } = geometry(size);
  let gfns = p.memory.allocPages(pages, true);
  if (typeof gfns === 'number') gfns = p.memory.allocPages(pages, false);
  if (typeof gfns === 'number') return fail(gfns, `allocating ${pages} pages: ${xenErrnoName(gfns) ?? gfns}`);
  const own = gfns;
  const granted = p.grants.grantAccessBatch(domid, own, false);
  if (typeof granted === 'number') {
    p.memory.freePages(own);
    return fail(granted, `granting ${pages} pages: ${xenErrnoName(granted) ?? granted}`);
  }
  const refs = Uint32Array.from(granted);
  const w = walk(p, domid, firstRef, size, refs);
  if (!w.ok) {
    endAndFree(p, refs, own);
    return w;
  }
  return { ok: true, value: new GrantedBuffer(p, size, refs, own, p.memory.contiguous(own)?.subarray(0, size)) };
}

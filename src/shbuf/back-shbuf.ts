/**
 * The backend's side of a page-directory shared buffer, at the directory level:
 *
 * - `readFrontendRefs`: walks the frontend's directory for the ceil(size/4096) refs of a
 *   frontend-allocated buffer (which the backend then maps: back/buffer-memory.ts);
 * - `fillFrontendDirectory`: writes the backend's own refs into the frontend's directory
 *   (backend-allocated buffers, be-alloc).
 *
 * Every malformed directory is an error with nothing left mapped: gref 0, a chain shorter than
 * the buffer, a loop in gref_dir_next_page, more directory pages than needed, directory pages not
 * granted to this domain, a read-only directory where it must be written, a buffer over the limit.
 */
import { errnoForGntst, gntstMessage } from '../abi/grant-table.js';
import { encodePageDirectory, PGDIR_GREFS_PER_PAGE } from '../abi/page-directory.js';
import { XEN_ERRNO } from '../abi/xen-errno.js';
import type { Platform } from '../hypervisor/platform.js';
import { geometry, readPage } from './directory.js';

export type ShbufResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly errno: number; readonly message: string };

const fail = <T>(errno: number, message: string): ShbufResult<T> => ({ ok: false, errno, message });

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
    if (fill) encodePageDirectory({ gref_dir_next_page: listed.gref_dir_next_page, gref: fill.subarray(at, at + PGDIR_GREFS_PER_PAGE) }, page);
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

export interface BufferLimits {
  /** Most pages one buffer may have. */
  readonly maxPages?: number;
}

/** A buffer_sz that is a size within the limit, or the error. */
export function checkSize(size: number, limits: BufferLimits = {}): ShbufResult<void> | undefined {
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
 * be-alloc: writes `refs` (the backend's grants of its buffer, whose size the caller checked)
 * into the frontend's directory for a `size`-byte buffer, checking the directory's chain as
 * readFrontendRefs does.
 */
export function fillFrontendDirectory(p: Platform, domid: number, firstRef: number, size: number, refs: Uint32Array): ShbufResult<Uint32Array> {
  if (refs.length !== geometry(size).pages) return fail(-XEN_ERRNO.EINVAL, `${refs.length} refs for a ${size}-byte buffer`);
  return walk(p, domid, firstRef, size, refs);
}

/**
 * Page-directory geometry and writing, shared by both ends: a buffer of `size` bytes has
 * ceil(size/4096) pages, listed 1023 per directory page, the pages chained through
 * gref_dir_next_page (0 ends the chain). Pure: works on page views.
 */
import { PGDIR_GREF_OFFSET, PGDIR_GREFS_PER_PAGE, PGDIR_NEXT_OFFSET, pagesForBytes, XEN_PAGE_SIZE } from '../abi/page-directory.js';

export interface DirectoryGeometry {
  /** Buffer pages: ceil(size / 4096), at least 1. */
  readonly pages: number;
  /** Directory pages: ceil(pages / 1023). */
  readonly dirPages: number;
}

export function geometry(size: number): DirectoryGeometry {
  const pages = Math.max(1, pagesForBytes(size));
  return { pages, dirPages: Math.ceil(pages / PGDIR_GREFS_PER_PAGE) };
}

function words(page: Uint8Array): DataView {
  if (page.byteLength < XEN_PAGE_SIZE) throw new RangeError(`a directory page needs ${XEN_PAGE_SIZE} bytes, got ${page.byteLength}`);
  return new DataView(page.buffer, page.byteOffset, XEN_PAGE_SIZE);
}

/** Links directory page `page` to the next one (0: the last). */
export function writeNext(page: Uint8Array, next: number): void {
  words(page).setUint32(PGDIR_NEXT_OFFSET, next >>> 0, true);
}

export function readNext(page: Uint8Array): number {
  return words(page).getUint32(PGDIR_NEXT_OFFSET, true);
}

/**
 * Writes `refs` into the gref[] arrays of the chain's pages, 1023 per page, in order; the rest
 * of each page's gref[] is zeroed. `dirs` must hold enough pages.
 */
export function writeRefs(dirs: readonly Uint8Array[], refs: ArrayLike<number>): void {
  const need = Math.ceil(refs.length / PGDIR_GREFS_PER_PAGE);
  if (dirs.length < need) throw new RangeError(`${refs.length} refs need ${need} directory pages, got ${dirs.length}`);
  for (let d = 0; d < dirs.length; d++) {
    const v = words(dirs[d]!);
    for (let i = 0; i < PGDIR_GREFS_PER_PAGE; i++) {
      const k = d * PGDIR_GREFS_PER_PAGE + i;
      v.setUint32(PGDIR_GREF_OFFSET + 4 * i, k < refs.length ? refs[k]! >>> 0 : 0, true);
    }
  }
}

/** Reads up to `count` refs from one directory page's gref[]. */
export function readRefs(page: Uint8Array, count: number, out: Uint32Array, at: number): void {
  const v = words(page);
  const n = Math.min(count, PGDIR_GREFS_PER_PAGE);
  for (let i = 0; i < n; i++) out[at + i] = v.getUint32(PGDIR_GREF_OFFSET + 4 * i, true);
}

/**
 * Page-directory chains over the ABI codec (`abi/page-directory.ts`), shared by both ends: a
 * buffer of `size` bytes has ceil(size/4096) pages, listed PGDIR_GREFS_PER_PAGE per directory
 * page, the pages chained through gref_dir_next_page (0 ends the chain). Pure: works on page views.
 */
import {
  decodePageDirectory, directoryPagesFor, encodePageDirectory, type PageDirectory, pagesForBytes, PGDIR_GREFS_PER_PAGE,
} from '../abi/page-directory.js';

export interface DirectoryGeometry {
  /** Buffer pages: ceil(size / 4096), at least 1. */
  readonly pages: number;
  /** Directory pages listing them. */
  readonly dirPages: number;
}

export function geometry(size: number): DirectoryGeometry {
  const pages = Math.max(1, pagesForBytes(size));
  return { pages, dirPages: directoryPagesFor(pages) };
}

/** The refs directory page `d` of a chain holds, out of all of them. */
function slice(refs: ArrayLike<number>, d: number): ArrayLike<number> {
  return Array.prototype.slice.call(refs, d * PGDIR_GREFS_PER_PAGE, (d + 1) * PGDIR_GREFS_PER_PAGE) as number[];
}

/** Reads one directory page (always a full page here: views of mapped or own pages). */
export function readPage(page: Uint8Array): PageDirectory {
  const d = decodePageDirectory(page);
  if (!d.ok) throw d.error;
  return d.value;
}

/** Writes a whole chain: page d links to `dirRefs[d + 1]` (0 on the last) and lists its share of `refs`. */
export function writeChain(dirs: readonly Uint8Array[], dirRefs: readonly number[], refs: ArrayLike<number>): void {
  dirs.forEach((page, d) => encodePageDirectory({ gref_dir_next_page: dirRefs[d + 1] ?? 0, gref: slice(refs, d) }, page));
}

/** Fills the gref[] arrays of a chain's pages with `refs`, keeping their links (the be-alloc backend's write). */
export function setRefs(dirs: readonly Uint8Array[], refs: ArrayLike<number>, firstPage = 0): void {
  dirs.forEach((page, i) => encodePageDirectory({ gref_dir_next_page: readPage(page).gref_dir_next_page, gref: slice(refs, firstPage + i) }, page));
}

/** The first `count` refs listed by a chain's pages. */
export function listRefs(dirs: readonly Uint8Array[], count: number): Uint32Array {
  const out = new Uint32Array(count);
  dirs.forEach((page, d) => {
    const at = d * PGDIR_GREFS_PER_PAGE;
    if (at < count) out.set(readPage(page).gref.subarray(0, Math.min(PGDIR_GREFS_PER_PAGE, count - at)), at);
  });
  return out;
}

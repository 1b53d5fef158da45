/**
 * `struct xendispl_page_directory`: one 4096-byte page holding the grant reference of the next
 * directory page (0 = end of the list) followed by 1023 grant references of buffer pages.
 * Display buffers and EDID buffers are both described by a chain of these pages.
 */
import { AbiError, bufferView, checkU32, type Decoded, ok, outBase, short } from './bytes.js';
import type { FieldSpec } from './fields.js';

export const XEN_PAGE_SIZE = 4096;
export const XEN_PAGE_SHIFT = 12;

export const PGDIR_NEXT_OFFSET = 0;
export const PGDIR_GREF_OFFSET = 4;
/** (4096 - 4) / 4 = 1023 grant references per directory page. */
export const PGDIR_GREFS_PER_PAGE = (XEN_PAGE_SIZE - PGDIR_GREF_OFFSET) / 4;

export const PGDIR_FIELDS: readonly FieldSpec[] = [
  { name: 'gref_dir_next_page', offset: PGDIR_NEXT_OFFSET, type: 'u32' },
  { name: 'gref', offset: PGDIR_GREF_OFFSET, type: 'u32' },
];

export interface PageDirectory {
  readonly gref_dir_next_page: number;
  /** Always 1023 entries. */
  readonly gref: Uint32Array;
}

/** Number of 4 KiB pages a buffer of `bytes` octets occupies: ceil(bytes / 4096). */
export function pagesForBytes(bytes: number): number {
  checkU32(bytes, 'buffer size');
  return Math.ceil(bytes / XEN_PAGE_SIZE);
}

/** Number of directory pages needed to list `refs` grant references: ceil(refs / 1023). */
export function directoryPagesFor(refs: number): number {
  if (!Number.isInteger(refs) || refs < 0) throw new AbiError('range', `refs: ${refs} is not a count`);
  return Math.ceil(refs / PGDIR_GREFS_PER_PAGE);
}

/** Directory pages for a buffer of `bytes` octets. A buffer always has at least one page. */
export function directoryPagesForBuffer(bytes: number): number {
  return Math.max(1, directoryPagesFor(pagesForBytes(bytes)));
}

export function decodePageDirectory(bytes: Uint8Array): Decoded<PageDirectory> {
  if (bytes.byteLength < XEN_PAGE_SIZE) return short(bytes, XEN_PAGE_SIZE, 'xendispl_page_directory');
  const view = bufferView(bytes);
  const base = bytes.byteOffset;
  const gref = new Uint32Array(PGDIR_GREFS_PER_PAGE);
  for (let i = 0; i < PGDIR_GREFS_PER_PAGE; i++)
    gref[i] = view.getUint32(base + PGDIR_GREF_OFFSET + 4 * i, true);
  return ok({ gref_dir_next_page: view.getUint32(base + PGDIR_NEXT_OFFSET, true), gref });
}

/**
 * Writes a full directory page. `gref` may hold fewer than 1023 entries; the rest are zero.
 * Throws AbiError, before writing anything, on more than 1023 entries or a value that is not a u32.
 */
export function encodePageDirectory(
  pd: { readonly gref_dir_next_page: number; readonly gref: ArrayLike<number> },
  out?: Uint8Array,
  offset = 0,
): Uint8Array {
  const bytes = out ?? new Uint8Array(XEN_PAGE_SIZE);
  const base = outBase(bytes, offset, XEN_PAGE_SIZE, 'xendispl_page_directory');
  if (pd.gref.length > PGDIR_GREFS_PER_PAGE) {
    throw new AbiError(
      'range',
      `gref: ${pd.gref.length} entries, a directory page holds ${PGDIR_GREFS_PER_PAGE}`,
    );
  }
  checkU32(pd.gref_dir_next_page, 'gref_dir_next_page');
  for (let i = 0; i < pd.gref.length; i++) checkU32(pd.gref[i]!, `gref[${i}]`);
  const view = bufferView(bytes);
  bytes.fill(0, offset, offset + XEN_PAGE_SIZE);
  view.setUint32(base + PGDIR_NEXT_OFFSET, pd.gref_dir_next_page, true);
  for (let i = 0; i < pd.gref.length; i++)
    view.setUint32(base + PGDIR_GREF_OFFSET + 4 * i, pd.gref[i]!, true);
  return bytes;
}

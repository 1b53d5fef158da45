/**
 * Grant tables, version 1 (`xen/include/public/grant_table.h`): the 8-byte `grant_entry_v1`,
 * GTF_* entry flags, GNTMAP_* mapping flags, GNTTABOP_* operation numbers and GNTST_* statuses
 * with Xen's own messages.
 */
import type { Decoded } from './bytes.js';
import { StructCodec } from './codec.js';
import type { FieldSpec } from './fields.js';
import { XEN_ERRNO } from './xen-errno.js';

export type GrantRef = number;
export type GrantHandle = number;

export const GRANT_ENTRY_V1_SIZE = 8;
/** Entries per 4 KiB grant-table frame. */
export const GRANT_ENTRIES_PER_FRAME = 4096 / GRANT_ENTRY_V1_SIZE;

export const GNTTAB_NR_RESERVED_ENTRIES = 8;
export const GNTTAB_RESERVED_CONSOLE = 0;
export const GNTTAB_RESERVED_XENSTORE = 1;

// Entry types (GTF_type_mask) and flags.
export const GTF_invalid = 0;
export const GTF_permit_access = 1;
export const GTF_accept_transfer = 2;
export const GTF_transitive = 3;
export const GTF_type_mask = 3;
export const GTF_readonly = 1 << 2;
export const GTF_reading = 1 << 3;
export const GTF_writing = 1 << 4;
export const GTF_PWT = 1 << 5;
export const GTF_PCD = 1 << 6;
export const GTF_PAT = 1 << 7;
export const GTF_sub_page = 1 << 8;
export const GTF_transfer_committed = 1 << 2;
export const GTF_transfer_completed = 1 << 3;

// Mapping flags.
export const GNTMAP_device_map = 1 << 0;
export const GNTMAP_host_map = 1 << 1;
export const GNTMAP_readonly = 1 << 2;
export const GNTMAP_application_map = 1 << 3;
export const GNTMAP_contains_pte = 1 << 4;
/** Bits for guest kernel available PTE bits (XENFEAT_gnttab_map_avail_bits). */
export const GNTMAP_guest_avail_mask = 0xffff_0000;

// GNTTABOP_copy flags: the source/destination is a grant reference (else a local GFN).
export const GNTCOPY_source_gref = 1 << 0;
export const GNTCOPY_dest_gref = 1 << 1;

// GNTTABOP_cache_flush operations.
export const GNTTAB_CACHE_CLEAN = 1 << 0;
export const GNTTAB_CACHE_INVAL = 1 << 1;
export const GNTTAB_CACHE_SOURCE_GREF = 0x8000_0000;

// Hypercall sub-operations.
export const GNTTABOP_map_grant_ref = 0;
export const GNTTABOP_unmap_grant_ref = 1;
export const GNTTABOP_setup_table = 2;
export const GNTTABOP_dump_table = 3;
export const GNTTABOP_transfer = 4;
export const GNTTABOP_copy = 5;
export const GNTTABOP_query_size = 6;
export const GNTTABOP_unmap_and_replace = 7;
export const GNTTABOP_set_version = 8;
export const GNTTABOP_get_status_frames = 9;
export const GNTTABOP_get_version = 10;
export const GNTTABOP_swap_grant_ref = 11;
export const GNTTABOP_cache_flush = 12;

// Statuses. All errors are negative.
export const GNTST_okay = 0;
export const GNTST_general_error = -1;
export const GNTST_bad_domain = -2;
export const GNTST_bad_gntref = -3;
export const GNTST_bad_handle = -4;
export const GNTST_bad_virt_addr = -5;
export const GNTST_bad_dev_addr = -6;
export const GNTST_no_device_space = -7;
export const GNTST_permission_denied = -8;
export const GNTST_bad_page = -9;
export const GNTST_bad_copy_arg = -10;
export const GNTST_address_too_big = -11;
export const GNTST_eagain = -12;
export const GNTST_no_space = -13;

/** GNTTABOP_error_msgs, indexed by -status. */
export const GNTTABOP_ERROR_MSGS: readonly string[] = [
  'okay',
  'undefined error',
  'unrecognised domain id',
  'invalid grant reference',
  'invalid mapping handle',
  'invalid virtual address',
  'invalid device address',
  'no spare translation slot in the I/O MMU',
  'permission denied',
  'bad page',
  'copy arguments cross page boundary',
  'page address size too large',
  'operation not done; try again',
  'out of space',
];

/** Xen's message for a GNTST_* status, as printed by Linux (`gnttabop_error`). */
export function gntstMessage(status: number): string {
  const msg = Number.isInteger(status) && status <= 0 ? GNTTABOP_ERROR_MSGS[-status] : undefined;
  return msg ?? `bad status ${status}`;
}

export interface GrantEntryV1 {
  /** GTF_* type and flags. */
  readonly flags: number;
  /** The domain being granted access. */
  readonly domid: number;
  /** The frame (GFN) the grantee may map. */
  readonly frame: number;
}

export const GRANT_ENTRY_V1_FIELDS: readonly FieldSpec[] = [
  { name: 'flags', offset: 0, type: 'u16' },
  { name: 'domid', offset: 2, type: 'u16' },
  { name: 'frame', offset: 4, type: 'u32' },
];

export const GRANT_ENTRY_V1_CODEC = new StructCodec<GrantEntryV1>('grant_entry_v1', GRANT_ENTRY_V1_SIZE, GRANT_ENTRY_V1_FIELDS);

export function decodeGrantEntry(bytes: Uint8Array): Decoded<GrantEntryV1> {
  return GRANT_ENTRY_V1_CODEC.decode(bytes);
}

export function encodeGrantEntry(e: GrantEntryV1, out?: Uint8Array, offset = 0): Uint8Array {
  return GRANT_ENTRY_V1_CODEC.encode(e, out, offset);
}

/** The (negative) errno a failed grant map becomes in a response or a gntdev call. */
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

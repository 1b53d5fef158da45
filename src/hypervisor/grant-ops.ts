/**
 * Batches for the grant table hypercalls, as structs of arrays (one slot per operation), the
 * shape of Xen's gnttab_map_grant_ref / gnttab_unmap_grant_ref / gnttab_copy arrays without one
 * object per operation. Pure data: shared by the emulated hypervisor and the platform interface.
 */
import { GNTMAP_device_map, GNTMAP_host_map, GNTMAP_readonly } from '../abi/grant-table.js';

/** GNTTABOP_map_grant_ref x count. IN: dom, ref, flags (GNTMAP_*), hostGfn. OUT: status, handle, mfn. */
export class GrantMapBatch {
  readonly dom: Uint16Array;
  readonly ref: Uint32Array;
  readonly flags: Uint32Array;
  /** Guest frame to map at (with GNTMAP_host_map): an unpopulated (ballooned) gfn. */
  readonly hostGfn: Int32Array;
  /** GNTST_* per operation. */
  readonly status: Int16Array;
  readonly handle: Uint32Array;
  /** The machine frame mapped (Xen's dev_bus_addr >> 12): says which mappings are adjacent. */
  readonly mfn: Int32Array;

  constructor(readonly count: number) {
    this.dom = new Uint16Array(count);
    this.ref = new Uint32Array(count);
    this.flags = new Uint32Array(count);
    this.hostGfn = new Int32Array(count).fill(-1);
    this.status = new Int16Array(count);
    this.handle = new Uint32Array(count);
    this.mfn = new Int32Array(count).fill(-1);
  }

  /** A batch mapping `refs` of `dom`, read-only or read-write, at `hostGfns` (host_map) or views only (device_map). */
  static of(dom: number, refs: ArrayLike<number>, readonly: boolean, hostGfns?: ArrayLike<number>): GrantMapBatch {
    const b = new GrantMapBatch(refs.length);
    b.dom.fill(dom);
    b.ref.set(refs);
    b.flags.fill((hostGfns ? GNTMAP_host_map : GNTMAP_device_map) | (readonly ? GNTMAP_readonly : 0));
    if (hostGfns) for (let i = 0; i < b.count; i++) b.hostGfn[i] = i < hostGfns.length ? hostGfns[i]! : -1;
    return b;
  }
}

/** GNTTABOP_unmap_grant_ref x count. IN: handle. OUT: status. */
export class GrantUnmapBatch {
  readonly handle: Uint32Array;
  readonly status: Int16Array;

  constructor(readonly count: number) {
    this.handle = new Uint32Array(count);
    this.status = new Int16Array(count);
  }

  static of(handles: ArrayLike<number>): GrantUnmapBatch {
    const b = new GrantUnmapBatch(handles.length);
    b.handle.set(handles);
    return b;
  }
}

/** One side of a grant copy: a grant ref of `domid`, or (without the gref flag) a gfn of the caller. */
export interface GrantCopyPtr {
  /** Grant ref (GNTCOPY_*_gref set) or gfn. */
  readonly ref: number;
  /** Granting domain for a ref; DOMID_SELF or the caller's own id for a gfn. */
  readonly domid: number;
  readonly offset: number;
}

/** GNTTABOP_copy: `len` bytes from source to dest; flags GNTCOPY_source_gref / GNTCOPY_dest_gref. */
export interface GrantCopyOp {
  readonly source: GrantCopyPtr;
  readonly dest: GrantCopyPtr;
  readonly len: number;
  readonly flags: number;
}

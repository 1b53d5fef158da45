/**
 * The platform interface: everything frontends and backends (layers 5-8) need from the
 * hypervisor, and nothing about how it is provided. The emulated hypervisor implements it
 * (EmulatedPlatform); a real-Xen implementation (libxengnttab / libxenevtchn / libxenforeignmemory
 * through FFI, memory from /dev/xen/gntalloc or a dma-buf heap) can implement it later without
 * touching its users. Xenstore is added by the XenStore issue.
 *
 * Conventions: nothing throws for bad input or a failed operation; results are a value, a
 * negative Xen errno, or a GNTST_* status, as the underlying hypercall gives them.
 */
import type { EvtchnStatus } from './event-channels.js';
import type { PortHandler } from './event-loop.js';
import type { GrantCopyOp } from './grant-ops.js';

export type { EvtchnStatus, GrantCopyOp, PortHandler };

/** A negative Xen errno (e.g. -XEN_ERRNO.ENOMEM). */
export type Errno = number;

/** The guest's own RAM. */
export interface PlatformMemory {
  /** Allocates zeroed pages; `contiguous`: physically adjacent (one view covers them all). */
  allocPages(count: number, contiguous?: boolean): Int32Array | Errno;
  /** Frees pages from allocPages (a page still granted must be ended first: see grants.endAccess). */
  freePages(gfns: ArrayLike<number>): number;
  /** Unpopulated gfns to map foreign grants at (alloc_xenballooned_pages). */
  allocBallooned(count: number): Int32Array | Errno;
  freeBallooned(gfns: ArrayLike<number>): void;
  /** Zero-copy view of one page the domain can reach (own RAM or a grant mapped at that gfn). */
  page(gfn: number): Uint8Array | undefined;
  /** One zero-copy view of several pages if they are adjacent in machine memory, else undefined. */
  contiguous(gfns: ArrayLike<number>): Uint8Array | undefined;
}

/** Granting the domain's pages to others (Linux's gnttab_* guest API). */
export interface PlatformGrants {
  /** A ref granting `gfn` to `domid` (gnttab_grant_foreign_access), or -ENOSPC / -EINVAL. */
  grantAccess(domid: number, gfn: number, readonly: boolean): number;
  /** One ref per gfn, all or nothing. */
  grantAccessBatch(domid: number, gfns: ArrayLike<number>, readonly: boolean): number[] | Errno;
  /** Reserves refs to fill later with grantAccessRef (gnttab_alloc_grant_references). */
  reserve(count: number): number[] | Errno;
  /** Fills a reserved ref; 0 or -EINVAL (ref not reserved, bad domid or gfn). */
  grantAccessRef(ref: number, domid: number, gfn: number, readonly: boolean): number;
  unreserve(refs: Iterable<number>): void;
  /** Ends and frees a ref iff the peer does not map it. */
  tryEndAccess(ref: number): boolean;
  /**
   * Ends access: at once if unmapped (true; `onReleased` runs now), else deferred and retried
   * until the peer unmaps (false; `onReleased` runs then — free the page there, not before).
   */
  endAccess(ref: number, onReleased?: () => void): boolean;
  /** Refs waiting on the deferred list. */
  readonly deferredCount: number;
  /** Runs one retry pass of the deferred list now (all entries when `all`); returns how many ended. */
  retryDeferred(all?: boolean): number;
}

/** A set of foreign grants mapped into this domain. */
export interface GrantMapping {
  readonly domid: number;
  readonly count: number;
  readonly readonly: boolean;
  readonly refs: Uint32Array;
  /** Mapping handles (for unmapping). */
  readonly handles: Uint32Array;
  /** gfns of this domain the pages are mapped at (ballooned), if any. */
  readonly hostGfns: Int32Array | undefined;
  /** Zero-copy view of page `i`: writes by either side are visible to the other at once. */
  page(i: number): Uint8Array;
  /** One zero-copy view of all pages when they are adjacent in machine memory (a contiguous buffer). */
  readonly contiguous: Uint8Array | undefined;
}

export type MapResult =
  | { readonly ok: true; readonly mapping: GrantMapping }
  /** `status` is the GNTST of the first failing ref, at `index`; nothing stays mapped. */
  | { readonly ok: false; readonly status: number; readonly index: number };

/** Mapping other domains' grants (the backend's side: gntdev). */
export interface PlatformGrantMaps {
  /**
   * Maps `refs` of `domid`, all or nothing. `hostGfns`: ballooned gfns to map them at (so
   * memory.page() reaches them too); without, the mapping is only reachable through its views.
   */
  map(domid: number, refs: ArrayLike<number>, readonly: boolean, hostGfns?: ArrayLike<number>): MapResult;
  /** Unmaps every page; returns GNTST_okay or the first failing status (e.g. already unmapped). */
  unmap(mapping: GrantMapping): number;
  /** GNTTABOP_copy: a GNTST per operation. */
  copy(ops: readonly GrantCopyOp[]): Int16Array;
}

/** Event channels (libxenevtchn-like). */
export interface PlatformEvents {
  /** A port another domain can bind (xenbus_alloc_evtchn), or -errno. */
  allocUnbound(remoteDomid: number): number;
  /** Binds to `remotePort` of `remoteDomid`; the new local port or -errno. */
  bindInterdomain(remoteDomid: number, remotePort: number): number;
  notify(port: number): number;
  close(port: number): number;
  status(port: number): EvtchnStatus | Errno;
  mask(port: number): number;
  unmask(port: number): number;
  /** Runs `handler` on this domain's event loop each time `port` fires (coalesced). */
  on(port: number, handler: PortHandler): void;
  off(port: number): void;
}

export interface Platform {
  readonly domid: number;
  readonly memory: PlatformMemory;
  readonly grants: PlatformGrants;
  readonly maps: PlatformGrantMaps;
  readonly events: PlatformEvents;
}

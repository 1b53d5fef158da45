/**
 * The frontend's shared buffer (Linux's xen-front-pgdir-shbuf), in both modes:
 *
 * - frontend-allocated: the buffer's pages are the guest's own (physically contiguous, so one
 *   Uint8Array covers them); the directory pages and every buffer page are granted read-write to
 *   the backend; the directory lists the buffer refs and chains its pages;
 * - backend-allocated: only the directory pages are granted (read-write: the backend writes
 *   gref[]); after the backend has filled them (DBUF_CREATE answered), `mapBackendPages` maps
 *   those refs into ballooned gfns, all or nothing.
 *
 * `firstRef` is the gref_directory to send. `free()` unmaps (backend mode) and ends every grant;
 * a grant the backend still maps is ended later by the grant layer, and its page freed only then.
 */
import { gntstMessage } from '../abi/grant-table.js';
import { XEN_PAGE_SIZE } from '../abi/page-directory.js';
import { describeStatus, XEN_ERRNO } from '../abi/xen-errno.js';
import type { GrantMapping, Platform } from '../hypervisor/platform.js';
import { geometry, listRefs, writeChain } from './directory.js';

export type ShbufMode = 'frontend-alloc' | 'backend-alloc';

export class ShbufError extends Error {
  constructor(
    message: string,
    /** Negative Xen errno. */
    readonly errno: number,
  ) {
    super(message);
    this.name = 'ShbufError';
  }
}

export interface FrontShbufOptions {
  readonly platform: Platform;
  readonly backendDomid: number;
  readonly size: number;
  readonly mode: ShbufMode;
  /**
   * frontend-alloc only: share these pages of the domain (e.g. an imported dma-buf's) instead of
   * allocating; they are granted but never freed here. `onUnshared` runs once every grant of
   * them has ended (the backend unmapped them), so their owner may release them then.
   */
  readonly pages?: { readonly gfns: ArrayLike<number>; readonly onUnshared?: () => void };
}

export class FrontShbuf {
  readonly pages: number;
  private mapping: GrantMapping | undefined;
  private freed = false;

  private constructor(
    private readonly platform: Platform,
    readonly backendDomid: number,
    readonly size: number,
    readonly mode: ShbufMode,
    private readonly dirGfns: Int32Array,
    private readonly dirRefs: readonly number[],
    /** Frontend mode: own pages; backend mode: ballooned gfns the backend's pages map at. */
    private readonly bufGfns: Int32Array,
    private readonly bufRefs: readonly number[],
    private ownView: Uint8Array | undefined,
    /** The buffer pages belong to someone else: not freed here; called once their grants ended. */
    private readonly borrowed: { readonly onUnshared?: () => void } | undefined = undefined,
  ) {
    this.pages = bufGfns.length;
  }

  /** Allocates and grants; throws ShbufError (with nothing left allocated) when it cannot. */
  static create(opts: FrontShbufOptions): FrontShbuf {
    const { platform: p, backendDomid: be, size, mode } = opts;
    if (!Number.isInteger(size) || size <= 0 || size > 0xffff_ffff) throw new ShbufError(`bad buffer size ${size}`, -XEN_ERRNO.EINVAL);
    const g = geometry(size);
    const undo: (() => void)[] = [];
    const fail = (what: string, e: number): never => {
      for (const u of undo.reverse()) u();
      throw new ShbufError(`${what}: ${describeStatus(e)}`, e < 0 ? e : -XEN_ERRNO.ENOMEM);
    };
    const dirGfns = p.memory.allocPages(g.dirPages);
    if (typeof dirGfns === 'number') return fail(`allocating ${g.dirPages} directory pages`, dirGfns);
    undo.push(() => p.memory.freePages(dirGfns));
    const dirRefs = p.grants.grantAccessBatch(be, dirGfns, false);
    if (typeof dirRefs === 'number') return fail('granting the directory', dirRefs);
    // Each directory page is freed only once its grant ended (the backend may have mapped it).
    undo.pop();
    undo.push(() => dirRefs.forEach((r, i) => p.grants.endAccess(r, () => p.memory.freePages([dirGfns[i]!]))));
    const dirs = Array.from(dirGfns, (gfn) => p.memory.page(gfn)!);

    if (mode === 'frontend-alloc' && opts.pages) {
      const bufGfns = Int32Array.from(opts.pages.gfns);
      if (bufGfns.length !== g.pages) return fail(`${bufGfns.length} pages given for a ${size}-byte buffer (${g.pages} needed)`, -XEN_ERRNO.EINVAL);
      const bufRefs = p.grants.grantAccessBatch(be, bufGfns, false);
      if (typeof bufRefs === 'number') return fail('granting the buffer', bufRefs);
      writeChain(dirs, dirRefs, bufRefs);
      const view = p.memory.contiguous(bufGfns);
      return new FrontShbuf(p, be, size, mode, dirGfns, dirRefs, bufGfns, bufRefs, view, { ...(opts.pages.onUnshared ? { onUnshared: opts.pages.onUnshared } : {}) });
    }
    if (mode === 'frontend-alloc') {
      const bufGfns = p.memory.allocPages(g.pages, true);
      if (typeof bufGfns === 'number') return fail(`allocating ${g.pages} buffer pages`, bufGfns);
      undo.push(() => p.memory.freePages(bufGfns));
      const bufRefs = p.grants.grantAccessBatch(be, bufGfns, false);
      if (typeof bufRefs === 'number') return fail('granting the buffer', bufRefs);
      writeChain(dirs, dirRefs, bufRefs);
      const view = p.memory.contiguous(bufGfns)!;
      return new FrontShbuf(p, be, size, mode, dirGfns, dirRefs, bufGfns, bufRefs, view);
    }
    const balloon = p.memory.allocBallooned(g.pages);
    if (typeof balloon === 'number') return fail(`reserving ${g.pages} gfns`, balloon);
    writeChain(dirs, dirRefs, []);
    return new FrontShbuf(p, be, size, mode, dirGfns, dirRefs, balloon, [], undefined);
  }

  /** gref_directory for DBUF_CREATE (and GET_EDID). */
  get firstRef(): number {
    return this.dirRefs[0]!;
  }

  /** The directory pages (for tests and for reading what the backend wrote). */
  directoryPages(): Uint8Array[] {
    return Array.from(this.dirGfns, (g) => this.platform.memory.page(g)!);
  }

  /** The refs currently listed in the directory (the backend's, in backend mode after DBUF_CREATE). */
  listedRefs(): Uint32Array {
    return listRefs(this.directoryPages(), this.pages);
  }

  /**
   * Backend mode, once DBUF_CREATE succeeded: maps the refs the backend wrote into the directory
   * (read-write). On failure nothing stays mapped and the error is -ENXIO, as Linux reports it.
   */
  mapBackendPages(): void {
    if (this.mode !== 'backend-alloc') throw new ShbufError('only a backend-allocated buffer maps the backend\'s pages', -XEN_ERRNO.EINVAL);
    if (this.mapping) return;
    const refs = this.listedRefs();
    const m = this.platform.maps.map(this.backendDomid, refs, false, this.bufGfns);
    if (!m.ok) throw new ShbufError(`mapping page ${m.index} (ref ${refs[m.index]}) of the backend's buffer: ${gntstMessage(m.status)}`, -XEN_ERRNO.ENXIO);
    this.mapping = m.mapping;
  }

  /** The whole buffer as one view, when its pages are adjacent in machine memory. */
  get view(): Uint8Array | undefined {
    if (this.ownView) return this.ownView.subarray(0, this.size);
    return this.mapping?.contiguous?.subarray(0, this.size);
  }

  /** Page `i` of the buffer (always available once mapped). */
  page(i: number): Uint8Array {
    if (i < 0 || i >= this.pages) throw new RangeError(`page ${i} of ${this.pages}`);
    if (this.ownView) return this.ownView.subarray(i * XEN_PAGE_SIZE, (i + 1) * XEN_PAGE_SIZE);
    if (!this.mapping) throw new ShbufError('the backend\'s pages are not mapped yet', -XEN_ERRNO.EINVAL);
    return this.mapping.page(i);
  }

  /** The gfns of the buffer's pages in this domain (own pages, or where the backend's are mapped). */
  get gfns(): Int32Array {
    return this.bufGfns;
  }

  get isFreed(): boolean {
    return this.freed;
  }

  /**
   * Unmaps the backend's pages (backend mode) and ends every grant. A grant still mapped by the
   * backend is ended later; its page is freed then (the grant layer defers it).
   */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    const p = this.platform;
    if (this.mapping) {
      p.maps.unmap(this.mapping);
      this.mapping = undefined;
    }
    this.ownView = undefined;
    if (this.mode === 'backend-alloc') p.memory.freeBallooned(this.bufGfns);
    if (this.borrowed) {
      let left = this.bufRefs.length;
      const ended = (): void => {
        if (--left === 0) this.borrowed?.onUnshared?.();
      };
      if (left === 0) this.borrowed.onUnshared?.();
      this.bufRefs.forEach((r) => p.grants.endAccess(r, ended));
    } else {
      this.bufRefs.forEach((r, i) => p.grants.endAccess(r, () => p.memory.freePages([this.bufGfns[i]!])));
    }
    this.dirRefs.forEach((r, i) => p.grants.endAccess(r, () => p.memory.freePages([this.dirGfns[i]!])));
  }
}

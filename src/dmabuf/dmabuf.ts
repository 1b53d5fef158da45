/**
 * A dma-buf: a buffer object shared between devices (Linux's struct dma_buf), emulated. The
 * exporter supplies zero-copy page views and a release callback; users hold references the way
 * processes hold dma-buf fds (`get` = dup, `put` = close): when the last reference goes, the
 * exporter's release callback runs, once, and then every `onRelease` listener.
 *
 * Attachments are the devices using the buffer (dma_buf_attach). Each attachment holds a
 * reference until it is detached, so the pages it maps cannot go away under it. Mapping an
 * attachment fixes its DMA direction for as long as it stays attached: mapping it again with the
 * same direction returns the cached table, another direction is -EBUSY, as gntdev-dmabuf does.
 *
 * Programming errors (a reference put twice, using a released buffer, a bad page index) throw;
 * `DmaBufError` carries the errno Linux would give.
 */
import { XEN_PAGE_SIZE } from '../abi/page-directory.js';
import { XEN_ERRNO } from '../abi/xen-errno.js';

/** Linux's enum dma_data_direction, without DMA_NONE (which maps nothing: -EINVAL). */
export type DmaDirection = 'to-device' | 'from-device' | 'bidirectional';

const DIRECTIONS: ReadonlySet<string> = new Set<DmaDirection>(['to-device', 'from-device', 'bidirectional']);

export function isDmaDirection(d: unknown): d is DmaDirection {
  return typeof d === 'string' && DIRECTIONS.has(d);
}

export class DmaBufError extends Error {
  constructor(
    message: string,
    /** Negative Xen errno. */
    readonly errno: number,
  ) {
    super(message);
    this.name = 'DmaBufError';
  }
}

export interface DmaBufInit {
  /** Bytes: a positive multiple of 4096. */
  readonly size: number;
  /** Zero-copy view of page `i` (0 <= i < size / 4096), 4096 bytes. */
  readonly page: (i: number) => Uint8Array;
  /** One view of the whole buffer when its pages are adjacent in machine memory (`size` bytes or more). */
  readonly contiguous?: Uint8Array | undefined;
  /** The gfns of the pages in domain `domid`: its own RAM, or ballooned gfns foreign pages are mapped at. */
  readonly gfns?: ArrayLike<number> | undefined;
  /** The domain whose address space the pages are in. */
  readonly domid?: number | undefined;
  /** The pages are another domain's grants mapped here, not memory of `domid`. */
  readonly foreign?: boolean | undefined;
  /** Who exported it, for messages (e.g. "alloc", "gntdev"). */
  readonly exporter?: string | undefined;
  /** Runs once, when the last reference is put. */
  readonly release: () => void;
}

/** A mapped attachment: what a device would get as its sg-table. */
export interface DmaBufSgTable {
  readonly direction: DmaDirection;
  /** One view per page, zero-copy (built on first use). */
  readonly pages: readonly Uint8Array[];
  /** One view of the whole buffer when physically contiguous (a single sg entry). */
  readonly contiguous: Uint8Array | undefined;
}

class SgTable implements DmaBufSgTable {
  private list: Uint8Array[] | undefined;
  readonly contiguous: Uint8Array | undefined;
  constructor(
    private readonly dmabuf: DmaBuf,
    readonly direction: DmaDirection,
  ) {
    this.contiguous = dmabuf.contiguous;
  }
  get pages(): readonly Uint8Array[] {
    this.list ??= Array.from({ length: this.dmabuf.pageCount }, (_, i) => this.dmabuf.page(i));
    return this.list;
  }
}

export class DmaBufAttachment {
  private sgt: DmaBufSgTable | undefined;
  private live = true;

  /** @internal Use DmaBuf.attach. */
  constructor(
    readonly dmabuf: DmaBuf,
    readonly device: string,
    private readonly onDetach: (a: DmaBufAttachment) => void,
  ) {}

  get attached(): boolean {
    return this.live;
  }

  /** The direction the attachment is mapped with, if it has been mapped. */
  get direction(): DmaDirection | undefined {
    return this.sgt?.direction;
  }

  /**
   * dma_buf_map_attachment: the page table for `direction`. The first map fixes the direction;
   * again with the same one returns the cached table; another is -EBUSY. An unknown direction
   * (DMA_NONE) or a detached attachment is -EINVAL.
   */
  map(direction: DmaDirection): DmaBufSgTable | number {
    if (!this.live || !isDmaDirection(direction)) return -XEN_ERRNO.EINVAL;
    if (this.sgt) return this.sgt.direction === direction ? this.sgt : -XEN_ERRNO.EBUSY;
    this.sgt = new SgTable(this.dmabuf, direction);
    return this.sgt;
  }

  /** dma_buf_detach: drops the cached table and the attachment's reference. Idempotent. */
  detach(): void {
    if (!this.live) return;
    this.live = false;
    this.sgt = undefined;
    this.onDetach(this);
  }
}

export class DmaBuf {
  readonly size: number;
  readonly pageCount: number;
  readonly domid: number | undefined;
  readonly foreign: boolean;
  readonly exporter: string;
  private refs = 1;
  private isReleased = false;
  private readonly pageOf: (i: number) => Uint8Array;
  private view: Uint8Array | undefined;
  private readonly ownGfns: Int32Array | undefined;
  private releaseFn: (() => void) | undefined;
  private readonly listeners = new Set<() => void>();
  private readonly attached = new Set<DmaBufAttachment>();

  private constructor(init: DmaBufInit) {
    this.size = init.size;
    this.pageCount = init.size / XEN_PAGE_SIZE;
    this.pageOf = init.page;
    this.view = init.contiguous?.subarray(0, init.size);
    this.ownGfns = init.gfns === undefined ? undefined : Int32Array.from(init.gfns);
    this.domid = init.domid;
    this.foreign = init.foreign ?? false;
    this.exporter = init.exporter ?? 'unknown';
    this.releaseFn = init.release;
  }

  /** A new dma-buf holding one reference. Throws RangeError for a bad size, contiguous view or gfn list. */
  static create(init: DmaBufInit): DmaBuf {
    const { size } = init;
    if (!Number.isSafeInteger(size) || size <= 0 || size % XEN_PAGE_SIZE !== 0) {
      throw new RangeError(`dma-buf size ${size} is not a positive multiple of ${XEN_PAGE_SIZE}`);
    }
    if (init.contiguous !== undefined && init.contiguous.length < size) {
      throw new RangeError(`the contiguous view has ${init.contiguous.length} bytes, the dma-buf ${size}`);
    }
    if (init.gfns !== undefined && init.gfns.length !== size / XEN_PAGE_SIZE) {
      throw new RangeError(`${init.gfns.length} gfns for ${size / XEN_PAGE_SIZE} pages`);
    }
    return new DmaBuf(init);
  }

  get released(): boolean {
    return this.isReleased;
  }

  /** References held (fds, importers, attachments); 0 once released. */
  get refCount(): number {
    return this.refs;
  }

  /** One view of the whole buffer when its pages are physically adjacent; undefined once released. */
  get contiguous(): Uint8Array | undefined {
    return this.view;
  }

  /** A copy of the pages' gfns in `domid` (own memory, or the ballooned gfns foreign pages are mapped at). */
  get gfns(): Int32Array | undefined {
    return this.ownGfns?.slice();
  }

  /** Zero-copy view of page `i` (4096 bytes). Throws once released. */
  page(i: number): Uint8Array {
    if (!Number.isInteger(i) || i < 0 || i >= this.pageCount) throw new RangeError(`page ${i} of ${this.pageCount}`);
    this.check('page');
    if (this.view) return this.view.subarray(i * XEN_PAGE_SIZE, (i + 1) * XEN_PAGE_SIZE);
    return this.pageOf(i);
  }

  private check(what: string): void {
    if (this.isReleased) throw new DmaBufError(`${what}: the dma-buf is released`, -XEN_ERRNO.EBADF);
  }

  /** Another reference (dup of the fd / get_dma_buf). */
  get(): DmaBuf {
    this.check('get');
    this.refs++;
    return this;
  }

  /**
   * Drops one reference. The last one releases the buffer: the exporter's callback, then the
   * listeners, each exactly once. If any of them throws, the others still run and the first
   * error is rethrown afterwards. Putting a released buffer throws (a reference closed twice).
   */
  put(): void {
    this.check('put');
    if (--this.refs > 0) return;
    this.isReleased = true;
    this.view = undefined;
    const errors: unknown[] = [];
    const release = this.releaseFn;
    this.releaseFn = undefined;
    try {
      release?.();
    } catch (e) {
      errors.push(e);
    }
    const listeners = [...this.listeners];
    this.listeners.clear();
    for (const cb of listeners) {
      try {
        cb();
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length > 0) throw errors[0];
  }

  /** Calls `cb` once when the buffer is released (at once if it already is). Returns an unsubscribe. */
  onRelease(cb: () => void): () => void {
    if (this.isReleased) {
      cb();
      return () => {};
    }
    // A wrapper, so the same function registered twice runs twice and unsubscribes separately.
    const entry = (): void => cb();
    this.listeners.add(entry);
    return () => {
      this.listeners.delete(entry);
    };
  }

  /** Devices attached now. */
  get attachments(): number {
    return this.attached.size;
  }

  /**
   * dma_buf_attach (+ dma_buf_map_attachment when `direction` is given). The attachment holds a
   * reference until detached. Throws DmaBufError: -EBADF once released, -EINVAL for an unknown
   * direction.
   */
  attach(device: string, direction?: DmaDirection): DmaBufAttachment {
    this.check('attach');
    if (direction !== undefined && !isDmaDirection(direction)) {
      throw new DmaBufError(`attach ${device}: bad DMA direction ${String(direction)}`, -XEN_ERRNO.EINVAL);
    }
    this.get();
    const a = new DmaBufAttachment(this, device, (x) => {
      this.attached.delete(x);
      this.put();
    });
    this.attached.add(a);
    if (direction !== undefined) a.map(direction);
    return a;
  }
}

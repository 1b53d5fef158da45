/**
 * A dma-buf of the domain's own memory (a DRM dumb buffer or a dma-heap allocation): zeroed
 * pages, physically contiguous on request ("DMA-able", CMA-like), freed when the last reference
 * goes. Grants of its pages made by importToRefs hold a reference until every grant has ended,
 * so the pages are never freed while a peer may still map them.
 */
import { XEN_PAGE_SIZE } from '../abi/page-directory.js';
import { XEN_ERRNO } from '../abi/xen-errno.js';
import type { Platform } from '../hypervisor/platform.js';
import { DmaBuf } from './dmabuf.js';

export interface AllocDmaBufOptions {
  /** Physically adjacent pages (one view covers them all); -ENOMEM when no run is that long. */
  readonly contiguous?: boolean;
}

/** Allocates `pageCount` zeroed pages as a dma-buf holding one reference, or a negative errno. */
export function allocDmaBuf(platform: Platform, pageCount: number, opts: AllocDmaBufOptions = {}): DmaBuf | number {
  if (!Number.isSafeInteger(pageCount) || pageCount <= 0) return -XEN_ERRNO.EINVAL;
  const contiguous = opts.contiguous ?? false;
  const gfns = platform.memory.allocPages(pageCount, contiguous);
  if (typeof gfns === 'number') return gfns;
  const mem = platform.memory;
  // Also when not asked for: pages that happen to be adjacent still get one view.
  const view = mem.contiguous(gfns);
  return DmaBuf.create({
    size: pageCount * XEN_PAGE_SIZE,
    page: (i) => {
      const v = mem.page(gfns[i]!);
      if (!v) throw new RangeError(`page ${i} (gfn ${gfns[i]}) of the dma-buf is not populated`);
      return v;
    },
    contiguous: view,
    gfns,
    domid: platform.domid,
    exporter: contiguous ? 'alloc-contiguous' : 'alloc',
    release: () => {
      mem.freePages(gfns);
    },
  });
}

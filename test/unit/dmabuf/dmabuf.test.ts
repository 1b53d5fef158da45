/**
 * The dma-buf layer on the emulated machine: the DmaBuf object (references, release once,
 * listeners, attachments and -EBUSY), own-memory dma-bufs (contiguous or not), and the gntdev
 * dma-buf series between local domains: exporting a peer's grants (zero-copy both ways; bad
 * inputs refused with nothing left mapped; unmapped on the last put), waiting for release, and
 * importing a local dma-buf to refs a peer maps (release deferred while the peer maps a page, the
 * pages freed only after it unmaps). Every scenario ends with nothing leaked against a baseline
 * taken after a warm-up (p2m leaves and maptrack frames are kept once allocated, as in Xen).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { XEN_ERRNO } from '../../../src/abi/xen-errno.js';
import { allocDmaBuf } from '../../../src/dmabuf/alloc.js';
import { DmaBuf, DmaBufError, type DmaBufSgTable } from '../../../src/dmabuf/dmabuf.js';
import {
  exportFromRefs, type ExportResult, GNTDEV_DMA_FLAG_COHERENT, GNTDEV_DMA_FLAG_WC, importToRefs, type ImportHandle,
  type ImportResult, waitReleased,
} from '../../../src/dmabuf/gntdev-dmabuf.js';
import type { EmulatedPlatform } from '../../../src/hypervisor/index.js';
import { acct, grant, guest, newMachine, pages, view } from '../hypervisor/helpers.js';

const EINVAL = -XEN_ERRNO.EINVAL;
const EACCES = -XEN_ERRNO.EACCES;
const EBUSY = -XEN_ERRNO.EBUSY;
const EBADF = -XEN_ERRNO.EBADF;
const PAGE = 4096;

function alloc(p: EmulatedPlatform, n: number, contiguous = false): DmaBuf {
  const b = allocDmaBuf(p, n, { contiguous });
  if (typeof b === 'number') throw new Error(`allocDmaBuf(${n}) failed: ${b}`);
  return b;
}

function exported(r: ExportResult): DmaBuf {
  if (!r.ok) throw new Error(`expected an export, got ${r.errno}: ${r.message}`);
  return r.dmabuf;
}

function imported(r: ImportResult): ImportHandle {
  if (!r.ok) throw new Error(`expected an import, got ${r.errno}: ${r.message}`);
  return r;
}

function errnoOf(r: ExportResult | ImportResult): number {
  if (r.ok) throw new Error('expected an error');
  return r.errno;
}

function sgt(t: DmaBufSgTable | number): DmaBufSgTable {
  if (typeof t === 'number') throw new Error(`expected a table, got ${t}`);
  return t;
}

/**
 * Three local domains: `fe` owns memory, `be` maps it, `other` is a bystander. The baseline is
 * taken after one round trip (alloc, import, export plain and ballooned, release) at `warm` pages
 * with each peer.
 */
async function setup(warm = 64) {
  const m = newMachine(64);
  const fe = await guest(m, 'front');
  const be = await guest(m, 'back');
  const other = await guest(m, 'other');
  for (const ballooned of [false, true]) {
    const buf = alloc(fe.platform, warm, true);
    const imp = imported(importToRefs(fe.platform, buf, be.domid));
    const exp = exported(exportFromRefs(be.platform, fe.domid, imp.refs, { ballooned }));
    const imp3 = imported(importToRefs(fe.platform, buf, other.domid));
    const exp3 = exported(exportFromRefs(other.platform, fe.domid, imp3.refs, { ballooned }));
    for (const x of [exp, exp3]) x.put();
    for (const x of [imp, imp3]) x.release();
    buf.put();
  }
  const base = m.accounting();
  return { m, fe: fe.platform, be: be.platform, other: other.platform, feId: fe.domid, beId: be.domid, otherId: other.domid, base };
}

type Setup = Awaited<ReturnType<typeof setup>>;

async function finish(s: Setup): Promise<void> {
  s.fe.grants.retryDeferred(true);
  s.be.grants.retryDeferred(true);
  expect(s.fe.grants.deferredCount).toBe(0);
  expect(s.m.leaks(s.base)).toEqual([]);
  await s.m.close();
}

/** A dma-buf over plain memory (no machine), pages in the order given. */
function plain(pageCount: number, opts: { order?: number[]; contiguous?: boolean; release?: () => void } = {}) {
  const mem = new Uint8Array(pageCount * PAGE);
  const order = opts.order ?? Array.from({ length: pageCount }, (_, i) => i);
  const release = vi.fn(opts.release ?? (() => {}));
  const b = DmaBuf.create({
    size: pageCount * PAGE,
    page: (i) => mem.subarray(order[i]! * PAGE, (order[i]! + 1) * PAGE),
    contiguous: opts.contiguous ? mem : undefined,
    release,
  });
  return { b, mem, release };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('DmaBuf: references', () => {
  it('get/put like fds: the release callback runs once, after the last put, then the listeners', () => {
    const calls: string[] = [];
    const { b, release } = plain(2, { release: () => calls.push('release') });
    expect(b.size).toBe(2 * PAGE);
    expect(b.pageCount).toBe(2);
    expect(b.refCount).toBe(1);
    expect(b.get()).toBe(b);
    b.get();
    expect(b.refCount).toBe(3);
    const off = b.onRelease(() => calls.push('never'));
    b.onRelease(() => calls.push('listener'));
    off();
    b.put();
    b.put();
    expect(release).not.toHaveBeenCalled();
    expect(b.released).toBe(false);
    b.put();
    expect(release).toHaveBeenCalledTimes(1);
    expect(calls).toEqual(['release', 'listener']);
    expect(b.released).toBe(true);
    expect(b.refCount).toBe(0);
    const late = vi.fn();
    b.onRelease(late); // already released: at once
    expect(late).toHaveBeenCalledTimes(1);
    expect(() => b.put()).toThrow(DmaBufError);
    expect(() => b.get()).toThrow(expect.objectContaining({ errno: EBADF }) as Error);
    expect(() => b.page(0)).toThrow(DmaBufError);
    expect(b.contiguous).toBeUndefined();
    expect(release).toHaveBeenCalledTimes(1);
  });

  it('a throwing release callback or listener does not stop the others; the first error is rethrown once', () => {
    const seen: string[] = [];
    const { b } = plain(1, { release: () => { seen.push('release'); throw new Error('exporter'); } });
    b.onRelease(() => { seen.push('a'); throw new Error('listener'); });
    b.onRelease(() => seen.push('b'));
    expect(() => b.put()).toThrow('exporter');
    expect(seen).toEqual(['release', 'a', 'b']);
    expect(b.released).toBe(true);
  });

  it('sizes that are not whole pages, and views that do not fit, are refused', () => {
    const page = () => new Uint8Array(PAGE);
    for (const size of [0, -PAGE, 100, PAGE + 1, 1.5 * PAGE, Number.NaN]) {
      expect(() => DmaBuf.create({ size, page, release: () => {} })).toThrow(RangeError);
    }
    expect(() => DmaBuf.create({ size: 2 * PAGE, page, contiguous: new Uint8Array(PAGE), release: () => {} })).toThrow(RangeError);
    expect(() => DmaBuf.create({ size: 2 * PAGE, page, gfns: [1], release: () => {} })).toThrow(RangeError);
  });

  it('page views are zero-copy; one contiguous view only when given', () => {
    const scattered = plain(3, { order: [2, 0, 1] });
    expect(scattered.b.contiguous).toBeUndefined();
    scattered.b.page(0)[0] = 9;
    expect(scattered.mem[2 * PAGE]).toBe(9);
    expect(() => scattered.b.page(3)).toThrow(RangeError);
    expect(() => scattered.b.page(-1)).toThrow(RangeError);
    const whole = plain(3, { contiguous: true });
    expect(whole.b.contiguous?.length).toBe(3 * PAGE);
    whole.b.page(1)[5] = 7;
    expect(whole.mem[PAGE + 5]).toBe(7);
    expect(whole.b.page(1).length).toBe(PAGE);
    expect(whole.b.gfns).toBeUndefined();
  });
});

describe('DmaBuf: attachments', () => {
  it('a mapped attachment keeps its direction: the same again is the cached table, another is -EBUSY', () => {
    const { b, release } = plain(2, { contiguous: true });
    const a = b.attach('gpu', 'to-device');
    expect(b.attachments).toBe(1);
    expect(b.refCount).toBe(2); // the attachment holds a reference
    expect(a.direction).toBe('to-device');
    const t = sgt(a.map('to-device'));
    expect(a.map('to-device')).toBe(t);
    expect(t.pages).toHaveLength(2);
    expect(t.contiguous?.length).toBe(2 * PAGE);
    expect(a.map('from-device')).toBe(EBUSY);
    expect(a.map('bidirectional')).toBe(EBUSY);
    expect(a.map('none' as 'to-device')).toBe(EINVAL); // DMA_NONE
    // Another device maps the same buffer its own way.
    const c = b.attach('display');
    expect(c.direction).toBeUndefined();
    expect(sgt(c.map('from-device')).direction).toBe('from-device');
    expect(b.attachments).toBe(2);
    expect(() => b.attach('x', 'sideways' as 'to-device')).toThrow(expect.objectContaining({ errno: EINVAL }) as Error);
    expect(b.attachments).toBe(2);
    expect(b.refCount).toBe(3);

    b.put(); // the owner closes: the attachments keep it alive
    expect(b.released).toBe(false);
    t.pages[1]![0] = 1; // still usable
    a.detach();
    a.detach(); // idempotent
    expect(a.attached).toBe(false);
    expect(a.map('to-device')).toBe(EINVAL);
    expect(b.attachments).toBe(1);
    expect(release).not.toHaveBeenCalled();
    c.detach();
    expect(b.attachments).toBe(0);
    expect(release).toHaveBeenCalledTimes(1);
    expect(() => b.attach('late')).toThrow(expect.objectContaining({ errno: EBADF }) as Error);
  });
});

describe('allocDmaBuf: own memory', () => {
  it('contiguous: one view, adjacent frames, zeroed, the domain\'s own gfns; freed on the last put', async () => {
    const s = await setup();
    const before = acct(s.m, s.feId).pages;
    const b = alloc(s.fe, 16, true);
    expect(acct(s.m, s.feId).pages).toBe(before + 16);
    expect(b.size).toBe(16 * PAGE);
    expect(b.domid).toBe(s.feId);
    expect(b.foreign).toBe(false);
    const gfns = b.gfns!;
    expect(gfns).toHaveLength(16);
    expect(b.contiguous?.length).toBe(16 * PAGE);
    expect(s.fe.memory.contiguous(gfns)).toBeDefined();
    expect(b.contiguous!.every((x) => x === 0)).toBe(true);
    b.contiguous![15 * PAGE + 3] = 0x5a;
    expect(view(s.fe, gfns[15]!)[3]).toBe(0x5a);
    expect(b.page(15)[3]).toBe(0x5a);
    gfns[0] = -1; // a copy: the buffer's own list is untouched
    expect(b.gfns![0]).not.toBe(-1);
    b.put();
    expect(acct(s.m, s.feId).pages).toBe(before);
    await finish(s);
  });

  it('not contiguous: page views are the domain\'s pages; one view only if they happen to be adjacent', async () => {
    const s = await setup();
    const b = alloc(s.fe, 5);
    const gfns = b.gfns!;
    for (let i = 0; i < 5; i++) {
      b.page(i)[i] = i + 1;
      expect(view(s.fe, gfns[i]!)[i]).toBe(i + 1);
    }
    expect(b.contiguous === undefined).toBe(s.fe.memory.contiguous(gfns) === undefined);
    b.put();
    await finish(s);
  });

  it('in fragmented memory: contiguous is -ENOMEM, scattered pages get no single view', async () => {
    const s = await setup();
    // `other` takes every free frame, then gives back every other one: no two free frames adjacent.
    const held: Int32Array[] = [];
    for (let chunk = 1024; chunk >= 1; ) {
      const g = s.other.memory.allocPages(chunk);
      if (typeof g === 'number') chunk >>= 1;
      else held.push(g);
    }
    const all = held.flatMap((g) => Array.from(g));
    const mfnOf = (g: number) => s.other.hypercalls.gfnToMfn(g);
    all.sort((a, b) => mfnOf(a) - mfnOf(b));
    const holes = all.filter((_, i) => i % 2 === 0);
    expect(s.other.memory.freePages(holes)).toBe(0);
    const during = s.m.accounting();
    expect(allocDmaBuf(s.fe, 4, { contiguous: true })).toBe(-XEN_ERRNO.ENOMEM);
    const b = alloc(s.fe, 4);
    expect(b.contiguous).toBeUndefined();
    b.page(3)[1] = 3;
    expect(view(s.fe, b.gfns![3]!)[1]).toBe(3);
    b.put();
    expect(s.m.leaks(during)).toEqual([]);
    await s.m.close();
  });

  it('bad counts and impossible sizes are errnos with nothing allocated', async () => {
    const s = await setup();
    expect(allocDmaBuf(s.fe, 0)).toBe(EINVAL);
    expect(allocDmaBuf(s.fe, -1)).toBe(EINVAL);
    expect(allocDmaBuf(s.fe, 1.5)).toBe(EINVAL);
    expect(allocDmaBuf(s.fe, 64 * 256 + 1, { contiguous: true })).toBeLessThan(0); // more than the machine
    await finish(s);
  });
});

describe('exportFromRefs', () => {
  it('maps a peer\'s grants read-write, zero-copy both ways; the last put unmaps them', async () => {
    const s = await setup();
    const gfns = pages(s.fe, 4, true);
    const refs = Array.from(gfns, (g) => grant(s.fe, s.beId, g));
    view(s.fe, gfns[2]!)[7] = 0x11;
    const mapsBefore = acct(s.m, s.beId).mapsHeld;
    const d = exported(exportFromRefs(s.be, s.feId, refs));
    expect(acct(s.m, s.beId).mapsHeld).toBe(mapsBefore + 4);
    expect(d.size).toBe(4 * PAGE);
    expect(d.foreign).toBe(true);
    expect(d.gfns).toBeUndefined();
    expect(d.page(2)[7]).toBe(0x11);
    d.page(3)[0] = 0x22; // and the other way
    expect(view(s.fe, gfns[3]!)[0]).toBe(0x22);
    expect(d.contiguous?.length).toBe(4 * PAGE); // the granted pages are adjacent frames
    d.contiguous![100] = 0x33;
    expect(view(s.fe, gfns[0]!)[100]).toBe(0x33);
    const extra = d.get();
    d.put();
    expect(acct(s.m, s.beId).mapsHeld).toBe(mapsBefore + 4);
    extra.put();
    expect(acct(s.m, s.beId).mapsHeld).toBe(mapsBefore);
    for (const r of refs) expect(s.fe.grants.endAccess(r)).toBe(true); // nobody maps them any more
    s.fe.memory.freePages(gfns);
    await finish(s);
  });

  it('ballooned: the pages are reachable at gfns of the importer, and reported as such', async () => {
    const s = await setup();
    const gfns = pages(s.fe, 2);
    const refs = Array.from(gfns, (g) => grant(s.fe, s.beId, g));
    const d = exported(exportFromRefs(s.be, s.feId, refs, { ballooned: true }));
    const host = d.gfns!;
    expect(host).toHaveLength(2);
    d.page(1)[9] = 0x44;
    expect(view(s.be, host[1]!)[9]).toBe(0x44);
    expect(view(s.fe, gfns[1]!)[9]).toBe(0x44);
    d.put();
    expect(s.be.memory.page(host[1]!)).toBeUndefined();
    for (const r of refs) s.fe.grants.endAccess(r);
    s.fe.memory.freePages(gfns);
    await finish(s);
  });

  it('WC or COHERENT alone are accepted', async () => {
    const s = await setup();
    const gfns = pages(s.fe, 1);
    const refs = [grant(s.fe, s.beId, gfns[0]!)];
    for (const flags of [GNTDEV_DMA_FLAG_WC, GNTDEV_DMA_FLAG_COHERENT]) exported(exportFromRefs(s.be, s.feId, refs, { flags })).put();
    s.fe.grants.endAccess(refs[0]!);
    s.fe.memory.freePages(gfns);
    await finish(s);
  });

  describe('bad inputs: an errno, nothing left mapped', () => {
    /** Two good refs first, so a failure must undo mappings already made. */
    async function refuse(build: (s: Setup, good: number[]) => { refs: ArrayLike<number>; flags?: number; limit?: number; domid?: number; cleanup?: () => void }) {
      const s = await setup();
      const gfns = pages(s.fe, 2);
      const good = Array.from(gfns, (g) => grant(s.fe, s.beId, g));
      const { refs, flags, limit, domid, cleanup } = build(s, good);
      const during = s.m.accounting();
      const r = exportFromRefs(s.be, domid ?? s.feId, refs, { ...(flags !== undefined ? { flags } : {}), ...(limit !== undefined ? { limit } : {}) });
      const e = errnoOf(r);
      expect(s.m.leaks(during)).toEqual([]);
      cleanup?.();
      for (const ref of good) expect(s.fe.grants.endAccess(ref)).toBe(true);
      s.fe.memory.freePages(gfns);
      await finish(s);
      return e;
    }

    it('count 0', async () => {
      expect(await refuse(() => ({ refs: [] }))).toBe(EINVAL);
    });

    it('over the limit (given, and the default 65536)', async () => {
      expect(await refuse((_s, good) => ({ refs: [...good, good[0]!], limit: 2 }))).toBe(EINVAL);
      expect(await refuse((_s, good) => ({ refs: new Array<number>(65537).fill(good[0]!) }))).toBe(EINVAL);
      expect(await refuse((_s, good) => ({ refs: good, limit: 0 }))).toBe(EINVAL);
    });

    it('ref 0 (never granted by a guest: the reserved console entry) is -EACCES', async () => {
      expect(await refuse((_s, good) => ({ refs: [...good, 0] }))).toBe(EACCES);
    });

    it('a ref not granted, and one beyond the table', async () => {
      expect(await refuse((_s, good) => ({ refs: [...good, Math.max(...good) + 1] }))).toBe(EACCES);
      expect(await refuse((_s, good) => ({ refs: [...good, 0x7fff_0000] }))).toBe(EINVAL);
      expect(await refuse((_s, good) => ({ refs: [...good, 1.5] }))).toBe(EINVAL);
    });

    it('a ref granted to another domain', async () => {
      expect(await refuse((s, good) => {
        const g = pages(s.fe, 1);
        const r = grant(s.fe, s.otherId, g[0]!);
        return { refs: [...good, r], cleanup: () => s.fe.grants.endAccess(r, () => s.fe.memory.freePages(g)) };
      })).toBe(EACCES);
    });

    it('a read-only ref (the export maps read-write)', async () => {
      expect(await refuse((s, good) => {
        const g = pages(s.fe, 1);
        const r = grant(s.fe, s.beId, g[0]!, true);
        return { refs: [...good, r], cleanup: () => s.fe.grants.endAccess(r, () => s.fe.memory.freePages(g)) };
      })).toBe(EACCES);
    });

    it('flags: WC and COHERENT together, unknown bits', async () => {
      expect(await refuse((_s, good) => ({ refs: good, flags: GNTDEV_DMA_FLAG_WC | GNTDEV_DMA_FLAG_COHERENT }))).toBe(EINVAL);
      expect(await refuse((_s, good) => ({ refs: good, flags: 4 }))).toBe(EINVAL);
    });

    it('a domain id that is not a domain', async () => {
      expect(await refuse((_s, good) => ({ refs: good, domid: 0x7ff0 }))).toBe(EINVAL);
    });
  });
});

describe('waitReleased', () => {
  async function withExport(fn: (s: Setup, d: DmaBuf) => Promise<void>): Promise<void> {
    const s = await setup();
    const gfns = pages(s.fe, 2);
    const refs = Array.from(gfns, (g) => grant(s.fe, s.beId, g));
    const d = exported(exportFromRefs(s.be, s.feId, refs));
    await fn(s, d);
    if (!d.released) d.put();
    for (const r of refs) expect(s.fe.grants.endAccess(r)).toBe(true);
    s.fe.memory.freePages(gfns);
    await finish(s);
  }

  it('resolves 0 when the last reference goes, and at once when already released', async () => {
    await withExport(async (_s, d) => {
      const w = waitReleased(d, 10_000);
      setTimeout(() => d.put(), 5);
      expect(await w).toBe(0);
      expect(await waitReleased(d, 10_000)).toBe(0);
      expect(await waitReleased(d, 0)).toBe(0);
    });
  });

  it('-ETIMEDOUT when it is still referenced after the timeout', async () => {
    await withExport(async (_s, d) => {
      const t0 = Date.now();
      expect(await waitReleased(d, 20)).toBe(-XEN_ERRNO.ETIMEDOUT);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(15);
      expect(await waitReleased(d, 0)).toBe(-XEN_ERRNO.ETIMEDOUT);
      expect(d.released).toBe(false);
    });
  });

  it('the timer is cleared when the wait ends either way, and long timeouts are not cut short', async () => {
    await withExport(async (_s, d) => {
      vi.useFakeTimers();
      const released = waitReleased(d, 60_000);
      expect(vi.getTimerCount()).toBe(1);
      const timedOut = waitReleased(d, 50);
      expect(vi.getTimerCount()).toBe(2);
      const long = waitReleased(d, 0xffff_ffff); // beyond one setTimeout (2^31-1 ms)
      await vi.advanceTimersByTimeAsync(100);
      expect(await timedOut).toBe(-XEN_ERRNO.ETIMEDOUT);
      expect(vi.getTimerCount()).toBe(2);
      d.put();
      expect(await released).toBe(0);
      expect(await long).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
      vi.useRealTimers();
    });
  });

  it('-ENOENT for a dma-buf exportFromRefs did not make; -EINVAL for a bad timeout', async () => {
    const s = await setup();
    const b = alloc(s.fe, 1);
    expect(await waitReleased(b, 10)).toBe(-XEN_ERRNO.ENOENT);
    expect(await waitReleased(plain(1).b, 10)).toBe(-XEN_ERRNO.ENOENT);
    b.put();
    expect(await waitReleased(b, 10)).toBe(-XEN_ERRNO.ENOENT);
    await finish(s);
    await withExport(async (_s, d) => {
      expect(await waitReleased(d, -1)).toBe(EINVAL);
      expect(await waitReleased(d, 2 ** 32)).toBe(EINVAL);
    });
  });
});

describe('importToRefs', () => {
  it('grants every page; the peer maps them and sees writes both ways', async () => {
    const s = await setup();
    const b = alloc(s.fe, 3, true);
    const inUse = acct(s.m, s.feId).grantEntriesInUse;
    const imp = imported(importToRefs(s.fe, b, s.beId));
    expect(imp.refs).toHaveLength(3);
    expect(acct(s.m, s.feId).grantEntriesInUse).toBe(inUse + 3);
    expect(b.refCount).toBe(2);
    expect(b.attachments).toBe(1);
    const m = s.be.maps.map(s.feId, imp.refs, false);
    if (!m.ok) throw new Error(`map failed: ${m.status}`);
    b.page(1)[10] = 0x66;
    expect(m.mapping.page(1)[10]).toBe(0x66);
    m.mapping.page(2)[11] = 0x77;
    expect(b.contiguous![2 * PAGE + 11]).toBe(0x77);
    s.be.maps.unmap(m.mapping);
    imp.release(); // nobody maps them: ends at once
    expect(acct(s.m, s.feId).grantEntriesInUse).toBe(inUse);
    expect(b.refCount).toBe(1);
    expect(b.released).toBe(false); // the owner still holds it
    imp.release(); // idempotent
    expect(b.refCount).toBe(1);
    b.put();
    expect(b.released).toBe(true);
    await finish(s);
  });

  it('release while the peer maps is deferred; the pages are freed only after the peer unmaps', async () => {
    const s = await setup();
    const pagesBefore = acct(s.m, s.feId).pages;
    const b = alloc(s.fe, 4);
    const imp = imported(importToRefs(s.fe, b, s.beId));
    const m = s.be.maps.map(s.feId, imp.refs, false);
    if (!m.ok) throw new Error(`map failed: ${m.status}`);
    const onRelease = vi.fn();
    b.onRelease(onRelease);
    b.put(); // the owner closes first
    imp.release();
    expect(s.fe.grants.deferredCount).toBe(4);
    expect(b.released).toBe(false);
    expect(acct(s.m, s.feId).pages).toBe(pagesBefore + 4); // not freed: the peer still maps them
    m.mapping.page(3)[0] = 1; // still the guest's pages
    expect(s.fe.grants.retryDeferred(true)).toBe(0);
    expect(b.released).toBe(false);
    s.be.maps.unmap(m.mapping);
    expect(s.fe.grants.retryDeferred(true)).toBe(4);
    expect(onRelease).toHaveBeenCalledTimes(1);
    expect(b.released).toBe(true);
    expect(acct(s.m, s.feId).pages).toBe(pagesBefore);
    await finish(s);
  });

  it('two peers at once (three domains), each import holding its own reference', async () => {
    const s = await setup();
    const b = alloc(s.fe, 2, true);
    const toBe = imported(importToRefs(s.fe, b, s.beId));
    const toOther = imported(importToRefs(s.fe, b, s.otherId));
    expect(b.refCount).toBe(3);
    const mb = exported(exportFromRefs(s.be, s.feId, toBe.refs));
    const mo = exported(exportFromRefs(s.other, s.feId, toOther.refs));
    expect(exportFromRefs(s.other, s.feId, toBe.refs).ok).toBe(false); // not granted to it
    mb.page(0)[0] = 0x10;
    expect(mo.page(0)[0]).toBe(0x10);
    b.put();
    toBe.release();
    toOther.release();
    expect(b.released).toBe(false);
    mb.put();
    s.fe.grants.retryDeferred(true);
    expect(b.released).toBe(false); // `other` still maps its grants
    mo.put();
    s.fe.grants.retryDeferred(true);
    expect(b.released).toBe(true);
    await finish(s);
  });

  it('read-only: the peer may map for reading only', async () => {
    const s = await setup();
    const b = alloc(s.fe, 1);
    const imp = imported(importToRefs(s.fe, b, s.beId, { readonly: true }));
    expect(errnoOf(exportFromRefs(s.be, s.feId, imp.refs))).toBe(EACCES);
    const m = s.be.maps.map(s.feId, imp.refs, true);
    if (!m.ok) throw new Error(`map failed: ${m.status}`);
    b.page(0)[1] = 2;
    expect(m.mapping.page(0)[1]).toBe(2);
    s.be.maps.unmap(m.mapping);
    imp.release();
    b.put();
    await finish(s);
  });

  it('an exported (foreign) buffer has no pages of its own to grant: -EINVAL, nothing granted', async () => {
    const s = await setup();
    const b = alloc(s.fe, 2);
    const imp = imported(importToRefs(s.fe, b, s.beId));
    for (const ballooned of [false, true]) {
      const d = exported(exportFromRefs(s.be, s.feId, imp.refs, { ballooned }));
      const during = s.m.accounting();
      const r = importToRefs(s.be, d, s.otherId);
      expect(errnoOf(r)).toBe(EINVAL);
      expect(r.ok ? '' : r.message).toMatch(ballooned ? /foreign/ : /no gfns/);
      expect(s.m.leaks(during)).toEqual([]);
      expect(d.refCount).toBe(1);
      d.put();
    }
    imp.release();
    b.put();
    await finish(s);
  });

  it('other refusals: another domain\'s buffer, a released one, over the limit, a bad grantee', async () => {
    const s = await setup();
    const b = alloc(s.fe, 3);
    const during = s.m.accounting();
    expect(errnoOf(importToRefs(s.be, b, s.otherId))).toBe(EINVAL); // gfns of d-fe mean nothing in be
    expect(errnoOf(importToRefs(s.fe, b, s.beId, { limit: 2 }))).toBe(EINVAL);
    expect(errnoOf(importToRefs(s.fe, b, 0x7ff0))).toBe(EINVAL);
    expect(errnoOf(importToRefs(s.fe, plain(1).b, s.beId))).toBe(EINVAL); // no gfns
    expect(s.m.leaks(during)).toEqual([]);
    expect(b.refCount).toBe(1);
    b.put();
    expect(errnoOf(importToRefs(s.fe, b, s.beId))).toBe(EBADF);
    await finish(s);
  });
});

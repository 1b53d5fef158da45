/**
 * Viewer frame updates and where they are computed. frame-update.ts: the first update of a slot
 * carries every 64x64 tile and, decoded (raw or RLE) and drawn, gives exactly toRgba of the
 * visible frame for all nine xen-front formats at an odd size; later updates carry only the tiles
 * whose bytes changed and still reconstruct exactly; header fields round-trip; a change of size,
 * format or pitch is a whole update. frame-encoder.ts: the worker encoder reads frames zero-copy
 * (one shared view, or scattered shared pages) while holding a dma-buf reference exactly as long
 * as the job runs (even when the owner drops its own reference meanwhile: the pages are released
 * only once the worker is done), copies out what it cannot share (plain memory, no dma-buf), keeps
 * one shadow per slot, and on close rejects its jobs and drops every reference it held. The
 * inline encoder gives byte-identical messages.
 *
 * Bad inputs tried: every strict prefix of a message, an empty message, a message of another type,
 * a tile whose length runs past the end, a tile count larger than the tiles present (all
 * RangeError); a frame whose size is smaller than its visible rows need, and a format the worker
 * does not know (the job rejects, its reference is dropped, the slot starts whole again); a frame
 * whose dma-buf is already released (copied, no reference taken); encode after close (rejects,
 * no reference taken); a frame whose pages cannot be read (the inline encoder rejects, not throws).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type PixelFormat, pixelFormatByName, XEN_FRONT_FORMATS } from '../../../src/abi/fourcc.js';
import type { Frame } from '../../../src/back/presenter.js';
import { DmaBuf } from '../../../src/dmabuf/dmabuf.js';
import { type EncodedFrame, type FrameJob, InlineFrameEncoder, shareFrame, WorkerFrameEncoder } from '../../../src/present/frame-encoder.js';
import { decodeUpdate, encodeUpdate, MSG_FRAME, type UpdateHeader, VIEWER_CODEC, viewerCodec } from '../../../src/present/frame-update.js';
import { toRgba } from '../../../src/present/pixels.js';
import { ENC_RAW, ENC_RLE, type Raster, TILE, unrle } from '../../../src/present/tiles.js';

const PAGE = 4096;
const XRGB8888 = pixelFormatByName('XRGB8888')!;
const RGB565 = pixelFormatByName('RGB565')!;
const XRGB4444 = pixelFormatByName('XRGB4444')!;

const hash = (k: number): number => Math.imul(k + 1, 2654435761) >>> 24;

/** Index of the first differing byte, -1 when equal (a readable failure for big buffers). */
function firstDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

const rowBytesOf = (format: PixelFormat, width: number): number => Math.ceil((width * format.bpp) / 8);

/** Pixel bytes of row y: flat bands (runs) in the first 40 rows, noise below. */
function pixelByte(y: number, i: number, seed: number): number {
  return y < 40 ? ((y >> 3) * 37 + seed * 11) & 0xff : hash(y * 4099 + i + seed * 7919);
}

function raster(format: PixelFormat, width: number, height: number, pitch = rowBytesOf(format, width), seed = 0): Raster {
  const rowBytes = rowBytesOf(format, width);
  const data = new Uint8Array(pitch * height).fill(0xa5); // padding after each row: never a pixel
  for (let y = 0; y < height; y++) for (let i = 0; i < rowBytes; i++) data[y * pitch + i] = pixelByte(y, i, seed);
  return { format, width, height, pitch, data };
}

function rgbaOf(r: Raster): Uint8Array {
  return toRgba({ bytes: r.data, offset: 0, pitch: r.pitch, width: r.width, height: r.height, format: r.format }) as Uint8Array;
}

/** What the page does with a frame message: draws every tile on `canvas` (RGBA, `width` wide). */
function paint(canvas: Uint8Array, width: number, height: number, msg: Uint8Array): ReturnType<typeof decodeUpdate> {
  const u = decodeUpdate(msg);
  expect([u.width, u.height]).toEqual([width, height]);
  for (const t of u.tiles) {
    expect(t.x % TILE === 0 && t.y % TILE === 0 && t.w > 0 && t.h > 0 && t.x + t.w <= width && t.y + t.h <= height, `tile ${t.x},${t.y} ${t.w}x${t.h}`).toBe(true);
    let rgba: Uint8Array;
    if (t.encoding === ENC_RLE) {
      rgba = new Uint8Array(unrle(t.data, t.w * t.h).buffer);
    } else {
      expect(t.encoding).toBe(ENC_RAW);
      expect(t.data.length).toBe(t.w * t.h * 4);
      rgba = t.data;
    }
    for (let row = 0; row < t.h; row++) canvas.set(rgba.subarray(row * t.w * 4, (row + 1) * t.w * 4), ((t.y + row) * width + t.x) * 4);
  }
  return u;
}

const origins = (u: ReturnType<typeof decodeUpdate>): string[] => u.tiles.map((t) => `${t.x},${t.y}`).sort();
const allTiles = (w: number, h: number): number => Math.ceil(w / TILE) * Math.ceil(h / TILE);

describe('encodeUpdate / decodeUpdate', () => {
  for (const format of XEN_FRONT_FORMATS) {
    it(`${format.name}: the first update has every tile and draws exactly; a few changed pixels send only their tiles`, () => {
      const [w, h] = [131, 70];
      const r = raster(format, w, h);
      const canvas = new Uint8Array(w * h * 4);
      const first = encodeUpdate(r, undefined, { id: 3, seq: 1, flipTime: 1000 });
      const u1 = paint(canvas, w, h, first.msg);
      expect(first.tiles).toBe(allTiles(w, h));
      expect(origins(u1)).toEqual(['0,0', '0,64', '128,0', '128,64', '64,0', '64,64']);
      expect(firstDiff(canvas, rgbaOf(r))).toBe(-1);
      // Flat bands and noise: both encodings are exercised.
      expect(new Set(u1.tiles.map((t) => t.encoding))).toEqual(new Set([ENC_RAW, ENC_RLE]));

      // Invert every byte of three pixels, in three different tiles.
      for (const [x, y] of [
        [5, 5],
        [100, 30],
        [130, 69],
      ] as const) {
        const from = Math.floor((x * format.bpp) / 8);
        const to = Math.ceil(((x + 1) * format.bpp) / 8);
        for (let b = from; b < to; b++) r.data[y * r.pitch + b] = r.data[y * r.pitch + b]! ^ 0xff;
      }
      const second = encodeUpdate(r, first.shadow, { id: 3, seq: 2, flipTime: 1016 });
      const u2 = paint(canvas, w, h, second.msg);
      expect(second.tiles).toBe(3);
      expect(origins(u2)).toEqual(['0,0', '128,64', '64,0']);
      expect(firstDiff(canvas, rgbaOf(r))).toBe(-1);
      expect(firstDiff(second.shadow.data, r.data)).toBe(-1);
    });
  }

  it('header fields round-trip, and the message is exactly header + tiles', () => {
    const r = raster(XRGB8888, 131, 70);
    for (const h of [
      { id: 0, seq: 0, flipTime: 0 },
      { id: 0xffff, seq: 0xffffffff, flipTime: 1712345678901.125 },
      { id: 7, seq: 123456, flipTime: -1.5 },
    ] satisfies UpdateHeader[]) {
      const { msg } = encodeUpdate(r, undefined, h);
      const u = decodeUpdate(msg);
      expect({ id: u.id, seq: u.seq, flipTime: u.flipTime, width: u.width, height: u.height }).toEqual({ ...h, width: 131, height: 70 });
      expect([msg[0], msg[1]]).toEqual([MSG_FRAME, 0]);
      expect(msg.length).toBe(24 + u.tiles.reduce((n, t) => n + 13 + t.data.length, 0));
    }
  });

  it('decodes a message that is a view at an odd offset of a bigger buffer', () => {
    const r = raster(RGB565, 131, 70);
    const { msg } = encodeUpdate(r, undefined, { id: 1, seq: 9, flipTime: 5 });
    const big = new Uint8Array(msg.length + 10);
    big.set(msg, 3);
    const canvas = new Uint8Array(131 * 70 * 4);
    expect(paint(canvas, 131, 70, big.subarray(3, 3 + msg.length)).seq).toBe(9);
    expect(firstDiff(canvas, rgbaOf(r))).toBe(-1);
  });

  it('an unchanged frame is a header alone; the shadow is a copy, not the frame', () => {
    const r = raster(XRGB8888, 131, 70);
    const first = encodeUpdate(r, undefined, { id: 1, seq: 1, flipTime: 0 });
    const same = encodeUpdate(r, first.shadow, { id: 1, seq: 2, flipTime: 0 });
    expect(same.tiles).toBe(0);
    expect(same.msg.length).toBe(24);
    expect(decodeUpdate(same.msg).tiles).toEqual([]);
    r.data[0] = r.data[0]! ^ 1; // the shadow must not see this
    expect(encodeUpdate(r, same.shadow, { id: 1, seq: 3, flipTime: 0 }).tiles).toBe(1);
  });

  it('a change of size, format or pitch is a whole update (even with the same bytes)', () => {
    const base = raster(XRGB4444, 131, 70);
    const { shadow } = encodeUpdate(base, undefined, { id: 1, seq: 1, flipTime: 0 });
    const widerPitch = raster(XRGB4444, 131, 70, base.pitch + 64);
    const cases: Raster[] = [
      { ...base, format: RGB565 }, // same bpp, same bytes, another format
      widerPitch, // same pixels, another pitch
      { ...base, width: 130 }, // same bytes, narrower
      { ...base, height: 64, data: base.data.subarray(0, base.pitch * 64) }, // same bytes, shorter
    ];
    for (const r of cases) {
      const u = encodeUpdate(r, shadow, { id: 1, seq: 2, flipTime: 0 });
      expect(u.tiles, `${r.format.name} ${r.width}x${r.height} pitch ${r.pitch}`).toBe(allTiles(r.width, r.height));
      const canvas = new Uint8Array(r.width * r.height * 4);
      paint(canvas, r.width, r.height, u.msg);
      expect(firstDiff(canvas, rgbaOf(r))).toBe(-1);
    }
    // The original shadow was not disturbed by the other geometries: the base frame is still unchanged.
    expect(encodeUpdate(base, shadow, { id: 1, seq: 3, flipTime: 0 }).tiles).toBe(0);
  });

  it('regression: the guest drawing while an update is computed: the client gets exactly what the shadow records, and the rest with the next update', () => {
    const format = pixelFormatByName('XRGB8888')!;
    const W = 128;
    const H = 64;
    const pitch = W * 4;
    const mem = new Uint8Array(pitch * H).fill(1);
    const plain: Raster = { format, width: W, height: H, pitch, data: mem };
    const canvas = new Uint8Array(W * H * 4);
    const hdr = { id: 1, seq: 1, flipTime: 0 };
    let shadow = encodeUpdate(plain, undefined, hdr).shadow;
    paint(canvas, W, H, encodeUpdate(plain, undefined, hdr).msg);
    mem.fill(2);
    // The guest draws (every byte becomes 3) in the middle of the update: the frame's memory
    // is changed by the 20th row the update takes out of it.
    class Racy extends Uint8Array {
      static calls = 0;
      override subarray(begin?: number, end?: number): Uint8Array<ArrayBuffer> {
        if (++Racy.calls === 20) mem.fill(3);
        return new Uint8Array(this.buffer, this.byteOffset, this.length).subarray(begin, end);
      }
    }
    const racy: Raster = { ...plain, data: new Racy(mem.buffer, 0, mem.length) };
    const u = encodeUpdate(racy, shadow, { ...hdr, seq: 2 });
    shadow = u.shadow;
    paint(canvas, W, H, u.msg);
    expect(Racy.calls).toBeGreaterThanOrEqual(20);
    expect(firstDiff(canvas, rgbaOf({ ...plain, data: shadow.data }))).toBe(-1);
    // Nothing changes any more: the next update brings the client to the frame.
    paint(canvas, W, H, encodeUpdate(plain, shadow, { ...hdr, seq: 3 }).msg);
    expect(firstDiff(canvas, rgbaOf(plain))).toBe(-1);
  });

  it('decodeUpdate throws RangeError on truncated or malformed messages', () => {
    const r = raster(XRGB8888, 131, 70);
    const { msg } = encodeUpdate(r, undefined, { id: 1, seq: 1, flipTime: 0 });
    for (let n = 0; n < msg.length; n++) expect(() => decodeUpdate(msg.subarray(0, n)), `prefix of ${n} bytes`).toThrow(RangeError);
    expect(() => decodeUpdate(new Uint8Array(0))).toThrow(RangeError);
    const other = msg.slice();
    other[0] = 2;
    expect(() => decodeUpdate(other)).toThrow(RangeError);
    const longTile = msg.slice();
    new DataView(longTile.buffer).setUint32(24 + 9, 0xffffffff, true);
    expect(() => decodeUpdate(longTile)).toThrow(RangeError);
    const moreTiles = msg.slice();
    new DataView(moreTiles.buffer).setUint32(20, decodeUpdate(msg).tiles.length + 1, true);
    expect(() => decodeUpdate(moreTiles)).toThrow(RangeError);
  });
});

interface FrameOptions {
  readonly format?: PixelFormat;
  readonly width?: number;
  readonly height?: number;
  readonly pitch?: number;
  readonly offset?: number;
  /** Shared (machine memory) or an ordinary ArrayBuffer. */
  readonly memory?: 'shared' | 'plain';
  /** One view of the whole buffer, or scattered pages (page i+1 below page i, a foreign page between). */
  readonly layout?: 'view' | 'scattered';
  readonly dmabuf?: boolean;
  readonly seed?: number;
  /** Frame.size, when it should lie. */
  readonly size?: number;
  /** Runs inside the dma-buf's release callback. */
  readonly onRelease?: () => void;
}

interface TestFrame {
  readonly frame: Frame;
  readonly dmabuf: DmaBuf | undefined;
  /** Times the dma-buf's release callback ran. */
  releases: number;
  /** Writes byte `v` at byte `at` of the buffer. */
  poke(at: number, v: number): void;
  /** RGBA of the visible frame now. */
  expected(): Uint8Array;
}

function makeFrame(o: FrameOptions = {}): TestFrame {
  const format = o.format ?? XRGB8888;
  const width = o.width ?? 131;
  const height = o.height ?? 70;
  const rowBytes = rowBytesOf(format, width);
  const pitch = o.pitch ?? rowBytes;
  const offset = o.offset ?? 0;
  const size = offset + pitch * height;
  const pages = Math.ceil(size / PAGE);
  const shared = (o.memory ?? 'shared') === 'shared';
  const alloc = (n: number): ArrayBufferLike => (shared ? new SharedArrayBuffer(n) : new ArrayBuffer(n));
  // The buffer's bytes in order: pixels, and 0xEE wherever no pixel is.
  const linear = new Uint8Array(pages * PAGE).fill(0xee);
  for (let y = 0; y < height; y++) for (let i = 0; i < rowBytes; i++) linear[offset + y * pitch + i] = pixelByte(y, i, o.seed ?? 0);
  let view: Uint8Array | undefined;
  let page: (i: number) => Uint8Array;
  if ((o.layout ?? 'view') === 'view') {
    // A view that does not start at byte 0 of its buffer.
    view = new Uint8Array(alloc(PAGE + pages * PAGE), PAGE, pages * PAGE);
    view.set(linear);
    const v = view;
    page = (i) => v.subarray(i * PAGE, (i + 1) * PAGE);
  } else {
    const mem = new Uint8Array(alloc((2 * pages + 1) * PAGE)).fill(0xcc);
    const slot = (i: number): number => 2 * (pages - 1 - i) + 1;
    for (let i = 0; i < pages; i++) mem.set(linear.subarray(i * PAGE, (i + 1) * PAGE), slot(i) * PAGE);
    page = (i) => {
      if (!Number.isInteger(i) || i < 0 || i >= pages) throw new RangeError(`page ${i} of ${pages}`);
      return mem.subarray(slot(i) * PAGE, (slot(i) + 1) * PAGE);
    };
  }
  const t: TestFrame = {
    frame: undefined as unknown as Frame,
    dmabuf: undefined,
    releases: 0,
    poke: (at, v) => {
      linear[at] = v;
      page(Math.floor(at / PAGE))[at % PAGE] = v;
    },
    expected: () => toRgba({ bytes: linear, offset, pitch, width, height, format }) as Uint8Array,
  };
  const dmabuf = o.dmabuf === false ? undefined : DmaBuf.create({
    size: pages * PAGE,
    page,
    contiguous: view,
    release: () => {
      t.releases++;
      o.onRelease?.();
    },
  });
  return Object.assign(t, { frame: { fbCookie: 1n, format, width, height, pitch, offset, size: o.size ?? size, view, page, dmabuf } satisfies Frame, dmabuf });
}

const job = (slot: string, t: TestFrame, seq = 1): FrameJob<UpdateHeader> => ({ slot, frame: t.frame, width: t.frame.width, height: t.frame.height, params: { id: 1, seq, flipTime: 1000 + seq } });

/** Decodes `r` onto a fresh canvas (or `canvas`) and checks it shows exactly `t`'s pixels. */
function expectExact(r: EncodedFrame, t: TestFrame, canvas = new Uint8Array(t.frame.width * t.frame.height * 4)): ReturnType<typeof decodeUpdate> {
  const u = paint(canvas, t.frame.width, t.frame.height, r.msg);
  expect(u.tiles.length).toBe(r.tiles);
  expect(firstDiff(canvas, t.expected())).toBe(-1);
  return u;
}

describe('shareFrame', () => {
  it('describes shared memory, and refuses what the worker could not read', () => {
    expect(shareFrame(makeFrame().frame, 131, 70)?.kind).toBe('view');
    expect(shareFrame(makeFrame({ memory: 'plain' }).frame, 131, 70)).toBeUndefined();
    const scattered = makeFrame({ layout: 'scattered', offset: 100, pitch: 600 });
    const s = shareFrame(scattered.frame, 131, 70);
    expect(s?.kind).toBe('pages');
    expect(shareFrame(makeFrame({ layout: 'scattered', memory: 'plain' }).frame, 131, 70)).toBeUndefined();
    // Pages of two different shared buffers: not one address space.
    const a = makeFrame({ layout: 'scattered' });
    const b = makeFrame({ layout: 'scattered' });
    const mixed: Frame = { ...a.frame, page: (i) => (i % 2 === 0 ? a.frame.page(i) : b.frame.page(i)) };
    expect(shareFrame(mixed, 131, 70)).toBeUndefined();
  });

  it('with a pitch wider than a page, only the pages the rows touch are read', () => {
    const t = makeFrame({ layout: 'scattered', width: 10, height: 3, pitch: 3 * PAGE, offset: 8 });
    const touched = new Set<number>();
    const frame: Frame = {
      ...t.frame,
      page: (i) => {
        touched.add(i);
        return t.frame.page(i);
      },
    };
    const s = shareFrame(frame, 10, 3);
    expect(s?.kind).toBe('pages');
    expect([...touched].sort()).toEqual([0, 3, 6]);
    if (s?.kind === 'pages') expect(Array.from(s.pages).map((p) => p >= 0)).toEqual([true, false, false, true, false, false, true]);
  });
});

describe('WorkerFrameEncoder', () => {
  let enc: WorkerFrameEncoder<UpdateHeader>;
  beforeEach(() => {
    enc = new WorkerFrameEncoder(VIEWER_CODEC);
  });
  afterEach(async () => {
    await enc.close();
  });

  it('a shared contiguous frame: exact, one more dma-buf reference while in flight, none after', async () => {
    const t = makeFrame({ pitch: 131 * 4 + 20, offset: 64 });
    const d = t.dmabuf!;
    d.get(); // someone else holds one too
    const before = d.refCount;
    const p = enc.encode(job('a', t));
    expect(d.refCount).toBe(before + 1);
    expect(enc.inFlight).toBe(1);
    const r = await p;
    expect(d.refCount).toBe(before);
    expect(enc.inFlight).toBe(0);
    expect(t.releases).toBe(0);
    expect(r.tiles).toBe(allTiles(131, 70));
    expectExact(r, t);
  });

  it('the owner puts its reference while the job runs: the pages are released once, only after the worker is done', async () => {
    let inFlightAtRelease = -1;
    const t = makeFrame({
      onRelease: () => {
        inFlightAtRelease = enc.inFlight;
        // The hypervisor reuses the pages: whatever is read after this is garbage.
        t.frame.view!.fill(0x5a);
      },
    });
    const expected = t.expected();
    const p = enc.encode(job('a', t));
    t.dmabuf!.put();
    expect(t.dmabuf!.refCount).toBe(1);
    expect(t.dmabuf!.released).toBe(false);
    expect(t.releases).toBe(0);
    const r = await p;
    expect(t.releases).toBe(1);
    expect(inFlightAtRelease).toBe(0);
    expect(t.dmabuf!.released).toBe(true);
    const canvas = new Uint8Array(131 * 70 * 4);
    paint(canvas, 131, 70, r.msg);
    expect(firstDiff(canvas, expected)).toBe(-1);
  });

  it('scattered shared pages, a nonzero offset and a pitch wider than the row: exact', async () => {
    for (const format of XEN_FRONT_FORMATS) {
      // An odd width for every format: YUYV's last pixel reads only its Y0 and U on every path.
      const width = 131;
      const rowBytes = rowBytesOf(format, width);
      const t = makeFrame({ format, width, layout: 'scattered', offset: 3000, pitch: rowBytes + 36 });
      expect(shareFrame(t.frame, width, 70)?.kind).toBe('pages');
      const r = await enc.encode(job(format.name, t));
      expectExact(r, t);
      expect(t.dmabuf!.refCount).toBe(1);
    }
  });

  it('plain memory, no dma-buf, or an already released dma-buf: copied out, still exact', async () => {
    const plain = makeFrame({ memory: 'plain', pitch: 600, offset: 12 });
    const p = enc.encode(job('plain', plain));
    expect(plain.dmabuf!.refCount).toBe(1); // not held: the pixels were copied already
    expectExact(await p, plain);

    const unowned = makeFrame({ dmabuf: false, layout: 'scattered', offset: 4000 });
    expectExact(await enc.encode(job('unowned', unowned)), unowned);

    const gone = makeFrame({ pitch: 700 });
    gone.dmabuf!.put();
    expect(gone.dmabuf!.released).toBe(true);
    expectExact(await enc.encode(job('gone', gone)), gone);
    expect(gone.dmabuf!.refCount).toBe(0);
  });

  it('the visible part of a bigger frame is what is encoded', async () => {
    const t = makeFrame({ width: 200, height: 100 });
    const r = await enc.encode({ ...job('a', t), width: 131, height: 70 });
    const u = decodeUpdate(r.msg);
    expect([u.width, u.height, u.tiles.length]).toEqual([131, 70, allTiles(131, 70)]);
    const canvas = new Uint8Array(131 * 70 * 4);
    paint(canvas, 131, 70, r.msg);
    const linear = new Uint8Array(200 * 4 * 100);
    for (let y = 0; y < 100; y++) for (let i = 0; i < 800; i++) linear[y * 800 + i] = pixelByte(y, i, 0);
    expect(firstDiff(canvas, toRgba({ bytes: linear, offset: 0, pitch: 800, width: 131, height: 70, format: XRGB8888 }) as Uint8Array)).toBe(-1);
  });

  it('slots keep separate shadows; forget(slot) makes its next update whole', async () => {
    const t = makeFrame();
    const all = allTiles(131, 70);
    const canvasA = new Uint8Array(131 * 70 * 4);
    expectExact(await enc.encode(job('A', t, 1)), t, canvasA);
    expect((await enc.encode(job('A', t, 2))).tiles).toBe(0);
    expect((await enc.encode(job('B', t, 1))).tiles).toBe(all);
    t.poke(70 * 4 + 3, 0x12); // one pixel of tile (64, 0)
    const a3 = await enc.encode(job('A', t, 3));
    expect(origins(expectExact(a3, t, canvasA))).toEqual(['64,0']);
    enc.forget('A');
    expect((await enc.encode(job('A', t, 4))).tiles).toBe(all);
    expect((await enc.encode(job('B', t, 2))).tiles).toBe(1);
    expect((await enc.encode(job('B', t, 3))).tiles).toBe(0);
  });

  it('jobs are answered in submission order, each against the shadow the previous one left', async () => {
    const frames = [0, 1, 2, 3].map((seed) => makeFrame({ seed }));
    const canvas = new Uint8Array(131 * 70 * 4);
    const rs = await Promise.all(frames.map((t, k) => enc.encode(job('s', t, k + 1))));
    rs.forEach((r, k) => {
      expect(decodeUpdate(r.msg).seq).toBe(k + 1);
      expectExact(r, frames[k]!, canvas);
    });
    for (const t of frames) expect(t.dmabuf!.refCount).toBe(1);
  });

  it('a job that fails in the worker rejects, drops its reference, and the slot starts whole again', async () => {
    const good = makeFrame();
    expect((await enc.encode(job('s', good, 1))).tiles).toBe(allTiles(131, 70));
    const short = makeFrame({ size: 131 * 4 * 69 }); // says it is smaller than its visible rows
    await expect(enc.encode(job('s', short, 2))).rejects.toThrow(/does not fit/);
    expect(short.dmabuf!.refCount).toBe(1);
    const unknown = makeFrame();
    const alien: Frame = { ...unknown.frame, format: { ...XRGB8888, fourcc: 0x12345678 } };
    await expect(enc.encode({ ...job('s', unknown, 3), frame: alien })).rejects.toThrow(/unknown format/);
    expect(unknown.dmabuf!.refCount).toBe(1);
    const r = await enc.encode(job('s', good, 4));
    expect(r.tiles).toBe(allTiles(131, 70));
    expectExact(r, good);
  });

  it('close() rejects the jobs in flight and drops every reference they held; encode after close rejects', async () => {
    const frames = [makeFrame(), makeFrame({ layout: 'scattered' }), makeFrame({ seed: 3 })];
    const ps = frames.map((t, k) => enc.encode(job(`s${k}`, t)));
    const again = enc.encode(job('s0', frames[0]!, 2)); // the same dma-buf twice
    expect(frames.map((t) => t.dmabuf!.refCount)).toEqual([3, 2, 2]);
    frames[2]!.dmabuf!.put(); // its owner lets go: the encoder holds the last reference
    const outcomes = [...ps, again].map((p) => p.then(() => 'resolved', (e: unknown) => (e instanceof Error ? e.message : String(e))));
    await enc.close();
    expect(await Promise.all(outcomes)).toEqual(Array(4).fill('the encoder is closed'));
    expect(frames.map((t) => t.dmabuf!.refCount)).toEqual([1, 1, 0]);
    expect(frames.map((t) => t.releases)).toEqual([0, 0, 1]);
    expect(enc.inFlight).toBe(0);
    const late = makeFrame();
    await expect(enc.encode(job('s0', late))).rejects.toThrow(/closed/);
    expect(late.dmabuf!.refCount).toBe(1);
    await enc.close(); // twice: harmless
  });
});

describe('InlineFrameEncoder', () => {
  it('gives byte-identical messages to the worker encoder for the same frames', async () => {
    const inline = new InlineFrameEncoder(viewerCodec);
    const worker = new WorkerFrameEncoder(VIEWER_CODEC);
    try {
      let seq = 0;
      const both = async (slot: string, t: TestFrame, width = t.frame.width, height = t.frame.height): Promise<number> => {
        const j: FrameJob<UpdateHeader> = { ...job(slot, t, ++seq), width, height };
        const a = await inline.encode(j);
        const b = await worker.encode(j);
        expect(firstDiff(a.msg, b.msg), `${slot} seq ${seq}`).toBe(-1);
        expect(a.tiles).toBe(b.tiles);
        return a.tiles;
      };
      for (const format of XEN_FRONT_FORMATS) {
        const slot = format.name;
        const rowBytes = rowBytesOf(format, 131);
        const t = makeFrame({ format, offset: 32, pitch: rowBytes + 8 });
        expect(await both(slot, t)).toBe(allTiles(131, 70));
        t.poke(32 + 10 * (rowBytes + 8) + 2, 0x33);
        t.poke(32 + 69 * (rowBytes + 8) + rowBytes - 1, 0x44);
        expect(await both(slot, t)).toBe(2);
        expect(await both(slot, t)).toBe(0);
        await both(slot, makeFrame({ format, layout: 'scattered', offset: 32, pitch: rowBytes + 8, seed: 1 }));
        await both(slot, makeFrame({ format, memory: 'plain', seed: 2 }));
        await both(slot, makeFrame({ format, dmabuf: false, seed: 2 }));
        await both(slot, makeFrame({ format, seed: 2, width: 140, height: 80 }), 100, 65);
        inline.forget(slot);
        worker.forget(slot);
        expect(await both(slot, makeFrame({ format, seed: 2 }))).toBe(allTiles(131, 70));
      }
    } finally {
      await worker.close();
      await inline.close();
    }
  });

  it('a frame that cannot be read rejects (does not throw)', async () => {
    const t = makeFrame({ layout: 'scattered', dmabuf: false });
    const broken: Frame = {
      ...t.frame,
      page: () => {
        throw new RangeError('unmapped');
      },
    };
    const inline = new InlineFrameEncoder(viewerCodec);
    let p: Promise<EncodedFrame> | undefined;
    expect(() => (p = inline.encode(job('a', { ...t, frame: broken })))).not.toThrow();
    await expect(p).rejects.toThrow('unmapped');
  });
});

/**
 * One RFB FramebufferUpdate as the codec computes it (src/present/rfb/rfb-update.ts), decoded by a
 * small independent decoder in this file (Raw, CopyRect, Zlib on one persistent inflate stream,
 * pseudo-rectangles and LastRect; ZRLE is decoded by the test client in the integration tests).
 *
 * Covered: the first update of a slot is the whole frame (whatever area was asked: the client's
 * copy is unknown), merged into one rectangle; later updates carry only the tiles that changed
 * (one, two apart, two side by side merged into a run, two above each other merged, an L shape as
 * two rectangles), clipped to the requested area (the rest follows with the next request); a
 * `full` update sends every tile of the area changed or not; an area outside the frame sends
 * nothing; a change of size, format or pitch sends everything; nothing changed is an empty
 * message; a continued Zlib/ZRLE stream whose state is gone fails; CopyRect
 * for tiles repeating an earlier tile of the same update (after their source, never for a
 * one-colour tile with Zlib/ZRLE, never without the client's CopyRect); LastRect (count 0xFFFF and
 * the terminating rectangle); Zlib data on a stream that persists across updates; mergeTiles.
 * After every update the decoded picture equals the frame (as toRgba shows it), pixel by pixel.
 */
import { constants as zlibConstants, createInflate, type Inflate } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { type PixelFormat, pixelFormatByName } from '../../../src/abi/fourcc.js';
import { packColor, storePixel, toRgba } from '../../../src/present/pixels.js';
import { RFB_XRGB8888, type RfbPixelFormat } from '../../../src/present/rfb/pixel-format.js';
import { mergeTiles, type PixelEncoding, rfbCodec, type RfbSlotState, type RfbUpdateParams } from '../../../src/present/rfb/rfb-update.js';
import type { Raster, Rect } from '../../../src/present/tiles.js';

const XRGB8888 = pixelFormatByName('XRGB8888')!;
const RGB565 = pixelFormatByName('RGB565')!;
const YUYV = pixelFormatByName('YUYV')!;

const RAW = 0;
const COPY_RECT = 1;
const ZLIB = 6;
const ZRLE = 16;
const DESKTOP_SIZE = -223;
const LAST_RECT = -224;
const EXT_DESKTOP_SIZE = -308;

const hash = (k: number): number => Math.imul(k + 1, 2654435761) >>> 24;

// ------------------------------------------------------------------------------------------------
// Frames

type Paint = (x: number, y: number) => [number, number, number];

const noise =
  (seed: number): Paint =>
  (x, y) => [hash(y * 7919 + x + seed), hash(y * 104729 + x * 3 + seed), hash(x * 31 + y * 17 + seed * 5)];

/** A raster of `format` painted with `paint`, row padding 0xa5. */
function raster(format: PixelFormat, width: number, height: number, paint: Paint, pad = 8): Raster {
  const rowBytes = Math.ceil((width * format.bpp) / 8);
  const pitch = rowBytes + pad;
  const data = new Uint8Array(pitch * height).fill(0xa5);
  const r: Raster = { format, width, height, pitch, data };
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) setPixel(r, x, y, paint(x, y));
  return r;
}

function setPixel(r: Raster, x: number, y: number, [cr, cg, cb]: [number, number, number]): void {
  if (r.format.layout.kind === 'yuv422') {
    if (x & 1) return;
    storePixel(r.data, y * r.pitch + x * 2, packColor(r.format, cr, cg, cb), x + 1 < r.width ? 4 : 2);
    return;
  }
  const cpp = r.format.bpp / 8;
  storePixel(r.data, y * r.pitch + x * cpp, packColor(r.format, cr, cg, cb), cpp);
}

function copyRaster(r: Raster): Raster {
  return { ...r, data: r.data.slice() };
}

/** The frame as an XRGB8888 client sees it: toRgba, packed r << 16 | g << 8 | b. */
function expectedPicture(r: Raster): Uint32Array {
  const rgba = toRgba({ bytes: r.data, offset: 0, pitch: r.pitch, width: r.width, height: r.height, format: r.format });
  const out = new Uint32Array(r.width * r.height);
  for (let i = 0; i < out.length; i++) out[i] = (rgba[i * 4]! << 16) | (rgba[i * 4 + 1]! << 8) | rgba[i * 4 + 2]!;
  return out;
}

// ------------------------------------------------------------------------------------------------
// Decoder

interface DecodedRect extends Rect {
  readonly encoding: number;
  /** CopyRect source. */
  readonly sx?: number | undefined;
  readonly sy?: number | undefined;
  /** Bytes of the rectangle's data (after the header). */
  readonly dataBytes: number;
}

interface Decoded {
  /** The count field. */
  readonly count: number;
  readonly rects: DecodedRect[];
}

class Inflater {
  private readonly stream: Inflate = createInflate();
  private out: Buffer[] = [];
  constructor() {
    this.stream.on('data', (c: Buffer) => this.out.push(c));
  }
  inflate(data: Uint8Array): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.stream.once('error', reject);
      this.stream.write(data);
      this.stream.flush(zlibConstants.Z_SYNC_FLUSH, () => {
        this.stream.off('error', reject);
        const b = Buffer.concat(this.out);
        this.out = [];
        resolve(b);
      });
    });
  }
  close(): void {
    this.stream.close();
  }
}

/** A client's framebuffer (32 bpp little-endian pixel values) and its zlib stream. */
class Screen {
  fb: Uint32Array;
  private zlib: Inflater | undefined;

  constructor(
    public width: number,
    public height: number,
  ) {
    this.fb = new Uint32Array(width * height);
  }

  /** Applies one FramebufferUpdate message, checking its structure strictly. */
  async apply(msg: Uint8Array): Promise<Decoded> {
    const dv = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
    expect(msg[0], 'message type').toBe(0);
    const count = dv.getUint16(2);
    const rects: DecodedRect[] = [];
    let o = 4;
    for (let i = 0; count === 0xffff || i < count; i++) {
      expect(o + 12 <= msg.length, `rectangle ${i} header inside the message`).toBe(true);
      const x = dv.getUint16(o);
      const y = dv.getUint16(o + 2);
      const w = dv.getUint16(o + 4);
      const h = dv.getUint16(o + 6);
      const encoding = dv.getInt32(o + 8);
      o += 12;
      const start = o;
      if (encoding === LAST_RECT) {
        rects.push({ x, y, w, h, encoding, dataBytes: 0 });
        break;
      }
      if (encoding >= 0) expect(x + w <= this.width && y + h <= this.height, `rectangle ${w}x${h}+${x}+${y} inside ${this.width}x${this.height}`).toBe(true);
      let sx: number | undefined;
      let sy: number | undefined;
      switch (encoding) {
        case RAW:
          this.put(x, y, w, h, msg.subarray(o, o + w * h * 4));
          o += w * h * 4;
          break;
        case COPY_RECT: {
          sx = dv.getUint16(o);
          sy = dv.getUint16(o + 2);
          o += 4;
          expect(sx + w <= this.width && sy + h <= this.height, 'CopyRect source inside').toBe(true);
          const tmp = new Uint32Array(w * h);
          for (let r = 0; r < h; r++) tmp.set(this.fb.subarray((sy + r) * this.width + sx, (sy + r) * this.width + sx + w), r * w);
          for (let r = 0; r < h; r++) this.fb.set(tmp.subarray(r * w, (r + 1) * w), (y + r) * this.width + x);
          break;
        }
        case ZLIB: {
          const len = dv.getUint32(o);
          o += 4;
          this.zlib ??= new Inflater();
          const raw = await this.zlib.inflate(msg.subarray(o, o + len));
          o += len;
          expect(raw.length, 'inflated Zlib bytes').toBe(w * h * 4);
          this.put(x, y, w, h, raw);
          break;
        }
        case DESKTOP_SIZE:
          if (w !== this.width || h !== this.height) this.resize(w, h);
          break;
        case EXT_DESKTOP_SIZE: {
          const n = msg[o]!;
          o += 4 + 16 * n;
          if (y === 0 && (w !== this.width || h !== this.height)) this.resize(w, h);
          break;
        }
        default:
          throw new Error(`unexpected encoding ${encoding}`);
      }
      rects.push({ x, y, w, h, encoding, ...(sx === undefined ? {} : { sx, sy }), dataBytes: o - start });
    }
    expect(o, 'the message holds exactly its rectangles').toBe(msg.length);
    return { count, rects };
  }

  private put(x: number, y: number, w: number, h: number, bytes: Uint8Array): void {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) this.fb[(y + r) * this.width + x + c] = dv.getUint32((r * w + c) * 4, true);
  }

  private resize(w: number, h: number): void {
    this.width = w;
    this.height = h;
    this.fb = new Uint32Array(w * h);
  }

  close(): void {
    this.zlib?.close();
  }
}

function expectPicture(screen: Screen, r: Raster, area: Rect = { x: 0, y: 0, w: r.width, h: r.height }): void {
  const want = expectedPicture(r);
  let bad = 0;
  let first = '';
  for (let y = area.y; y < area.y + area.h; y++)
    for (let x = area.x; x < area.x + area.w; x++) {
      const got = screen.fb[y * screen.width + x]!;
      const exp = want[y * r.width + x]!;
      if (got !== exp && bad++ === 0) first = `(${x}, ${y}): got 0x${got.toString(16)}, want 0x${exp.toString(16)}`;
    }
  expect(bad, `mismatching pixels; first ${first}`).toBe(0);
}

// ------------------------------------------------------------------------------------------------
// Running the codec

interface Opts {
  encoding?: PixelEncoding;
  copyRect?: boolean;
  lastRect?: boolean;
  full?: boolean;
  area?: Rect;
  continued?: boolean;
  pf?: RfbPixelFormat;
}

class Slot {
  state: RfbSlotState | undefined;
  readonly screen: Screen;

  constructor(width: number, height: number) {
    this.screen = new Screen(width, height);
  }

  async update(r: Raster, o: Opts = {}): Promise<{ msg: Uint8Array; tiles: number; decoded: Decoded | undefined }> {
    const params: RfbUpdateParams = {
      pf: o.pf ?? RFB_XRGB8888,
      encoding: o.encoding ?? RAW,
      copyRect: o.copyRect ?? false,
      lastRect: o.lastRect ?? false,
      zlibLevel: 1,
      full: o.full ?? false,
      area: o.area ?? { x: 0, y: 0, w: r.width, h: r.height },
      continued: o.continued ?? false,
    };
    const res = await rfbCodec.update(r, this.state, params);
    this.state = res.state;
    if (res.msg.length === 0) return { msg: res.msg, tiles: res.tiles, decoded: undefined };
    const decoded = await this.screen.apply(res.msg);
    return { msg: res.msg, tiles: res.tiles, decoded };
  }

  close(): void {
    if (this.state) rfbCodec.dispose?.(this.state);
    this.screen.close();
  }
}

const pixelRects = (d: Decoded | undefined): Rect[] => (d?.rects ?? []).filter((r) => r.encoding >= 0).map(({ x, y, w, h }) => ({ x, y, w, h }));

// ------------------------------------------------------------------------------------------------

describe('rfbCodec: damage', () => {
  // 150x100: tile columns at 0, 64, 128 (22 wide), rows at 0, 64 (36 high).
  const W = 150;
  const H = 100;

  async function started(paint: Paint = noise(1)): Promise<{ r: Raster; slot: Slot }> {
    const r = raster(XRGB8888, W, H, paint);
    const slot = new Slot(W, H);
    const first = await slot.update(r);
    expect(pixelRects(first.decoded)).toEqual([{ x: 0, y: 0, w: W, h: H }]);
    expect(first.decoded!.count).toBe(1);
    expect(first.tiles).toBe(1);
    expectPicture(slot.screen, r);
    return { r, slot };
  }

  it('the first update is the whole frame, one merged rectangle, whatever area was asked', async () => {
    const r = raster(XRGB8888, W, H, noise(2));
    const slot = new Slot(W, H);
    const u = await slot.update(r, { area: { x: 70, y: 70, w: 5, h: 5 } });
    expect(pixelRects(u.decoded)).toEqual([{ x: 0, y: 0, w: W, h: H }]);
    expectPicture(slot.screen, r);
    slot.close();
  });

  it('nothing changed: an empty message (and no tiles)', async () => {
    const { r, slot } = await started();
    const u = await slot.update(r);
    expect(u.msg.length).toBe(0);
    expect(u.tiles).toBe(0);
    // Also after a copy with the same bytes (a new frame buffer, same pixels).
    expect((await slot.update(copyRaster(r))).msg.length).toBe(0);
    slot.close();
  });

  it('padding bytes after each row are not damage', async () => {
    const { r, slot } = await started();
    for (let y = 0; y < H; y++) r.data[y * r.pitch + W * 4 + 3] = y;
    expect((await slot.update(r)).msg.length).toBe(0);
    slot.close();
  });

  it.each<[string, [number, number][], Rect[]]>([
    ['one pixel in the middle tile of the bottom row', [[70, 70]], [{ x: 64, y: 64, w: 64, h: 36 }]],
    ['one pixel in the last (narrow) column', [[149, 0]], [{ x: 128, y: 0, w: 22, h: 64 }]],
    [
      'two tiles apart',
      [
        [5, 5],
        [140, 90],
      ],
      [
        { x: 0, y: 0, w: 64, h: 64 },
        { x: 128, y: 64, w: 22, h: 36 },
      ],
    ],
    [
      'two tiles side by side (one run)',
      [
        [5, 5],
        [70, 5],
      ],
      [{ x: 0, y: 0, w: 128, h: 64 }],
    ],
    [
      'two tiles above each other (merged rows)',
      [
        [100, 0],
        [100, 99],
      ],
      [{ x: 64, y: 0, w: 64, h: 100 }],
    ],
    [
      'an L of three tiles (two rectangles)',
      [
        [5, 5],
        [70, 5],
        [5, 70],
      ],
      [
        { x: 0, y: 0, w: 128, h: 64 },
        { x: 0, y: 64, w: 64, h: 36 },
      ],
    ],
    [
      'all six tiles (one rectangle)',
      [
        [0, 0],
        [64, 0],
        [128, 0],
        [0, 64],
        [64, 64],
        [128, 64],
      ],
      [{ x: 0, y: 0, w: W, h: H }],
    ],
  ])('only changed tiles go: %s', async (_name, points, rects) => {
    const { r, slot } = await started();
    for (const [x, y] of points) setPixel(r, x, y, [1, 2, 3]);
    const u = await slot.update(r);
    expect(pixelRects(u.decoded)).toEqual(rects);
    expect(u.decoded!.count).toBe(rects.length);
    expectPicture(slot.screen, r);
    // And then nothing.
    expect((await slot.update(r)).msg.length).toBe(0);
    slot.close();
  });

  it('a change of only the alpha / padding bits of XRGB8888 is damage but the picture is unchanged', async () => {
    const { r, slot } = await started();
    const at = 70 * r.pitch + 70 * 4 + 3;
    r.data[at] = r.data[at]! ^ 0xff;
    const u = await slot.update(r);
    expect(pixelRects(u.decoded)).toEqual([{ x: 64, y: 64, w: 64, h: 36 }]);
    expectPicture(slot.screen, r);
    slot.close();
  });

  it('clips to the requested area; the rest of the changed tiles follows with the next request', async () => {
    const { r, slot } = await started();
    const next = raster(XRGB8888, W, H, noise(9));
    r.data.set(next.data);
    const area = { x: 10, y: 20, w: 100, h: 50 };
    const u = await slot.update(r, { area });
    const rects = pixelRects(u.decoded);
    for (const q of rects) expect(q.x >= area.x && q.y >= area.y && q.x + q.w <= area.x + area.w && q.y + q.h <= area.y + area.h, JSON.stringify(q)).toBe(true);
    expect(rects.reduce((n, q) => n + q.w * q.h, 0)).toBe(area.w * area.h);
    expectPicture(slot.screen, r, area);
    // The rest arrives with a request for the whole frame.
    const u2 = await slot.update(r);
    expect(u2.decoded).toBeDefined();
    expectPicture(slot.screen, r);
    expect((await slot.update(r)).msg.length).toBe(0);
    slot.close();
  });

  it('a change outside the requested area is kept for later, not lost', async () => {
    const { r, slot } = await started();
    setPixel(r, 140, 90, [9, 9, 9]);
    expect((await slot.update(r, { area: { x: 0, y: 0, w: 64, h: 64 } })).msg.length).toBe(0);
    const u = await slot.update(r);
    expect(pixelRects(u.decoded)).toEqual([{ x: 128, y: 64, w: 22, h: 36 }]);
    expectPicture(slot.screen, r);
    slot.close();
  });

  it('full: every tile of the area goes, changed or not, clipped to the area', async () => {
    const { r, slot } = await started();
    const u = await slot.update(r, { full: true, area: { x: 70, y: 10, w: 30, h: 30 } });
    expect(pixelRects(u.decoded)).toEqual([{ x: 70, y: 10, w: 30, h: 30 }]);
    const all = await slot.update(r, { full: true });
    expect(pixelRects(all.decoded)).toEqual([{ x: 0, y: 0, w: W, h: H }]);
    expectPicture(slot.screen, r);
    slot.close();
  });

  it('an area outside the frame (or empty) sends nothing, even full', async () => {
    const { r, slot } = await started();
    setPixel(r, 5, 5, [1, 1, 1]);
    expect((await slot.update(r, { area: { x: 150, y: 0, w: 10, h: 10 } })).msg.length).toBe(0);
    expect((await slot.update(r, { full: true, area: { x: 0, y: 100, w: 10, h: 10 } })).msg.length).toBe(0);
    expect((await slot.update(r, { full: true, area: { x: 0, y: 0, w: 0, h: 0 } })).msg.length).toBe(0);
    slot.close();
  });

  it('a change of size, format or pitch sends everything', async () => {
    const { r, slot } = await started();
    // Pitch.
    const wider = raster(XRGB8888, W, H, noise(1), 64);
    let u = await slot.update(wider);
    expect(pixelRects(u.decoded)).toEqual([{ x: 0, y: 0, w: W, h: H }]);
    // Format (same size).
    const r565 = raster(RGB565, W, H, noise(1));
    u = await slot.update(r565);
    expect(pixelRects(u.decoded)).toEqual([{ x: 0, y: 0, w: W, h: H }]);
    expectPicture(slot.screen, r565);
    // Size (smaller: the client's screen is still W x H).
    const small = raster(XRGB8888, 100, 50, noise(3));
    const fresh = new Slot(100, 50);
    fresh.state = slot.state;
    u = await fresh.update(small);
    expect(pixelRects(u.decoded)).toEqual([{ x: 0, y: 0, w: 100, h: 50 }]);
    expectPicture(fresh.screen, small);
    void r;
    fresh.close();
  });
});

describe('rfbCodec: CopyRect', () => {
  // 256x128 = 4x2 tiles. Tiles (0,0), (2,0) and (1,1) hold the same noise; (3,1) and (0,1) one colour each.
  const W = 256;
  const H = 128;
  const paint: Paint = (x, y) => {
    const tx = x >> 6;
    const ty = y >> 6;
    if ((tx === 0 && ty === 0) || (tx === 2 && ty === 0) || (tx === 1 && ty === 1)) return noise(5)(x & 63, y & 63);
    if ((tx === 3 && ty === 1) || (tx === 0 && ty === 1)) return [10, 200, 30];
    return noise(tx * 10 + ty)(x, y);
  };

  function checkCopies(d: Decoded): DecodedRect[] {
    const copies = d.rects.filter((r) => r.encoding === COPY_RECT);
    const firstCopy = d.rects.findIndex((r) => r.encoding === COPY_RECT);
    // Every source was sent (as pixels) before the copy.
    for (const c of copies) {
      const before = d.rects.slice(0, d.rects.indexOf(c)).filter((r) => r.encoding !== COPY_RECT);
      expect(
        before.some((p) => p.x <= c.sx! && p.y <= c.sy! && c.sx! + c.w <= p.x + p.w && c.sy! + c.h <= p.y + p.h),
        `source of ${JSON.stringify(c)}`,
      ).toBe(true);
    }
    // Copies come after every pixel rectangle but the bottom-right tile, which goes last (some
    // clients, gvnccapture, take the update as complete once that corner arrived).
    if (firstCopy >= 0) {
      const body = d.rects.filter((r) => r.encoding !== LAST_RECT);
      const pixelsAfter = body.slice(firstCopy).filter((r) => r.encoding !== COPY_RECT);
      expect(pixelsAfter.length).toBeLessThanOrEqual(1);
      if (pixelsAfter.length === 1) expect(body[body.length - 1]).toBe(pixelsAfter[0]);
      const corner = body.reduce((a, r) => (r.y + r.h > a.y + a.h || (r.y + r.h === a.y + a.h && r.x + r.w >= a.x + a.w) ? r : a));
      expect(body[body.length - 1], 'the bottom-right tile goes last').toBe(corner);
    }
    return copies;
  }

  it('Raw: repeated tiles (one-colour ones too) go as CopyRect from the first', async () => {
    const r = raster(XRGB8888, W, H, paint);
    const slot = new Slot(W, H);
    const u = await slot.update(r, { copyRect: true });
    const copies = checkCopies(u.decoded!);
    expect(copies.map(({ x, y, sx, sy }) => ({ x, y, sx, sy }))).toEqual([
      { x: 128, y: 0, sx: 0, sy: 0 },
      { x: 64, y: 64, sx: 0, sy: 0 },
      { x: 192, y: 64, sx: 0, sy: 64 },
    ]);
    expect(u.tiles).toBe(u.decoded!.rects.length);
    expectPicture(slot.screen, r);
    slot.close();
  });

  it('Zlib: noisy repeated tiles go as CopyRect, one-colour tiles do not', async () => {
    const r = raster(XRGB8888, W, H, paint);
    const slot = new Slot(W, H);
    const u = await slot.update(r, { copyRect: true, encoding: ZLIB });
    const copies = checkCopies(u.decoded!);
    expect(copies.map(({ x, y, sx, sy }) => ({ x, y, sx, sy }))).toEqual([
      { x: 128, y: 0, sx: 0, sy: 0 },
      { x: 64, y: 64, sx: 0, sy: 0 },
    ]);
    expectPicture(slot.screen, r);
    slot.close();
  });

  it('without the client asking for CopyRect: no copies', async () => {
    const r = raster(XRGB8888, W, H, paint);
    const slot = new Slot(W, H);
    const u = await slot.update(r, { copyRect: false });
    expect(u.decoded!.rects.some((q) => q.encoding === COPY_RECT)).toBe(false);
    expectPicture(slot.screen, r);
    slot.close();
  });

  it('in an incremental update: a changed tile that now equals another changed tile is copied', async () => {
    const r = raster(XRGB8888, W, H, noise(77));
    const slot = new Slot(W, H);
    await slot.update(r, { copyRect: true });
    // Tiles (1,0) and (3,0) change to the same new noise.
    for (let y = 0; y < 64; y++)
      for (let x = 0; x < 64; x++) {
        setPixel(r, 64 + x, y, noise(31)(x, y));
        setPixel(r, 192 + x, y, noise(31)(x, y));
      }
    const u = await slot.update(r, { copyRect: true });
    const copies = checkCopies(u.decoded!);
    expect(copies.map(({ x, y, sx, sy }) => ({ x, y, sx, sy }))).toEqual([{ x: 192, y: 0, sx: 64, sy: 0 }]);
    expect(pixelRects(u.decoded).filter((q, i) => u.decoded!.rects[i]!.encoding !== COPY_RECT)).toEqual([{ x: 64, y: 0, w: 64, h: 64 }]);
    expectPicture(slot.screen, r);
    slot.close();
  });

  it('tiles of equal bytes but different sizes are not copied', async () => {
    // 130 wide: the last column is 2 pixels; its content equals the start of tile 0's rows.
    const r = raster(XRGB8888, 130, 64, (x, y) => noise(4)(x % 64, y));
    const slot = new Slot(130, 64);
    const u = await slot.update(r, { copyRect: true });
    const copies = checkCopies(u.decoded!);
    expect(copies.map(({ x, y, w, h, sx, sy }) => ({ x, y, w, h, sx, sy }))).toEqual([{ x: 64, y: 0, w: 64, h: 64, sx: 0, sy: 0 }]);
    expectPicture(slot.screen, r);
    slot.close();
  });
});

describe('rfbCodec: message structure', () => {
  const W = 150;
  const H = 100;

  it('LastRect: count 0xFFFF, the rectangles, then the LastRect terminator', async () => {
    const r = raster(XRGB8888, W, H, noise(3));
    const slot = new Slot(W, H);
    await slot.update(r);
    setPixel(r, 5, 5, [0, 0, 0]);
    setPixel(r, 140, 90, [0, 0, 0]);
    const u = await slot.update(r, { lastRect: true });
    const d = u.decoded!;
    expect(d.count).toBe(0xffff);
    expect(d.rects.map((q) => q.encoding)).toEqual([RAW, RAW, LAST_RECT]);
    expect(d.rects[2]).toMatchObject({ x: 0, y: 0, w: 0, h: 0 });
    expect([...u.msg.subarray(u.msg.length - 12)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x20]);
    expect(u.tiles).toBe(2);
    expectPicture(slot.screen, r);
    slot.close();
  });

  it('LastRect with nothing changed: still an empty message', async () => {
    const r = raster(XRGB8888, W, H, noise(3));
    const slot = new Slot(W, H);
    await slot.update(r, { lastRect: true });
    expect((await slot.update(r, { lastRect: true })).msg.length).toBe(0);
    slot.close();
  });

  it('a continued stream whose state is gone (the encoder restarted) fails instead of starting a new one', async () => {
    const r = raster(XRGB8888, W, H, noise(4));
    const slot = new Slot(W, H);
    await expect(slot.update(r, { encoding: ZLIB, continued: true })).rejects.toThrow(/zlib stream was lost/);
    await expect(slot.update(r, { encoding: ZRLE, continued: true })).rejects.toThrow(/zlib stream was lost/);
    // Raw has no stream; a first Zlib update starts one.
    await slot.update(r, { encoding: RAW, continued: true });
    await slot.update(r, { encoding: ZLIB, continued: false, full: true });
    await slot.update(r, { encoding: ZLIB, continued: true, full: true });
    slot.close();
  });

  it('Zlib: one stream for the whole connection (later updates inflate on the same stream)', async () => {
    const r = raster(XRGB8888, W, H, noise(6));
    const slot = new Slot(W, H);
    const u1 = await slot.update(r, { encoding: ZLIB });
    expect(u1.decoded!.rects.map((q) => q.encoding)).toEqual([ZLIB]);
    const stream = slot.state!.zlib;
    expect(stream).toBeDefined();
    for (let i = 0; i < 5; i++) {
      setPixel(r, (i * 37) % W, (i * 23) % H, [i, 2 * i, 3 * i]);
      setPixel(r, 149 - i, 99 - i, [255, i, 0]);
      await slot.update(r, { encoding: ZLIB });
      expectPicture(slot.screen, r);
    }
    expect(slot.state!.zlib).toBe(stream);
    expect(slot.state!.zrle).toBeUndefined();
    slot.close();
  });

  it('ZRLE: its own stream; the data length field matches the bytes that follow', async () => {
    const r = raster(XRGB8888, W, H, noise(6));
    const slot = new Slot(W, H);
    const res = await rfbCodec.update(r, undefined, { pf: RFB_XRGB8888, encoding: ZRLE, copyRect: false, lastRect: false, zlibLevel: 9, full: false, area: { x: 0, y: 0, w: W, h: H }, continued: false });
    const dv = new DataView(res.msg.buffer, res.msg.byteOffset);
    expect(dv.getUint16(2)).toBe(1);
    expect(dv.getInt32(4 + 8)).toBe(ZRLE);
    expect(20 + dv.getUint32(16)).toBe(res.msg.length);
    expect(res.state.zrle?.level).toBe(9);
    expect(res.state.zlib).toBeUndefined();
    rfbCodec.dispose?.(res.state);
    slot.close();
  });
});

describe('rfbCodec: YUYV with an area of odd x', () => {
  // Pixels 2k and 2k+1 share one 32-bit word Y0 U Y1 V: pixel 1's colour depends on byte 1 (U),
  // which lies left of pixel 1's own bytes (2, 3).
  const W = 128;
  const H = 128;

  it('a changed pixel at the left edge of the area gets its new colour (the shared chroma is read from the new frame)', async () => {
    const r = raster(YUYV, W, H, noise(12));
    const slot = new Slot(W, H);
    await slot.update(r);
    expectPicture(slot.screen, r);
    // Pixel pair (0, 1) of every row of the first tile row: new U (and new Y1).
    for (let y = 0; y < 64; y++) {
      r.data[y * r.pitch + 1] = (r.data[y * r.pitch + 1]! + 90) & 0xff;
      r.data[y * r.pitch + 2] = (r.data[y * r.pitch + 2]! + 50) & 0xff;
    }
    const area = { x: 1, y: 0, w: 127, h: 128 };
    await slot.update(r, { area });
    expectPicture(slot.screen, r, area);
    slot.close();
  });

  it('CopyRect is not used between rectangles whose pixels differ only in a chroma byte outside the compared bytes', async () => {
    // Tiles (0,0) and (0,1) are equal except for the U byte of pixel pair (0, 1) in each row.
    const r = raster(YUYV, W, H, (x, y) => noise(13)(x, y & 63));
    for (let y = 64; y < 128; y++) r.data[y * r.pitch + 1] = (r.data[y * r.pitch + 1]! + 128) & 0xff;
    const slot = new Slot(W, H);
    await slot.update(r);
    expectPicture(slot.screen, r);
    const area = { x: 1, y: 0, w: 63, h: 128 };
    const u = await slot.update(r, { full: true, area, copyRect: true });
    expect(u.decoded).toBeDefined();
    expectPicture(slot.screen, r, area);
    slot.close();
  });
});

describe('mergeTiles', () => {
  const t = (x: number, y: number, w = 64, h = 64): Rect => ({ x, y, w, h });

  it('merges runs along a row, then equal runs of consecutive rows', () => {
    expect(mergeTiles([t(0, 0), t(64, 0), t(128, 0, 22)])).toEqual([t(0, 0, 150)]);
    expect(mergeTiles([t(0, 0), t(64, 0), t(0, 64), t(64, 64)])).toEqual([t(0, 0, 128, 128)]);
    expect(mergeTiles([t(0, 0), t(0, 64), t(0, 128, 64, 10)])).toEqual([t(0, 0, 64, 138)]);
  });

  it('keeps apart what is not adjacent or not the same run', () => {
    expect(mergeTiles([t(0, 0), t(128, 0)])).toEqual([t(0, 0), t(128, 0)]);
    expect(mergeTiles([t(0, 0), t(64, 0), t(0, 64)])).toEqual([t(0, 0, 128), t(0, 64)]);
    expect(mergeTiles([t(0, 0), t(0, 128)])).toEqual([t(0, 0), t(0, 128)]);
    expect(mergeTiles([t(64, 0), t(0, 64), t(64, 64)])).toEqual([t(64, 0), t(0, 64, 128)]);
    expect(mergeTiles([])).toEqual([]);
  });

  it('the merged rectangles cover exactly the tiles (random sets)', () => {
    let seed = 1;
    const rnd = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    for (let round = 0; round < 200; round++) {
      const tiles: Rect[] = [];
      for (let ty = 0; ty < 5; ty++) for (let tx = 0; tx < 6; tx++) if (rnd() < 0.5) tiles.push(t(tx * 64, ty * 64, tx === 5 ? 20 : 64, ty === 4 ? 7 : 64));
      const merged = mergeTiles(tiles);
      const cover = new Map<string, number>();
      for (const m of merged) for (let y = m.y; y < m.y + m.h; y += 64) for (let x = m.x; x < m.x + m.w; x += 64) cover.set(`${x},${y}`, (cover.get(`${x},${y}`) ?? 0) + 1);
      expect([...cover.keys()].sort()).toEqual(tiles.map((q) => `${q.x},${q.y}`).sort());
      expect([...cover.values()].every((n) => n === 1)).toBe(true);
      expect(merged.reduce((n, m) => n + m.w * m.h, 0)).toBe(tiles.reduce((n, q) => n + q.w * q.h, 0));
    }
  });
});

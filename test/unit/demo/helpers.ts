/**
 * Helpers for the demo tests: reading a pixel back as RGB (toRgba), the RGB a colour becomes
 * after a round trip through a format, and a fake Card recording what a guest program does.
 */
import { dumbLayout, type PixelFormat, pixelFormatByFourcc, XEN_FRONT_FORMATS } from '../../../src/abi/fourcc.js';
import type { Card } from '../../../src/front/card.js';
import { packColor, toRgba } from '../../../src/present/pixels.js';
import { createSurface, type Surface } from '../../../src/demo/draw.js';
import type { Rgb } from '../../../src/demo/scene.js';

/** The RGB of pixel (x, y). */
export function rgbAt(s: Surface, x: number, y: number): [number, number, number] {
  const p = toRgba(s, x, y, 1, 1);
  return [p[0]!, p[1]!, p[2]!];
}

/** What `rgb` looks like once packed into `format` and converted back (exact for every format). */
export function shown(format: PixelFormat, rgb: Rgb): [number, number, number] {
  const s = createSurface(2, 1, format);
  const v = packColor(format, rgb[0], rgb[1], rgb[2]);
  const cpp = format.layout.kind === 'yuv422' ? 4 : format.bpp / 8;
  for (let k = 0; k < cpp; k++) s.bytes[k] = (v >>> (8 * k)) & 0xff;
  return rgbAt(s, 0, 0);
}

/** A copy of a surface's bytes in fresh memory. */
export function cloneSurface(s: Surface): Surface {
  return { ...s, bytes: s.bytes.slice() };
}

export interface FakeConnectorSpec {
  readonly width: number;
  readonly height: number;
  readonly uniqueId?: string;
}

export interface FakeBuffer {
  readonly cookie: number;
  readonly width: number;
  readonly height: number;
  readonly format: PixelFormat;
  readonly pitch: number;
  readonly size: number;
  readonly pixels: Uint8Array;
  destroyed: boolean;
  destroy(): Promise<void>;
}

export interface FakeFramebuffer {
  readonly cookie: number;
  readonly buffer: FakeBuffer;
  removed: boolean;
  remove(): Promise<void>;
}

export type FakeCall =
  | { op: 'createDumb'; buffer: FakeBuffer }
  | { op: 'addFramebuffer'; fb: FakeFramebuffer }
  | { op: 'setMode'; connector: number; fb: FakeFramebuffer }
  | { op: 'pageFlip'; connector: number; fb: FakeFramebuffer; snapshot: Uint8Array }
  | { op: 'disable'; connector: number }
  | { op: 'remove'; fb: FakeFramebuffer }
  | { op: 'destroy'; buffer: FakeBuffer };

export interface FakeCardOptions {
  /**
   * How connector `c`'s flip number `n` (0-based) ends: 'done' resolves on the next turn of the
   * event loop (as a frame-done event would), 'hang' never settles, an Error rejects.
   */
  readonly flip?: (connector: number, n: number) => 'done' | 'hang' | Error;
}

/**
 * The part of Card a guest program uses, in memory: buffers are plain (page-rounded) memory,
 * every call is recorded, each flip snapshots the buffer flipped to.
 */
export class FakeCard {
  readonly calls: FakeCall[] = [];
  readonly connectors: { index: number; uniqueId: string; width: number; height: number; formats: readonly PixelFormat[]; status: 'connected' }[];
  readonly buffers: FakeBuffer[] = [];
  readonly fbs: FakeFramebuffer[] = [];
  readonly flipCount: number[];
  closed = false;
  unplugged = false;
  private nextCookie = 1;

  constructor(
    specs: readonly FakeConnectorSpec[],
    private readonly opts: FakeCardOptions = {},
  ) {
    this.connectors = specs.map((s, index) => ({ index, uniqueId: s.uniqueId ?? `fake-${index}`, width: s.width, height: s.height, formats: XEN_FRONT_FORMATS, status: 'connected' }));
    this.flipCount = specs.map(() => 0);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Typed as the real thing for GuestProgramContext. */
  asCard(): Card {
    return this as unknown as Card;
  }

  createDumb(o: { width: number; height: number; format: number | PixelFormat }): Promise<FakeBuffer> {
    const format = typeof o.format === 'number' ? pixelFormatByFourcc(o.format) : o.format;
    if (!format) return Promise.reject(new Error('unknown format'));
    const lay = dumbLayout(o.width, o.height, format.bpp);
    if (!lay.ok) return Promise.reject(new Error(lay.error.message));
    const { pitch, size } = lay.value;
    const buffer: FakeBuffer = {
      cookie: this.nextCookie++,
      width: o.width,
      height: o.height,
      format,
      pitch,
      size,
      pixels: new Uint8Array(Math.ceil(size / 4096) * 4096),
      destroyed: false,
      destroy: () => {
        buffer.destroyed = true;
        this.calls.push({ op: 'destroy', buffer });
        return Promise.resolve();
      },
    };
    this.buffers.push(buffer);
    this.calls.push({ op: 'createDumb', buffer });
    return Promise.resolve(buffer);
  }

  addFramebuffer(buffer: FakeBuffer): Promise<FakeFramebuffer> {
    if (buffer.destroyed) return Promise.reject(new Error('destroyed'));
    const fb: FakeFramebuffer = {
      cookie: this.nextCookie++,
      buffer,
      removed: false,
      remove: () => {
        fb.removed = true;
        this.calls.push({ op: 'remove', fb });
        return Promise.resolve();
      },
    };
    this.fbs.push(fb);
    this.calls.push({ op: 'addFramebuffer', fb });
    return Promise.resolve(fb);
  }

  private index(c: { index: number } | number): number {
    return typeof c === 'number' ? c : c.index;
  }

  setMode(c: { index: number } | number, fb: FakeFramebuffer): Promise<void> {
    this.calls.push({ op: 'setMode', connector: this.index(c), fb });
    return Promise.resolve();
  }

  disable(c: { index: number } | number): Promise<void> {
    this.calls.push({ op: 'disable', connector: this.index(c) });
    return Promise.resolve();
  }

  pageFlip(c: { index: number } | number, fb: FakeFramebuffer): Promise<void> {
    const connector = this.index(c);
    if (fb.removed || fb.buffer.destroyed) return Promise.reject(new Error('flip to a removed framebuffer'));
    const n = this.flipCount[connector]!++;
    this.calls.push({ op: 'pageFlip', connector, fb, snapshot: fb.buffer.pixels.slice(0, fb.buffer.size) });
    const how = this.opts.flip?.(connector, n) ?? 'done';
    if (how === 'hang') return new Promise<void>(() => undefined);
    if (how instanceof Error) return Promise.reject(how);
    return new Promise<void>((resolve) => setImmediate(resolve));
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  /** Resolves once every connector has had at least `n` flips. */
  async waitFlips(n: number): Promise<void> {
    while (this.flipCount.some((c) => c < n)) await new Promise((r) => setTimeout(r, 1));
  }
}

/** The format a fake buffer's surface is in, as a Surface over its pixels. */
export function bufferSurface(b: FakeBuffer, bytes: Uint8Array = b.pixels): Surface {
  return { bytes, offset: 0, pitch: b.pitch, width: b.width, height: b.height, format: b.format };
}

/** Asserts two byte arrays are equal, naming the first difference (fast on megabytes, unlike toEqual). */
export function expectSameBytes(got: Uint8Array, want: Uint8Array, what: string, pitch?: number, cpp?: number): void {
  if (got.length !== want.length) throw new Error(`${what}: ${got.length} bytes, expected ${want.length}`);
  if (Buffer.compare(got, want) === 0) return;
  let i = 0;
  while (got[i] === want[i]) i++;
  const where = pitch && cpp ? ` (pixel ${Math.floor((i % pitch) / cpp)}, ${Math.floor(i / pitch)})` : '';
  throw new Error(`${what}: byte ${i}${where} is ${got[i]}, expected ${want[i]}`);
}

/**
 * A guest program for the VNC interop tests (vnc-clients.test.ts): every connector shows
 * vncPattern(kind, ...) in one pixel format, either as one static frame, or (moving) as frames
 * at `fps` where only the band of the top BAND_ROWS rows changes: a MOVER x MOVER square slides
 * along it, everything below the band stays the pattern.
 *
 * Arguments (`ctx.args`): { format?: 'XRGB8888' | any pixelFormatByName name (default XRGB8888),
 * kind?: PatternKind (default 'tiles'), moving?: boolean, fps?: number (default 30) }.
 *
 * The pattern kinds:
 * - 'tiles': 64x64 tiles (the server's and ZRLE's tile size) cycling through five contents that
 *   push a ZRLE encoder into each of its subencodings: noise (raw), a few colours changing every
 *   pixel (packed palette), short runs of a few dozen colours (palette RLE), runs of hundreds of
 *   colours (plain RLE) and one colour (solid). Every tile's colours depend on its position, so no
 *   two tiles of more than one colour are equal: nothing is sent as CopyRect.
 * - 'repeated': the same, but a tile's content depends only on its kind, so most tiles of more
 *   than one colour repeat an earlier one: a server may send them as CopyRect.
 */
import { type PixelFormat, pixelFormatByName } from '../../../src/abi/fourcc.js';
import { packColor, storePixel } from '../../../src/present/pixels.js';
import type { GuestProgramContext } from '../../../src/run/guest-runner.js';

export type PatternKind = 'tiles' | 'repeated';

export interface VncPatternArgs {
  readonly format?: string;
  readonly kind?: PatternKind;
  readonly moving?: boolean;
  readonly fps?: number;
}

/** Rows at the top where the moving square goes (a whole row of server tiles). */
export const BAND_ROWS = 64;
/** The moving square's size, and its top row. */
export const MOVER = 40;
export const MOVER_Y = 12;

/** A 32-bit integer hash (deterministic, well mixed). */
function hash(a: number, b: number, c: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35) ^ Math.imul(c + 0x1b873593, 0x27d4eb2f);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  h = Math.imul(h, 0x297a2d39);
  h ^= h >>> 15;
  return h >>> 0;
}

const rgbOf = (h: number): [number, number, number] => [h & 0xff, (h >>> 8) & 0xff, (h >>> 16) & 0xff];

/** The colour of pixel (x, y) of a pattern of `kind`, as 8-bit RGB (any size: it depends on the position only). */
export function patternRgb(kind: PatternKind, x: number, y: number): [number, number, number] {
  const tx = x >> 6;
  const ty = y >> 6;
  const lx = x & 63;
  const ly = y & 63;
  const type = (tx + 2 * ty) % 5;
  const seed = kind === 'repeated' ? type + 1 : tx * 131 + ty * 977 + 1;
  switch (type) {
    case 0: // noise: raw
      return kind === 'repeated' ? rgbOf(hash(lx, ly, seed)) : rgbOf(hash(x, y, seed));
    case 1: {
      // 2..16 colours, the index changing at nearly every pixel: packed palette
      const n = 2 + (seed % 15);
      return rgbOf(hash(seed, (lx * 3 + ly * 5) % n, 1));
    }
    case 2: {
      // runs of 3..7 pixels over 40 colours: palette RLE
      const run = 3 + (ly % 5);
      return rgbOf(hash(seed, Math.floor((ly * 64 + lx) / run) % 40, 2));
    }
    case 3: // runs of 7 pixels, each its own colour (hundreds per tile): plain RLE
      return rgbOf(hash(seed, Math.floor((ly * 64 + lx) / 7), 3));
    default: // one colour: solid
      return rgbOf(hash(seed, 0, 4));
  }
}

/** The pattern as framebuffer bytes in `format` (rows of `pitch` bytes; padding bytes 0). */
export function vncPattern(kind: PatternKind, format: PixelFormat, width: number, height: number, pitch: number): Uint8Array {
  const out = new Uint8Array(pitch * height);
  const cpp = format.bpp / 8;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = patternRgb(kind, x, y);
      storePixel(out, y * pitch + x * cpp, packColor(format, r, g, b), cpp);
    }
  }
  return out;
}

/** The moving square's left column in frame `frame`. */
export function moverX(frame: number, width: number): number {
  const span = Math.max(1, width - MOVER);
  return (frame * 7) % span;
}

function formatOf(name: string | undefined): PixelFormat {
  const f = pixelFormatByName(name ?? 'XRGB8888');
  if (!f) throw new Error(`vnc-pattern: unknown pixel format ${String(name)}`);
  return f;
}

function waitAbort(signal: AbortSignal): Promise<void> {
  return new Promise<void>((r) => (signal.aborted ? r() : signal.addEventListener('abort', () => r(), { once: true })));
}

export default async function main({ card, signal, args }: GuestProgramContext): Promise<void> {
  const a = (args ?? {}) as VncPatternArgs;
  const format = formatOf(a.format);
  const kind = a.kind ?? 'tiles';
  const fps = a.fps ?? 30;
  const stopped = waitAbort(signal);
  await Promise.all(
    card.connectors.map(async (c) => {
      const count = a.moving ? 2 : 1;
      const bufs = [];
      const fbs = [];
      let pattern: Uint8Array | undefined;
      for (let i = 0; i < count; i++) {
        const buf = await card.createDumb({ width: c.width, height: c.height, format });
        pattern ??= vncPattern(kind, format, c.width, c.height, buf.pitch);
        buf.pixels.set(pattern);
        bufs.push(buf);
        fbs.push(await card.addFramebuffer(buf));
      }
      await card.setMode(c, fbs[0]!);
      await card.pageFlip(c, fbs[0]!);
      if (a.moving && pattern) {
        const cpp = format.bpp / 8;
        const pitch = bufs[0]!.pitch;
        const band = pattern.subarray(0, Math.min(BAND_ROWS, c.height) * pitch);
        const start = performance.now();
        for (let frame = 1; !signal.aborted; frame++) {
          const due = start + (frame * 1000) / fps;
          const wait = due - performance.now();
          if (wait > 0) await Promise.race([new Promise((r) => setTimeout(r, wait)), stopped]);
          if (signal.aborted) break;
          const k = frame % 2;
          const px = bufs[k]!.pixels;
          px.set(band);
          const x0 = moverX(frame, c.width);
          const colour = packColor(format, (frame * 40) & 0xff, 255 - ((frame * 40) & 0xff), 128);
          for (let y = MOVER_Y; y < Math.min(MOVER_Y + MOVER, c.height); y++) {
            for (let x = x0; x < Math.min(x0 + MOVER, c.width); x++) storePixel(px, y * pitch + x * cpp, colour, cpp);
          }
          await Promise.race([card.pageFlip(c, fbs[k]!), stopped]);
        }
      } else {
        await stopped;
      }
      await card.disable(c).catch(() => undefined);
      for (const fb of fbs) await fb.remove().catch(() => undefined);
      for (const b of bufs) await b.destroy().catch(() => undefined);
    }),
  );
}

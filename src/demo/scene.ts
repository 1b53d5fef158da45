/**
 * What the demo draws, as pure functions of a surface and a frame: the static colour test card
 * (the background) and each frame's moving overlay.
 *
 * The test card, top to bottom: eight colour bars (white, yellow, cyan, green, magenta, red,
 * blue, black: every pure primary and secondary plus both extremes), a 16-step grey ramp
 * (0, 17, ..., 255), and an information band (dark grey) with the format's name, code, depth
 * and channels and the connector's index, unique id and resolution. Each frame adds a bouncing filled rectangle, a bouncing
 * filled circle and a frame counter, at positions that are a pure function of the tick (the
 * 60 Hz time slot), so a skipped tick moves them on as if it had been drawn.
 *
 * Incremental drawing: a buffer holds the background plus the overlay last drawn into it, so
 * `renderFrame` first copies the background back over the rectangles that overlay covered (as
 * returned when it was drawn) and then draws the new overlay, touching only those pixels.
 */
import type { PixelFormat } from '../abi/fourcc.js';
import { packColor } from '../present/pixels.js';
import { createSurface, Painter, type Rect, type Surface } from './draw.js';
import { CELL_HEIGHT } from './font.js';

export type Rgb = readonly [r: number, g: number, b: number];

/** The colour bars, left to right (SMPTE order: white, then by falling luma). */
export const BAR_COLORS: readonly { readonly name: string; readonly rgb: Rgb }[] = [
  { name: 'white', rgb: [255, 255, 255] },
  { name: 'yellow', rgb: [255, 255, 0] },
  { name: 'cyan', rgb: [0, 255, 255] },
  { name: 'green', rgb: [0, 255, 0] },
  { name: 'magenta', rgb: [255, 0, 255] },
  { name: 'red', rgb: [255, 0, 0] },
  { name: 'blue', rgb: [0, 0, 255] },
  { name: 'black', rgb: [0, 0, 0] },
];

/** Steps of the grey ramp: step i is grey i * 255 / (RAMP_STEPS - 1). */
export const RAMP_STEPS = 16;

export const COLORS = {
  info: [32, 32, 32] as Rgb,
  text: [255, 255, 255] as Rgb,
  textBox: [0, 0, 0] as Rgb,
  rect: [255, 136, 0] as Rgb,
  circle: [64, 160, 255] as Rgb,
} as const;

export interface SceneOptions {
  readonly width: number;
  readonly height: number;
  readonly format: PixelFormat;
  /** The connector line of the information band (e.g. its index, unique id and resolution). */
  readonly label?: string;
}

/** Where everything goes on a surface of one size and format, and the colours as pixel values. */
export interface Scene {
  readonly width: number;
  readonly height: number;
  readonly format: PixelFormat;
  /** Bars: rows [0, barsBottom); bar i: columns [barEdges[i], barEdges[i + 1]). */
  readonly barsBottom: number;
  readonly barEdges: readonly number[];
  /** Ramp: rows [barsBottom, rampBottom); step i: columns [rampEdges[i], rampEdges[i + 1]). */
  readonly rampBottom: number;
  readonly rampEdges: readonly number[];
  /** Scales of the large (title, counter) and small (label) text, and the text margin. */
  readonly bigScale: number;
  readonly smallScale: number;
  readonly margin: number;
  /** The format's name (large), then its code, depth and channels (small). */
  readonly title: string;
  readonly titleAt: readonly [number, number];
  readonly subtitle: string;
  readonly subtitleAt: readonly [number, number];
  readonly label: string;
  readonly labelAt: readonly [number, number];
  readonly counterAt: readonly [number, number];
  /** The bouncing square's side and the circle's radius. */
  readonly rectSize: number;
  readonly radius: number;
  /** Pixel values of COLORS, the bars and the ramp steps in this format. */
  readonly pixel: { readonly [K in keyof typeof COLORS]: number };
  readonly barPixels: readonly number[];
  readonly rampPixels: readonly number[];
}

/** One frame's numbers. */
export interface FrameInfo {
  /** The 60 Hz time slot (positions are a function of it). */
  readonly tick: number;
  /** Frames drawn before this one on this connector. */
  readonly frame: number;
  /** Ticks skipped so far (late frames). */
  readonly skipped: number;
}

/** A channel-layout summary for the title, e.g. "R5 G6 B5" or "YUV 4:2:2 BT.601". */
export function describeFormat(f: PixelFormat): string {
  const l = f.layout;
  if (l.kind === 'yuv422') return 'YUV 4:2:2 BT.601';
  let s = `R${l.r.bits} G${l.g.bits} B${l.b.bits}`;
  if (l.a) s += ` A${l.a.bits}`;
  if (l.x) s += ` X${l.x.bits}`;
  return s;
}

const even = (v: number): number => v - (v & 1);
const edges = (n: number, width: number): number[] => Array.from({ length: n + 1 }, (_, i) => even(Math.floor((i * width) / n)));

/** Lays out the scene for one surface size and format. */
export function createScene(opts: SceneOptions): Scene {
  const { width, height, format } = opts;
  const pack = (c: Rgb): number => packColor(format, c[0], c[1], c[2]);
  // Text scales grow with the screen; even (whole YUYV pairs) unless 1.
  const fit = Math.min(height / 150, width / 180, 8);
  const bigScale = fit >= 2 ? 2 * Math.floor(fit / 2) : 1;
  const smallScale = bigScale >= 4 ? 2 * Math.floor(bigScale / 4) : 1;
  const margin = 4 * bigScale;
  const barsBottom = Math.floor(height * 0.55);
  const rampBottom = Math.max(barsBottom, Math.floor(height * 0.72));
  const titleAt = [margin, rampBottom + margin] as const;
  const subtitleAt = [margin, titleAt[1] + CELL_HEIGHT * bigScale + margin / 2] as const;
  const labelAt = [margin, subtitleAt[1] + (CELL_HEIGHT + 2) * smallScale] as const;
  const counterAt = [margin, labelAt[1] + CELL_HEIGHT * smallScale + margin] as const;
  const short = Math.min(width, height);
  return {
    width,
    height,
    format,
    barsBottom,
    barEdges: edges(BAR_COLORS.length, width).map((x, i) => (i === BAR_COLORS.length ? width : x)),
    rampBottom,
    rampEdges: edges(RAMP_STEPS, width).map((x, i) => (i === RAMP_STEPS ? width : x)),
    bigScale,
    smallScale,
    margin,
    title: format.name,
    titleAt,
    subtitle: `${format.code}  ${format.bpp} BPP  ${describeFormat(format)}`,
    subtitleAt,
    label: opts.label ?? `${width}x${height}`,
    labelAt,
    counterAt,
    rectSize: Math.max(2, even(Math.round(short / 6))),
    radius: Math.max(1, Math.round(short / 10)),
    pixel: {
      info: pack(COLORS.info),
      text: pack(COLORS.text),
      textBox: pack(COLORS.textBox),
      rect: pack(COLORS.rect),
      circle: pack(COLORS.circle),
    },
    barPixels: BAR_COLORS.map((b) => pack(b.rgb)),
    rampPixels: Array.from({ length: RAMP_STEPS }, (_, i) => {
      const v = Math.round((i * 255) / (RAMP_STEPS - 1));
      return pack([v, v, v]);
    }),
  };
}

const painterOf = (t: Surface | Painter): Painter => (t instanceof Painter ? t : new Painter(t));

/** Draws the static test card (the whole surface). */
export function drawTestCard(target: Surface | Painter, scene: Scene): void {
  const p = painterOf(target);
  const { width, height } = scene;
  scene.barPixels.forEach((v, i) => p.fillRect(scene.barEdges[i]!, 0, scene.barEdges[i + 1]! - scene.barEdges[i]!, scene.barsBottom, v));
  scene.rampPixels.forEach((v, i) => p.fillRect(scene.rampEdges[i]!, scene.barsBottom, scene.rampEdges[i + 1]! - scene.rampEdges[i]!, scene.rampBottom - scene.barsBottom, v));
  p.fillRect(0, scene.rampBottom, width, height - scene.rampBottom, scene.pixel.info);
  p.drawText(scene.titleAt[0], scene.titleAt[1], scene.title, { scale: scene.bigScale, fg: scene.pixel.text });
  p.drawText(scene.subtitleAt[0], scene.subtitleAt[1], scene.subtitle, { scale: scene.smallScale, fg: scene.pixel.text });
  p.drawText(scene.labelAt[0], scene.labelAt[1], scene.label, { scale: scene.smallScale, fg: scene.pixel.text });
}

/** A triangle wave: p bouncing between 0 and range. */
export function bounce(p: number, range: number): number {
  if (range <= 0) return 0;
  const m = ((p % (2 * range)) + 2 * range) % (2 * range);
  return m <= range ? m : 2 * range - m;
}

export interface Shapes {
  readonly rect: Rect;
  readonly circle: { readonly cx: number; readonly cy: number; readonly r: number };
}

/** The moving shapes' positions at `tick`. */
export function shapesAt(scene: Scene, tick: number): Shapes {
  const { width: w, height: h, rectSize: s, radius: r } = scene;
  const speed = (len: number, per: number): number => Math.max(1, Math.round(len / per));
  const rect = {
    x: bounce(Math.round(w * 0.1) + tick * speed(w, 180), w - s),
    y: bounce(Math.round(h * 0.2) + tick * speed(h, 150), h - s),
    w: s,
    h: s,
  };
  const d = 2 * r + 1;
  const circle = {
    cx: r + bounce(Math.round(w * 0.6) + tick * speed(w, 130), w - d),
    cy: r + bounce(Math.round(h * 0.1) + tick * speed(h, 110), h - d),
    r,
  };
  return { rect, circle };
}

/** The frame counter line. */
export function counterText(info: FrameInfo): string {
  return `FRAME ${String(info.frame).padStart(6, '0')}  SKIPPED ${String(info.skipped).padStart(4, '0')}`;
}

/**
 * Draws frame `info` into `target`, which holds `background` plus an earlier overlay that
 * covered `restore` (what this returned when that overlay was drawn): copies the background
 * back there, then draws the shapes and the counter. Returns the rectangles drawn, to pass as
 * `restore` the next time this target is drawn into. Touches no other pixel.
 */
export function renderFrame(target: Surface | Painter, background: Surface, restore: readonly Rect[], scene: Scene, info: FrameInfo): Rect[] {
  const p = painterOf(target);
  for (const r of restore) p.copyFrom(background, r);
  const { rect, circle } = shapesAt(scene, info.tick);
  const drawn: (Rect | undefined)[] = [
    p.fillRect(rect.x, rect.y, rect.w, rect.h, scene.pixel.rect),
    p.fillCircle(circle.cx, circle.cy, circle.r, scene.pixel.circle),
    p.drawText(scene.counterAt[0], scene.counterAt[1], counterText(info), { scale: scene.bigScale, fg: scene.pixel.text, bg: scene.pixel.textBox }),
  ];
  return drawn.filter((r): r is Rect => r !== undefined);
}

/**
 * A scene drawn into several buffers (double buffering): the background once, in plain memory,
 * and per buffer the rectangles its last overlay covered.
 */
export class SceneRenderer {
  readonly background: Surface;
  private readonly targets: { painter: Painter; drawn: Rect[] }[] = [];

  constructor(readonly scene: Scene) {
    this.background = createSurface(scene.width, scene.height, scene.format);
    drawTestCard(this.background, scene);
  }

  /** Adds a buffer of the scene's size, format and pitch; fills it with the background. Returns its index. */
  attach(surface: Surface): number {
    const bg = this.background;
    if (surface.width !== bg.width || surface.height !== bg.height || surface.pitch !== bg.pitch || surface.format.fourcc !== bg.format.fourcc) {
      throw new RangeError(`attach: a ${surface.width}x${surface.height} ${surface.format.name} surface (pitch ${surface.pitch}) does not match the scene's ${bg.width}x${bg.height} ${bg.format.name} (pitch ${bg.pitch})`);
    }
    const size = bg.pitch * bg.height;
    surface.bytes.set(bg.bytes.subarray(bg.offset, bg.offset + size), surface.offset);
    this.targets.push({ painter: new Painter(surface), drawn: [] });
    return this.targets.length - 1;
  }

  /** Draws frame `info` into buffer `index`; returns the rectangles written (restored ones included). */
  render(index: number, info: FrameInfo): Rect[] {
    const t = this.targets[index];
    if (!t) throw new RangeError(`no buffer ${index}`);
    const restored = t.drawn;
    t.drawn = renderFrame(t.painter, this.background, restored, this.scene, info);
    return [...restored, ...t.drawn];
  }
}

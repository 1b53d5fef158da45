/**
 * The demo's scene in every demo format: the test card's colours at known points (the eight
 * bars, the grey ramp, the title text and the information band), each frame's shapes and
 * counter where shapesAt puts them, and incremental drawing: a double-buffered SceneRenderer
 * (restore what the buffer's last overlay covered, draw the new one) gives byte for byte the
 * frame drawn from scratch on the background (no trails), over consecutive and skipped ticks,
 * at ordinary, odd and tiny sizes; renderFrame writes only inside the rectangles it reports.
 */
import { describe, expect, it } from 'vitest';
import type { PixelFormat } from '../../../src/abi/fourcc.js';
import { DEMO_FORMATS } from '../../../src/demo/demo-program.js';
import { createSurface, type Rect, type Surface } from '../../../src/demo/draw.js';
import { CELL_WIDTH, GLYPH_HEIGHT, GLYPH_WIDTH, glyphPixel } from '../../../src/demo/font.js';
import {
  BAR_COLORS, bounce, COLORS, counterText, createScene, drawTestCard, type FrameInfo, RAMP_STEPS, renderFrame, type Rgb, type Scene,
  SceneRenderer, shapesAt,
} from '../../../src/demo/scene.js';
import { cloneSurface, expectSameBytes, rgbAt, shown } from './helpers.js';

const isYuv = (f: PixelFormat): boolean => f.layout.kind === 'yuv422';

/** How far a format may move an 8-bit channel (its narrowest channel; YUYV: BT.601 rounding). */
function tolerance(f: PixelFormat): number {
  const l = f.layout;
  if (l.kind === 'yuv422') return 4;
  return (1 << (8 - Math.min(l.r.bits, l.g.bits, l.b.bits))) - 1;
}

function expectColour(s: Surface, x: number, y: number, rgb: Rgb, what: string): void {
  const got = rgbAt(s, x, y);
  expect(got, `${what} at (${x}, ${y})`).toEqual(shown(s.format, rgb));
  const tol = tolerance(s.format);
  for (let k = 0; k < 3; k++) expect(Math.abs(got[k]! - rgb[k]!), `${what} at (${x}, ${y}) channel ${k}: ${got.join(',')}`).toBeLessThanOrEqual(tol);
}

/** A pixel of `text` drawn at (x, y) with `scale` that is set (font pixel (fx, fy) of character i). */
function textPixel(at: readonly [number, number], text: string, scale: number): [number, number] {
  for (let i = 0; i < text.length; i++) {
    for (let fy = 0; fy < GLYPH_HEIGHT; fy++) {
      for (let fx = 0; fx < GLYPH_WIDTH; fx++) {
        if (glyphPixel(text[i]!, fx, fy)) return [at[0] + (i * CELL_WIDTH + fx) * scale, at[1] + fy * scale];
      }
    }
  }
  throw new Error(`no pixel in ${text}`);
}

/** The frame drawn from scratch: the background with one overlay. */
function fromScratch(bg: Surface, scene: Scene, info: FrameInfo): Surface {
  const s = cloneSurface(bg);
  renderFrame(s, bg, [], scene, info);
  return s;
}

const frame = (tick: number, frameNo = tick, skipped = 0): FrameInfo => ({ tick, frame: frameNo, skipped });

describe.each(DEMO_FORMATS.map((f) => [f.name, f] as const))('%s', (_name, format) => {
  it.each([[320, 240], [257, 131], [800, 600]])('test card at %ix%i: bars, ramp, title and band at known points', (width, height) => {
    const scene = createScene({ width, height, format, label: 'CONNECTOR 0' });
    const s = createSurface(width, height, format);
    drawTestCard(s, scene);
    const barY = Math.floor(scene.barsBottom / 2);
    BAR_COLORS.forEach((bar, i) => {
      const x = Math.floor((scene.barEdges[i]! + scene.barEdges[i + 1]!) / 2);
      expectColour(s, x, barY, bar.rgb, `${bar.name} bar`);
    });
    // The bars are in order and cover the width.
    expect(scene.barEdges[0]).toBe(0);
    expect(scene.barEdges[BAR_COLORS.length]).toBe(width);
    const rampY = Math.floor((scene.barsBottom + scene.rampBottom) / 2);
    for (let i = 0; i < RAMP_STEPS; i++) {
      const v = Math.round((i * 255) / (RAMP_STEPS - 1));
      const x = Math.floor((scene.rampEdges[i]! + scene.rampEdges[i + 1]!) / 2);
      expectColour(s, x, rampY, [v, v, v], `ramp step ${i}`);
    }
    expect(scene.title).toBe(format.name);
    expectColour(s, ...textPixel(scene.titleAt, scene.title, scene.bigScale), COLORS.text, 'title text');
    expectColour(s, ...textPixel(scene.labelAt, scene.label, scene.smallScale), COLORS.text, 'label text');
    expectColour(s, 1, height - 2, COLORS.info, 'information band');
    expectColour(s, 0, 0, [255, 255, 255], 'top-left corner');
    expectColour(s, width - 1, 0, [0, 0, 0], 'top-right corner');
  });

  it('a frame: the square, the circle and the counter where shapesAt and counterAt say', () => {
    const scene = createScene({ width: 320, height: 240, format });
    const r = new SceneRenderer(scene);
    const s = createSurface(320, 240, format);
    r.attach(s);
    for (const tick of [0, 1, 17, 250]) {
      const info = frame(tick, tick, 3);
      r.render(0, info);
      const { rect, circle } = shapesAt(scene, tick);
      const overlapsCounter = (x: number, y: number): boolean => y >= scene.counterAt[1] - scene.bigScale && y < scene.counterAt[1] + (GLYPH_HEIGHT + 1) * scene.bigScale;
      // The counter is drawn last (on top), so sample shapes away from it.
      const rc: [number, number] = [rect.x + 1, rect.y + 1];
      if (!overlapsCounter(...rc)) expectColour(s, ...rc, COLORS.rect, `square at tick ${tick}`);
      const d = Math.hypot(rc[0] - circle.cx, rc[1] - circle.cy);
      const cc: [number, number] = [circle.cx, circle.cy];
      if (!overlapsCounter(...cc) && d > circle.r + 2) expectColour(s, ...cc, COLORS.circle, `circle at tick ${tick}`);
      const text = counterText(info);
      expect(text).toBe(`FRAME ${String(tick).padStart(6, '0')}  SKIPPED 0003`);
      expectColour(s, ...textPixel(scene.counterAt, text, scene.bigScale), COLORS.text, 'counter text');
      expectColour(s, scene.counterAt[0] - 1, scene.counterAt[1] - 1, COLORS.textBox, 'counter box');
    }
  });

  it.each([[320, 240], [201, 97], [1, 1], [3, 3], [8, 5]])('double buffering at %ix%i: each buffer equals the frame drawn from scratch (no trails), skipped ticks included', (width, height) => {
    const scene = createScene({ width, height, format });
    const r = new SceneRenderer(scene);
    const bufs = [createSurface(width, height, format), createSurface(width, height, format)];
    for (const b of bufs) r.attach(b);
    expectSameBytes(bufs[0]!.bytes, r.background.bytes, 'attached buffer');
    const ticks = [0, 1, 2, 3, 4, 9, 10, 11, 40, 41, 42, 43, 200, 201, 202];
    ticks.forEach((tick, n) => {
      const info = frame(tick, n, tick - n);
      const b = bufs[n % 2]!;
      r.render(n % 2, info);
      expectSameBytes(b.bytes, fromScratch(r.background, scene, info).bytes, `frame ${n} (tick ${tick})`, b.pitch, isYuv(format) ? 2 : format.bpp / 8);
    });
  });

  it('no trail: where the square was two frames ago (in this buffer) the background is back', () => {
    const scene = createScene({ width: 320, height: 240, format });
    const r = new SceneRenderer(scene);
    const bufs = [createSurface(320, 240, format), createSurface(320, 240, format)];
    for (const b of bufs) r.attach(b);
    r.render(0, frame(0));
    const before = shapesAt(scene, 0).rect;
    const p: [number, number] = [before.x + 1, before.y + 1];
    expectColour(bufs[0]!, ...p, COLORS.rect, 'square');
    r.render(1, frame(1));
    r.render(0, frame(30));
    const now = shapesAt(scene, 30);
    expect(p[0] >= now.rect.x && p[0] < now.rect.x + now.rect.w && p[1] >= now.rect.y && p[1] < now.rect.y + now.rect.h).toBe(false);
    expect(rgbAt(bufs[0]!, ...p)).toEqual(rgbAt(r.background, ...p));
    expect(rgbAt(bufs[0]!, ...p)).not.toEqual(shown(format, COLORS.rect));
  });

  it('renderFrame writes only inside the rectangles it restores and draws', () => {
    const scene = createScene({ width: 160, height: 120, format });
    const bg = createSurface(160, 120, format);
    drawTestCard(bg, scene);
    const s = cloneSurface(bg);
    const first = renderFrame(s, bg, [], scene, frame(5));
    const before = s.bytes.slice();
    const second = renderFrame(s, bg, first, scene, frame(6));
    const inside = (x: number, y: number): boolean =>
      [...first, ...second].some((q: Rect) => x >= q.x && x < q.x + q.w && y >= q.y && y < q.y + q.h);
    const cpp = isYuv(format) ? 2 : format.bpp / 8;
    for (let y = 0; y < 120; y++) {
      for (let x = 0; x < 160; x++) {
        if (inside(x, y)) continue;
        const o = y * s.pitch + x * cpp;
        for (let k = o; k < o + cpp; k++) if (s.bytes[k] !== before[k]) expect.fail(`(${x}, ${y}) changed outside the reported rectangles`);
      }
    }
    if (isYuv(format)) for (const q of [...first, ...second]) expect(q.x % 2).toBe(0);
  });
});

describe('scene geometry', () => {
  it('bounce is a triangle wave within [0, range]', () => {
    expect([0, 1, 5, 6, 10, 11, -1].map((p) => bounce(p, 5))).toEqual([0, 1, 5, 4, 0, 1, 1]);
    expect(bounce(17, 0)).toBe(0);
  });

  it('the shapes stay on screen at 1920x1080 and move every tick', () => {
    const scene = createScene({ width: 1920, height: 1080, format: DEMO_FORMATS[0]! });
    let prev = shapesAt(scene, 0);
    for (let t = 1; t < 2000; t++) {
      const { rect, circle } = shapesAt(scene, t);
      expect(rect.x >= 0 && rect.y >= 0 && rect.x + rect.w <= 1920 && rect.y + rect.h <= 1080).toBe(true);
      expect(circle.cx - circle.r >= 0 && circle.cy - circle.r >= 0 && circle.cx + circle.r < 1920 && circle.cy + circle.r < 1080).toBe(true);
      expect(rect.x !== prev.rect.x || rect.y !== prev.rect.y).toBe(true);
      prev = { rect, circle };
    }
  });

  it('1920x1080 XRGB8888: three double-buffered frames equal the frames drawn from scratch', () => {
    const format = DEMO_FORMATS[0]!;
    const scene = createScene({ width: 1920, height: 1080, format, label: 'CONNECTOR 0  x  1920x1080' });
    const r = new SceneRenderer(scene);
    const bufs = [createSurface(1920, 1080, format), createSurface(1920, 1080, format)];
    for (const b of bufs) r.attach(b);
    for (const tick of [0, 1, 2, 3]) {
      r.render(tick % 2, frame(tick));
      expectSameBytes(bufs[tick % 2]!.bytes, fromScratch(r.background, scene, frame(tick)).bytes, `tick ${tick}`, bufs[0]!.pitch, 4);
    }
  });
});

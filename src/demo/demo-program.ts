/**
 * The built-in demo guest program: on every connector of the card, a colour test card in a
 * pixel format of its own (connector i: DEMO_FORMATS[i % 9]) with a bouncing square and circle
 * and a frame counter, double-buffered and paced at 60 Hz, all connectors at once.
 *
 * Per connector: two dumb buffers and their framebuffers; both buffers start as the test card
 * (drawn once in plain memory); frame 0 is set as the mode and flipped, then each frame redraws
 * in the back buffer only what changed since that buffer was last shown (scene.ts) and flips to
 * it. Frame k is due at start + k / fps; a frame that is late by a whole period or more skips
 * ahead to the current slot (the skipped slots are counted and shown). On abort the program
 * stops at once (an in-flight flip is not waited for beyond a short grace), disables the
 * connectors, removes the framebuffers and destroys the buffers; the runner closes the card.
 *
 * Arguments (`ctx.args`, optional): `{ fps?: number; frames?: number }`: the frame rate (default
 * 60) and a number of frames after which each connector stops by itself (default: none).
 */
import { DRM_FORMAT_RGB565, DRM_FORMAT_XRGB8888, type PixelFormat, pixelFormatByFourcc, XEN_FRONT_FORMATS } from '../abi/fourcc.js';
import type { Card, Connector, DisplayBuffer, Framebuffer } from '../front/card.js';
import type { Surface } from './draw.js';
import type { GuestProgramContext } from './guest-program.js';
import { createScene, type FrameInfo, SceneRenderer } from './scene.js';


/** The demo's formats in connector order: XRGB8888, RGB565, then Linux xen-front's others. */
export const DEMO_FORMATS: readonly PixelFormat[] = [
  ...[DRM_FORMAT_XRGB8888, DRM_FORMAT_RGB565].map((fourcc) => pixelFormatByFourcc(fourcc)!),
  ...XEN_FRONT_FORMATS.filter((f) => f.fourcc !== DRM_FORMAT_XRGB8888 && f.fourcc !== DRM_FORMAT_RGB565),
];

/** The format connector `index` draws in: DEMO_FORMATS[index % DEMO_FORMATS.length]. */
export function formatForConnector(index: number): PixelFormat {
  const n = DEMO_FORMATS.length;
  return DEMO_FORMATS[((index % n) + n) % n]!;
}

export interface DemoOptions {
  /** Frames per second (default 60). */
  readonly fps: number;
  /** Each connector stops after this many frames (default: runs until aborted). */
  readonly frames: number;
}

/** Reads `ctx.args` (anything); unknown or invalid fields are ignored. */
export function parseDemoArgs(args: unknown): DemoOptions {
  const a = typeof args === 'object' && args !== null ? (args as Record<string, unknown>) : {};
  const fps = typeof a.fps === 'number' && Number.isFinite(a.fps) && a.fps > 0 && a.fps <= 1000 ? a.fps : 60;
  const frames = typeof a.frames === 'number' && Number.isInteger(a.frames) && a.frames >= 1 ? a.frames : Infinity;
  return { fps, frames };
}

/** What one connector did. */
export interface ConnectorReport {
  readonly index: number;
  readonly uniqueId: string;
  readonly width: number;
  readonly height: number;
  readonly format: string;
  /** Frames flipped (and completed). */
  frames: number;
  /** Ticks skipped because a frame was late. */
  skipped: number;
  /** The last frame drawn (and flipped, unless stopped during that flip). */
  last: FrameInfo | undefined;
  /** Time spent drawing frames (JS, after setup), in ms: total and worst frame. */
  drawMs: number;
  maxDrawMs: number;
  /** Why it stopped before being aborted, if it did. */
  error?: unknown;
}

/** How long cleanup waits for a flip in flight when stopping (it normally ends within a frame). */
const FLIP_GRACE_MS = 100;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves when `signal` aborts; `dispose` removes the listener. */
function abortPromise(signal: AbortSignal): { promise: Promise<void>; dispose: () => void } {
  let dispose = (): void => undefined;
  const promise = new Promise<void>((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const on = (): void => resolve();
    signal.addEventListener('abort', on, { once: true });
    dispose = () => signal.removeEventListener('abort', on);
  });
  return { promise, dispose };
}

/** Waits until performance.now() reaches `t` or `stop` resolves. */
async function sleepUntil(t: number, stop: Promise<void>): Promise<void> {
  const ms = t - performance.now();
  if (ms <= 0) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.ceil(ms)))), stop]);
  } finally {
    clearTimeout(timer);
  }
}

/** The format a connector draws in: its demo format if the connector takes it, else the first it takes. */
function pickFormat(c: Connector): PixelFormat {
  const want = formatForConnector(c.index);
  if (c.formats.some((f) => f.fourcc === want.fourcc)) return want;
  return DEMO_FORMATS.find((d) => c.formats.some((f) => f.fourcc === d.fourcc)) ?? c.formats[0] ?? want;
}

/** One connector's demo; `stop` resolves when ctx.signal aborts (one listener for all connectors). */
async function runConnector(ctx: GuestProgramContext, conn: Connector, opts: DemoOptions, stop: Promise<void>): Promise<ConnectorReport> {
  const { card, signal } = ctx;
  const format = pickFormat(conn);
  const report: ConnectorReport = {
    index: conn.index,
    uniqueId: conn.uniqueId,
    width: conn.width,
    height: conn.height,
    format: format.name,
    frames: 0,
    skipped: 0,
    last: undefined,
    drawMs: 0,
    maxDrawMs: 0,
  };
  const name = `connector ${conn.index} (${conn.uniqueId})`;
  const bufs: DisplayBuffer[] = [];
  const fbs: Framebuffer[] = [];
  let modeSet = false;
  let inflight: Promise<void> | undefined;
  try {
    for (let i = 0; i < 2 && !signal.aborted; i++) {
      const buf = await card.createDumb({ width: conn.width, height: conn.height, format });
      bufs.push(buf);
      fbs.push(await card.addFramebuffer(buf));
    }
    if (signal.aborted) return report;
    const scene = createScene({ width: conn.width, height: conn.height, format, label: `CONNECTOR ${conn.index}  ${conn.uniqueId}  ${conn.width}x${conn.height}` });
    const renderer = new SceneRenderer(scene);
    for (const b of bufs) {
      const surface: Surface = { bytes: b.pixels, offset: 0, pitch: b.pitch, width: b.width, height: b.height, format };
      renderer.attach(surface);
    }
    ctx.log(`${name}: ${conn.width}x${conn.height} ${format.name}, ${opts.fps} fps`);

    const period = 1000 / opts.fps;
    const draw = (index: number, info: FrameInfo): void => {
      const t = performance.now();
      renderer.render(index, info);
      const ms = performance.now() - t;
      report.drawMs += ms;
      if (ms > report.maxDrawMs) report.maxDrawMs = ms;
      report.last = info;
    };
    /** Flips to `fb`; false if the program was aborted first. */
    const flip = async (fb: Framebuffer): Promise<boolean> => {
      const p = card.pageFlip(conn, fb);
      inflight = p;
      p.catch(() => undefined);
      await Promise.race([p, stop]);
      if (signal.aborted) return false;
      inflight = undefined;
      report.frames++;
      return true;
    };

    let tick = 0;
    let back = 0;
    draw(back, { tick, frame: 0, skipped: 0 });
    await card.setMode(conn, fbs[back]!);
    modeSet = true;
    const start = performance.now();
    if (!(await flip(fbs[back]!))) return report;
    while (!signal.aborted && report.frames < opts.frames) {
      back ^= 1;
      let next = tick + 1;
      const due = Math.floor((performance.now() - start) / period);
      if (due > next) {
        report.skipped += due - next;
        next = due;
      }
      await sleepUntil(start + next * period, stop);
      if (signal.aborted) break;
      tick = next;
      draw(back, { tick, frame: report.frames, skipped: report.skipped });
      if (!(await flip(fbs[back]!))) break;
    }
    return report;
  } catch (e) {
    // Failures once stopping (the card closed under an in-flight request) are not errors.
    if (!signal.aborted) {
      report.error = e;
      ctx.log(`${name}: stopped by ${e instanceof Error ? e.message : String(e)}`);
    }
    return report;
  } finally {
    const quietly = async (what: string, p: Promise<unknown>): Promise<void> => {
      try {
        await p;
      } catch (e) {
        if (!card.unplugged && !card.isClosed) ctx.log(`${name}: ${what} failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    };
    if (modeSet) await quietly('disable', card.disable(conn));
    // The disable request follows the flip on this connector's ring, so the backend has taken
    // the flip; its frame-done normally comes within a frame.
    if (inflight) await Promise.race([inflight.catch(() => undefined), sleep(FLIP_GRACE_MS)]);
    for (const fb of fbs) await quietly('removing a framebuffer', fb.remove());
    for (const b of bufs) await quietly('destroying a buffer', b.destroy());
    const drawn = report.last ? report.last.frame + 1 : 0;
    const avg = drawn > 0 ? report.drawMs / drawn : 0;
    ctx.log(`${name}: ${report.frames} frames, ${report.skipped} skipped, drawing ${avg.toFixed(3)} ms/frame (worst ${report.maxDrawMs.toFixed(3)} ms)`);
  }
}

/**
 * Runs the demo on every connector of `ctx.card` until `ctx.signal` aborts (or each has drawn
 * `frames` frames); resolves with what each connector did once everything is released. An
 * error on one connector stops that connector only; it is in its report.
 */
export async function runDemo(ctx: GuestProgramContext, options: Partial<DemoOptions> = {}): Promise<ConnectorReport[]> {
  const opts = { ...parseDemoArgs(ctx.args), ...options };
  const card: Card = ctx.card;
  const stop = abortPromise(ctx.signal);
  try {
    return await Promise.all(card.connectors.map((c) => runConnector(ctx, c, opts, stop.promise)));
  } finally {
    stop.dispose();
  }
}

/**
 * The guest program. Rejects with the first connector's error (after every connector has
 * stopped and released its resources) if one failed before the program was aborted.
 */
export default async function main(ctx: GuestProgramContext): Promise<void> {
  const reports = await runDemo(ctx);
  const failed = reports.find((r) => r.error !== undefined);
  if (failed) throw failed.error;
}

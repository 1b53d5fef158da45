/**
 * The demo guest program against a fake Card (every call recorded, each flip snapshotting the
 * buffer flipped to): the format list and its assignment to connectors; on ten connectors at
 * once (every demo format, odd widths, wrapping round) two buffers and framebuffers each in the
 * connector's format, the mode set to the first, flips alternating between them with every
 * flipped frame exactly the scene's frame drawn from scratch; on abort each connector disabled
 * after its last flip, every framebuffer removed and every buffer destroyed, the card left
 * open, nothing called afterwards. Also: a flip that never completes does not hold the stop up,
 * a failing connector makes main reject (after cleaning up), `frames` ends the program by
 * itself, an already aborted signal creates nothing, and a connector without its demo format
 * falls back. No timing is asserted.
 */
import { describe, expect, it } from 'vitest';
import { DRM_FORMAT_XRGB8888, XEN_FRONT_FORMATS } from '../../../src/abi/fourcc.js';
import main, { DEMO_FORMATS, formatForConnector, parseDemoArgs, runDemo } from '../../../src/demo/demo-program.js';
import type { GuestProgramContext } from '../../../src/demo/guest-program.js';
import { createScene, type FrameInfo, renderFrame, SceneRenderer } from '../../../src/demo/scene.js';
import { bufferSurface, cloneSurface, type FakeBuffer, type FakeCall, FakeCard, type FakeCardOptions, type FakeConnectorSpec } from './helpers.js';

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 1));
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await tick();
}

function context(card: FakeCard, args?: unknown): { ctx: GuestProgramContext; abort: AbortController; logs: string[] } {
  const abort = new AbortController();
  const logs: string[] = [];
  const ctx: GuestProgramContext = { card: card.asCard(), signal: abort.signal, log: (...parts) => logs.push(parts.map(String).join(' ')), ...(args === undefined ? {} : { args }) };
  return { ctx, abort, logs };
}

/** Connector `connector`'s calls (buffers and framebuffers recognised by width: SPECS' widths differ). */
const callsOf = (card: FakeCard, connector: number): FakeCall[] =>
  card.calls.filter((c) => ('connector' in c ? c.connector === connector : ('buffer' in c ? c.buffer : c.fb.buffer).width === card.connectors[connector]!.width));

/** Every framebuffer removed, every buffer destroyed, each fb removed before its buffer. */
function expectReleased(card: FakeCard): void {
  expect(card.fbs.every((f) => f.removed)).toBe(true);
  expect(card.buffers.every((b) => b.destroyed)).toBe(true);
  for (const fb of card.fbs) {
    const removed = card.calls.findIndex((c) => c.op === 'remove' && c.fb === fb);
    const destroyed = card.calls.findIndex((c) => c.op === 'destroy' && c.buffer === fb.buffer);
    expect(removed).toBeLessThan(destroyed);
  }
  expect(card.closed).toBe(false);
}

describe('demo formats', () => {
  it('DEMO_FORMATS: XRGB8888, RGB565, then the rest of Linux xen-front\'s formats, each once', () => {
    expect(DEMO_FORMATS.map((f) => f.name)).toEqual(['XRGB8888', 'RGB565', 'RGB888', 'ARGB8888', 'XRGB4444', 'ARGB4444', 'XRGB1555', 'ARGB1555', 'YUYV']);
    expect(new Set(DEMO_FORMATS)).toEqual(new Set(XEN_FRONT_FORMATS));
    for (let i = 0; i < 30; i++) expect(formatForConnector(i)).toBe(DEMO_FORMATS[i % 9]);
    expect(formatForConnector(0).fourcc).toBe(DRM_FORMAT_XRGB8888);
  });

  it('parseDemoArgs keeps valid fps and frames and ignores the rest', () => {
    expect(parseDemoArgs(undefined)).toEqual({ fps: 60, frames: Infinity });
    expect(parseDemoArgs({ fps: 30, frames: 5, other: 1 })).toEqual({ fps: 30, frames: 5 });
    expect(parseDemoArgs({ fps: -1, frames: 1.5 })).toEqual({ fps: 60, frames: Infinity });
    expect(parseDemoArgs({ fps: 'fast', frames: 0 })).toEqual({ fps: 60, frames: Infinity });
    expect(parseDemoArgs('x')).toEqual({ fps: 60, frames: Infinity });
  });
});

describe('main on a fake card', () => {
  // Ten connectors: every demo format once (odd widths for RGB888 and YUYV), then XRGB8888 again.
  const SPECS: FakeConnectorSpec[] = [
    [64, 48], [50, 30], [33, 21], [40, 40], [36, 24], [38, 26], [42, 28], [44, 22], [45, 27], [20, 12],
  ].map(([width, height], i) => ({ width: width!, height: height!, uniqueId: `out-${i}` }));

  it('ten connectors at once: two buffers each, the mode set, alternating flips of exact frames; all released on abort', async () => {
    const card = new FakeCard(SPECS);
    const { ctx, abort, logs } = context(card);
    const running = runDemo(ctx);
    await card.waitFlips(6);
    abort.abort();
    const reports = await running;
    expectReleased(card);
    const settled = card.calls.length;

    for (const [i, spec] of SPECS.entries()) {
      const format = formatForConnector(i);
      const mine = callsOf(card, i);
      const created = mine.filter((c) => c.op === 'createDumb').map((c) => c.buffer);
      expect(created.map((b) => [b.width, b.height, b.format])).toEqual([[spec.width, spec.height, format], [spec.width, spec.height, format]]);
      const fbs = card.fbs.filter((f) => created.includes(f.buffer));
      expect(fbs.map((f) => f.buffer)).toEqual(created);
      const ops = mine.map((c) => c.op);
      const sets = mine.filter((c) => c.op === 'setMode');
      expect(sets).toHaveLength(1);
      expect(sets[0]!.fb).toBe(fbs[0]);
      const flips = mine.filter((c) => c.op === 'pageFlip');
      expect(ops.indexOf('setMode')).toBeLessThan(ops.indexOf('pageFlip'));
      expect(ops.lastIndexOf('pageFlip')).toBeLessThan(ops.indexOf('disable'));
      expect(ops.filter((o) => o === 'disable')).toHaveLength(1);
      flips.forEach((f, n) => expect(f.fb, `flip ${n}`).toBe(fbs[n % 2]));

      // Every flipped frame is frame n at some tick n + k, with k ticks skipped so far.
      const scene = createScene({ width: spec.width, height: spec.height, format, label: `CONNECTOR ${i}  out-${i}  ${spec.width}x${spec.height}` });
      const bg = new SceneRenderer(scene).background;
      let skipped = 0;
      flips.forEach((f, n) => {
        const shown = bufferSurface(f.fb.buffer, f.snapshot);
        let found: FrameInfo | undefined;
        for (let k = skipped; k < skipped + 500 && !found; k++) {
          const info = { tick: n + k, frame: n, skipped: k };
          const want = cloneSurface(bg);
          renderFrame(want, bg, [], scene, info);
          if (Buffer.compare(want.bytes, shown.bytes) === 0) found = info;
        }
        expect(found, `connector ${i} flip ${n}: not the frame drawn from scratch at any tick`).toBeDefined();
        skipped = found!.skipped;
      });

      const r = reports[i]!;
      expect(r).toMatchObject({ index: i, uniqueId: `out-${i}`, width: spec.width, height: spec.height, format: format.name });
      expect(r.error).toBeUndefined();
      expect(r.frames === flips.length || r.frames === flips.length - 1).toBe(true);
      expect(r.last?.frame).toBe(flips.length - 1);
      expect(logs.some((l) => l.includes(`connector ${i} (out-${i}): ${spec.width}x${spec.height} ${format.name}`))).toBe(true);
    }
    for (let i = 0; i < 5; i++) await tick();
    expect(card.calls.length).toBe(settled);
  });

  it('main: a flip that never completes does not hold the stop up', async () => {
    const opts: FakeCardOptions = { flip: (c, n) => (c === 1 && n >= 2 ? 'hang' : 'done') };
    const card = new FakeCard(SPECS.slice(0, 3), opts);
    const { ctx, abort } = context(card);
    const running = main(ctx);
    await until(() => card.flipCount[0]! >= 5 && card.flipCount[1]! >= 3 && card.flipCount[2]! >= 5);
    abort.abort();
    await running;
    expect(card.flipCount[1]).toBe(3);
    expectReleased(card);
    for (let i = 0; i < 3; i++) expect(card.calls.filter((c) => c.op === 'disable' && c.connector === i)).toHaveLength(1);
  });

  it('main rejects with a connector\'s error, after every connector has released everything', async () => {
    const boom = new Error('boom');
    const card = new FakeCard(SPECS.slice(0, 2), { flip: (c, n) => (c === 1 && n === 1 ? boom : 'done') });
    const { ctx, abort, logs } = context(card);
    const running = main(ctx);
    const outcome = running.then(() => undefined, (e: unknown) => e);
    await until(() => callsOf(card, 1).filter((c) => c.op === 'destroy').length === 2 && card.flipCount[0]! >= 4);
    expect(logs.some((l) => l.includes('connector 1 (out-1): stopped by boom'))).toBe(true);
    // The other connector keeps going until the program is stopped.
    const flips0 = card.flipCount[0]!;
    await until(() => card.flipCount[0]! > flips0);
    abort.abort();
    expect(await outcome).toBe(boom);
    expectReleased(card);
  });

  it('args.frames: each connector stops by itself after that many frames', async () => {
    const card = new FakeCard(SPECS.slice(0, 4));
    const { ctx } = context(card, { frames: 3, fps: 1000 });
    await main(ctx);
    expect(card.flipCount).toEqual([3, 3, 3, 3]);
    expectReleased(card);
  });

  it('an already aborted signal: nothing is created', async () => {
    const card = new FakeCard(SPECS.slice(0, 2));
    const { ctx, abort } = context(card);
    abort.abort();
    await main(ctx);
    expect(card.calls).toEqual([]);
  });

  it('a connector without its demo format uses one it takes', async () => {
    const card = new FakeCard(SPECS.slice(0, 2));
    const only = XEN_FRONT_FORMATS.filter((f) => f.fourcc === DRM_FORMAT_XRGB8888);
    card.connectors[1]!.formats = only;
    const { ctx } = context(card, { frames: 2 });
    const reports = await runDemo(ctx);
    expect(reports.map((r) => r.format)).toEqual(['XRGB8888', 'XRGB8888']);
    expect(card.buffers.map((b: FakeBuffer) => b.format.name)).toEqual(['XRGB8888', 'XRGB8888', 'XRGB8888', 'XRGB8888']);
    expectReleased(card);
  });
});

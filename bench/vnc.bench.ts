/**
 * VNC on the demo content (1920x1080 XRGB8888 and 1024x768 RGB565 at 60 Hz), one client on the
 * 1080p connector, in its own process (bench/vnc-client-child.ts: continuous updates, fences,
 * strict decoding of every update), once with ZRLE and once with Zlib:
 *
 * - vnc_fps_1080p (ZRLE) and vnc_fps_1080p_zlib: updates the client received and decoded per
 *   second, against the frames the guest flipped in the same window (the most there is to send);
 * - vnc_latency_ms: flip (backend present) -> the update written to the socket, against the
 *   frame interval (the target is "within one frame of the flip");
 * - vnc_bytes_per_frame: bytes per update on the wire (ZRLE), against the raw 32-bit frame;
 * - vnc_encode_ms_per_frame: time on the encoder thread per update (damage, conversion, ZRLE,
 *   zlib), against copying the whole frame once (memcpy of 8 MB, measured here).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { VncFigures } from '../src/present/vnc-server.js';
import { percentiles, type Report, round } from './harness.js';
import { sleep, startDemo, waitFrames } from './demo-session.js';

const WINDOW_MS = 6000;
const CHILD = fileURLToPath(new URL('./vnc-client-child.ts', import.meta.url));

interface Window {
  readonly fps: number;
  readonly flipFps: number;
  readonly updates: number;
  readonly bytesPerUpdate: number;
  readonly encodeMsPerUpdate: number;
  readonly latencies: readonly number[];
  readonly clientUpdates: number;
  readonly wall: number;
}

async function measure(encoding: number): Promise<Window> {
  const run = await startDemo({ vnc: true });
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, String(run.vnc!.ports()[0]!.port), String(encoding)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise((r) => child.once('exit', r));
  const received: { t: number; bytes: number }[] = [];
  createInterface({ input: child.stdout }).on('line', (l) => received.push(JSON.parse(l) as { t: number; bytes: number }));
  try {
    await waitFrames(run.feed, 60, false);
    // Let the first (whole) update and the start of continuous updates pass.
    const deadline = performance.now() + 20_000;
    while (received.length < 30 && performance.now() < deadline) await sleep(50);
    if (received.length < 30) throw new Error(`the VNC client got ${received.length} updates in 20 s`);
    const at = (): { f: ReturnType<typeof run.feed.figures>; v: VncFigures; n: number; t: number } => ({ f: run.feed.figures(), v: run.vnc!.figures()[0]!, n: received.length, t: performance.now() });
    const a = at();
    await sleep(WINDOW_MS);
    const b = at();
    const wall = b.t - a.t;
    const flipped = b.f[0]!.presented - a.f[0]!.presented;
    const updates = b.v.updates - a.v.updates;
    return {
      fps: ((b.n - a.n) * 1000) / wall,
      flipFps: (flipped * 1000) / wall,
      updates,
      bytesPerUpdate: (b.v.bytes - a.v.bytes) / Math.max(1, updates),
      encodeMsPerUpdate: (b.v.encodeMs - a.v.encodeMs) / Math.max(1, updates),
      latencies: b.v.latencies.slice(-Math.min(updates, b.v.latencies.length)),
      clientUpdates: b.n - a.n,
      wall,
    };
  } finally {
    child.stdin.end();
    await exited;
    await run.stop();
  }
}

export async function benchVnc(report: Report): Promise<void> {
  // The physical limit for "encode a frame": one copy of it.
  const src = new Uint8Array(1920 * 1080 * 4).fill(7);
  const dst = new Uint8Array(src.length);
  const copies: number[] = [];
  for (let i = 0; i < 30; i++) {
    const t0 = performance.now();
    dst.set(src);
    copies.push(performance.now() - t0);
  }
  const memcpy = percentiles(copies).p50;

  const zrle = await measure(16);
  const zlib = await measure(6);
  const frame = 1000 / zrle.flipFps;
  const lat = percentiles(zrle.latencies);
  report.add('vnc_fps_1080p', {
    value: round(zrle.fps, 1),
    unit: 'fps',
    baseline: { name: 'guest flips/s on that connector (same window)', value: round(zrle.flipFps, 1), unit: 'fps' },
    ratio_to_baseline: round(zrle.fps / zrle.flipFps, 2),
    note: `ZRLE with continuous updates; one client in its own process decoding every update; ${zrle.clientUpdates} updates in ${round(zrle.wall / 1000, 1)} s while the 1024x768 connector also runs; target >= 30`,
  });
  report.add('vnc_fps_1080p_zlib', {
    value: round(zlib.fps, 1),
    unit: 'fps',
    baseline: { name: 'guest flips/s on that connector (same window)', value: round(zlib.flipFps, 1), unit: 'fps' },
    ratio_to_baseline: round(zlib.fps / zlib.flipFps, 2),
    note: `Zlib, as vnc_fps_1080p; ${round(zlib.bytesPerUpdate / 1024, 1)} KiB and ${round(zlib.encodeMsPerUpdate, 2)} ms of encoding per update`,
  });
  report.add('vnc_latency_ms', {
    value: round(lat.p50, 2),
    unit: 'ms',
    p50: round(lat.p50, 2),
    p99: round(lat.p99, 2),
    baseline: { name: 'frame interval at the guest\'s flip rate', value: round(frame, 1), unit: 'ms' },
    ratio_to_baseline: round(lat.p50 / frame, 2),
    note: `backend present -> update written to the client's socket (ZRLE, 1080p), ${zrle.latencies.length} updates; target: within one frame`,
  });
  report.add('vnc_bytes_per_frame', {
    value: Math.round(zrle.bytesPerUpdate),
    unit: 'B',
    baseline: { name: 'raw 1080p 32-bit frame', value: 1920 * 1080 * 4, unit: 'B' },
    ratio_to_baseline: round(zrle.bytesPerUpdate / (1920 * 1080 * 4), 5),
    note: 'FramebufferUpdate bytes per update after the first (changed 64x64 tiles merged into rectangles, ZRLE on the connection\'s zlib stream)',
  });
  report.add('vnc_encode_ms_per_frame', {
    value: round(zrle.encodeMsPerUpdate, 3),
    unit: 'ms',
    baseline: { name: 'one copy of a 1080p frame (memcpy, 8 MB)', value: round(memcpy, 3), unit: 'ms' },
    ratio_to_baseline: round(zrle.encodeMsPerUpdate / memcpy, 2),
    note: 'encoder-thread time per ZRLE update: damage against the client\'s shadow, conversion, ZRLE and zlib (the zlib part on the thread pool, awaited)',
  });
}

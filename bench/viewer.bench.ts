/**
 * The browser viewer on the demo content (two connectors: 1920x1080 XRGB8888 and 1024x768
 * RGB565, 60 Hz), painted by Debian's Chromium (headless, through playwright-core):
 *
 * - viewer_fps_1080p: frames of the 1080p connector the page painted (acknowledged) per second,
 *   against the frames the guest flipped in the same window (the most there is to paint);
 * - viewer_latency_ms: flip (backend present) -> painted (the page's animation frame after the
 *   tiles were drawn, timestamp returned by the page), 1080p connector, against the page's
 *   display refresh interval measured in the same run (a frame can wait up to one refresh);
 * - viewer_cpu_ms_per_frame: CPU time of the whole vdispl process (backend, guest, encoder
 *   threads) per frame painted on either connector, against the same process's CPU per flipped
 *   frame in a headless run of the same demo measured just before (what the stack costs without
 *   a viewer); the encoder thread's own time is in the note;
 * - viewer_bytes_per_frame: WebSocket bytes per painted 1080p frame against the raw RGBA frame.
 *
 * Needs Chromium at /usr/bin/chromium (or $CHROMIUM); without it these metrics are skipped with
 * a line saying so.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';
import type { ConnectorFigures } from '../src/present/viewer-feed.js';
import { sleep, startDemo, waitFrames } from './demo-session.js';
import { percentiles, type Report, round } from './harness.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const WINDOW_MS = 6000;
/** CPU ms (user + system) of process `pid` and its descendants, from /proc (0 where unreadable). */
function treeCpuMs(pid: number): number {
  const tick = 1000 / 100; // USER_HZ is 100 on Linux
  let total = 0;
  const seen = new Set<number>();
  const walk = (p: number): void => {
    if (seen.has(p)) return;
    seen.add(p);
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(f[11]) + Number(f[12])) * tick; // utime, stime
      for (const t of readdirSync(`/proc/${p}/task`)) {
        for (const c of readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').split(' ')) if (c.trim()) walk(Number(c));
      }
    } catch {
      // Gone, or no /proc.
    }
  };
  walk(pid);
  return total;
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

const byName = (f: ConnectorFigures[], w: number): ConnectorFigures => f.find((c) => c.width === w)!;

export async function benchViewer(report: Report): Promise<void> {
  if (!existsSync(CHROMIUM)) {
    process.stdout.write(`  skipped: no Chromium at ${CHROMIUM} (apt install chromium, or set CHROMIUM)\n`);
    return;
  }
  // Baseline: the demo without a viewer.
  const headless = await startDemo();
  await waitFrames(headless.feed, 60, false);
  const h0 = headless.feed.figures();
  const hc0 = cpuMs();
  const ht0 = performance.now();
  await sleep(WINDOW_MS / 2);
  const h1 = headless.feed.figures();
  const hcpu = cpuMs() - hc0;
  const hwall = performance.now() - ht0;
  await headless.stop();
  const hFlips = h1.reduce((n, c, i) => n + c.presented - h0[i]!.presented, 0);
  const cpuPerFlip = hcpu / hFlips;

  const run = await startDemo({ viewer: true });
  // A browser server, so its process (and the renderer and GPU processes under it) can be measured.
  const server = await chromium.launchServer({ executablePath: CHROMIUM, headless: true });
  const browserPid = server.process().pid ?? 0;
  const browser = await chromium.connect(server.wsEndpoint());
  try {
    const page = await browser.newPage({ viewport: { width: 3100, height: 1200 } });
    await page.goto(run.url!);
    await waitFrames(run.feed, 60, true);
    const drawState = (): Promise<{ drawMs: number; drawn: number }> => page.evaluate<{ drawMs: number; drawn: number }>('({ drawMs: window.vdispl.drawMs, drawn: window.vdispl.drawn })');
    const d0 = await drawState();
    const f0 = run.feed.figures();
    const c0 = cpuMs();
    const browser0 = treeCpuMs(browserPid);
    const t0 = performance.now();
    await sleep(WINDOW_MS);
    const f1 = run.feed.figures();
    const cpu = cpuMs() - c0;
    const browserCpu = treeCpuMs(browserPid) - browser0;
    const wall = performance.now() - t0;
    const d1 = await drawState();
    const pageDrawMs = (d1.drawMs - d0.drawMs) / Math.max(1, d1.drawn - d0.drawn);
    // The page's refresh interval: 61 animation frames.
    // (A string: tsx would inject helpers the page does not have into a function.)
    const refresh = await page.evaluate<number[]>(`new Promise((resolve) => {
      const ts = [];
      const step = (t) => { ts.push(t); if (ts.length < 61) requestAnimationFrame(step); else resolve(ts.slice(1).map((v, i) => v - ts[i])); };
      requestAnimationFrame(step);
    })`);
    await page.close();

    const a0 = byName(f0, 1920);
    const a1 = byName(f1, 1920);
    const b0 = byName(f0, 1024);
    const b1 = byName(f1, 1024);
    const painted = a1.painted - a0.painted;
    const flipped = a1.presented - a0.presented;
    const fps = (painted * 1000) / wall;
    const flipFps = (flipped * 1000) / wall;
    const lat = percentiles(a1.latencies.slice(-Math.min(painted, a1.latencies.length)));
    const ref = percentiles(refresh);
    const paintedAll = painted + (b1.painted - b0.painted);
    const encodeMs = a1.encodeMs - a0.encodeMs + (b1.encodeMs - b0.encodeMs);
    const encoded = a1.encoded - a0.encoded + (b1.encoded - b0.encoded);
    const rawFrame = 1920 * 1080 * 4;
    const bytes = (a1.bytes - a0.bytes) / Math.max(1, a1.encoded - a0.encoded);

    report.add('viewer_fps_1080p', {
      value: round(fps, 1),
      unit: 'fps',
      baseline: { name: 'guest flips/s on that connector (same window)', value: round(flipFps, 1), unit: 'fps' },
      ratio_to_baseline: round(fps / flipFps, 2),
      note: `demo content, 1920x1080 XRGB8888 painted by headless Chromium while the 1024x768 RGB565 connector is shown too (${round(((b1.painted - b0.painted) * 1000) / wall, 1)} fps); ${round(wall / 1000, 1)} s window; target 60`,
    });
    report.add('viewer_latency_ms', {
      value: round(lat.p50, 1),
      unit: 'ms',
      p50: round(lat.p50, 1),
      p99: round(lat.p99, 1),
      baseline: { name: 'page refresh interval (requestAnimationFrame)', value: round(ref.p50, 1), unit: 'ms' },
      ratio_to_baseline: round(lat.p50 / ref.p50, 2),
      note: `backend present -> the page's animation frame after drawing the tiles, 1080p connector, ${painted} frames; target p50 <= 25 ms`,
    });
    report.add('viewer_cpu_ms_per_frame', {
      value: round(cpu / paintedAll, 2),
      unit: 'ms',
      baseline: { name: 'vdispl process CPU per flipped frame without a viewer', value: round(cpuPerFlip, 2), unit: 'ms' },
      ratio_to_baseline: round(cpu / paintedAll / cpuPerFlip, 2),
      note: `CPU of the whole vdispl process (backend, guest, encoder threads) per frame painted on either connector: ${round(cpu / wall, 2)} cores with the viewer, ${round(hcpu / hwall, 2)} without; the encoder thread alone ${round(encodeMs / Math.max(1, encoded), 2)} ms per update (damage, RGBA conversion, RLE); the page ${round(pageDrawMs, 2)} ms per frame decoding and drawing tiles; Chromium (all its processes) used ${round(browserCpu / wall, 2)} cores, not counted in the value; target under one core in total`,
    });
    report.add('viewer_bytes_per_frame', {
      value: Math.round(bytes),
      unit: 'B',
      baseline: { name: 'raw 1080p RGBA frame', value: rawFrame, unit: 'B' },
      ratio_to_baseline: round(bytes / rawFrame, 4),
      note: 'WebSocket payload per 1080p update after the first (changed 64x64 tiles, RLE or raw RGBA)',
    });
  } finally {
    await browser.close();
    await server.close();
    await run.stop();
  }
}

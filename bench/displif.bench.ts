/**
 * displif end to end, guest and backend in different worker domains:
 * - flip_rtt_us: PG_FLIP request -> response -> frame-done at 1080p XRGB8888 (the backend's
 *   presenter presents at once), beside the event channel round trip and the raw Atomics
 *   ping-pong measured in the same run (a flip needs two notifications one way and one back);
 * - flips_per_s: 4 connectors flipping at once, in total;
 * - dbuf_create_{1080p,4k}_ms: card.createDumb (allocate, grant, DBUF_CREATE, the backend maps or
 *   allocates and grants), frontend- and backend-allocated;
 * - bytes_copied_per_flip: pixel bytes the protocol path copied (the presenter checks each frame
 *   is a view on the guest's own pages).
 */
import { Toolstack } from '../src/toolstack/toolstack.js';
import { parseVdisplSpec } from '../src/toolstack/vdispl-spec.js';
import { percentiles, type Report, round, type Timing, versus, versusUs } from './harness.js';

const BACKEND = new URL('./workers/display-backend.ts', import.meta.url).href;
const GUEST = new URL('./workers/display-guest.ts', import.meta.url).href;

interface Run {
  result: unknown;
  presented: { frames: number; copied: number };
}

async function run(vdispl: string, args: Record<string, unknown>, spinMicros = 0): Promise<Run> {
  let result: unknown;
  let presented = { frames: 0, copied: 0 };
  let ready: () => void = () => undefined;
  const backendReady = new Promise<void>((r) => (ready = r));
  const ts = await Toolstack.start({
    machine: {
      memoryMiB: 512,
      log: (_d, _n, text) => {
        if (text === 'READY') ready();
        else if (text.startsWith('RESULT ')) result = JSON.parse(text.slice(7));
        else if (text.startsWith('PRESENTED ')) presented = JSON.parse(text.slice(10)) as Run['presented'];
        else if (/fail|error|threw/i.test(text)) process.stderr.write(`${text}\n`);
      },
    },
    log: () => undefined,
  });
  try {
    const be = await ts.createDomain({ mode: 'worker', name: 'backend', module: BACKEND, spinMicros, limits: { maxPages: 65536 } });
    await backendReady;
    const g = await ts.createDomain({ mode: 'worker', name: 'guest', module: GUEST, args, spinMicros, limits: { maxPages: 65536 }, vdispl: [parseVdisplSpec(vdispl.replace('BE', String(be.domid)))] });
    const exit = await g.handle.exited;
    if (exit.reason !== 'poweroff') throw new Error(`guest ${exit.reason}: ${exit.error ?? ''}`);
    await ts.shutdownDomain(be.domid);
    return { result, presented };
  } finally {
    await ts.close();
  }
}

const ms = (samples: number[]): Timing => {
  const t = percentiles(samples);
  return { p50: t.p50 * 1e6, p99: t.p99 * 1e6 };
};

export async function benchDisplif(report: Report, baselines: { atomics: Timing; evtchn: Timing }): Promise<void> {
  const rtt = await run('backend=BE,connectors=c0:1920x1080', { mode: 'flip-rtt', rounds: 3000 });
  const t = percentiles((rtt.result as number[]).slice(500));
  report.add('flip_rtt_us', versusUs(t, 'atomics_pingpong_rtt_us', baselines.atomics, `PG_FLIP -> response -> EVT_PG_FLIP, 1080p XRGB8888, guest and backend in two workers; target p50 <= 3x the ping-pong; x${round(t.p50 / baselines.evtchn.p50, 2)} of evtchn_rtt_us (${round(baselines.evtchn.p50, 1)} us)`));

  const spin = await run('backend=BE,connectors=c0:1920x1080', { mode: 'flip-rtt', rounds: 3000 }, 50);
  const ts50 = percentiles((spin.result as number[]).slice(500));
  report.add('flip_rtt_spin50_us', versusUs(ts50, 'atomics_pingpong_rtt_us', baselines.atomics, 'the same with both domains\' event loops spinning 50 us before sleeping (spinMicros 50)'));

  const fl = await run('backend=BE,connectors=a:1920x1080;b:1920x1080;c:1920x1080;d:1920x1080', { mode: 'flips', seconds: 3 });
  const f = fl.result as { flips: number; seconds: number; perConnector: number[] };
  const perSec = f.flips / f.seconds;
  report.add('flips_per_s', {
    value: round(perSec, 0),
    unit: 'flips/s',
    baseline: { name: 'atomics_pingpong_rtt_us (as round trips/s)', value: round(1e6 / baselines.atomics.p50, 0), unit: '1/s' },
    ratio_to_baseline: round(perSec / (1e6 / baselines.atomics.p50), 2),
    note: `4 connectors at 1080p flipping at once, each waiting for its frame-done; per connector ${f.perConnector.map((n) => round(n / f.seconds, 0)).join(', ')}; target >= 5000 in total`,
  });
  const flips = rtt.presented.frames + fl.presented.frames;
  const copied = rtt.presented.copied + fl.presented.copied;
  report.add('bytes_copied_per_flip', {
    value: flips > 0 ? copied / flips : -1,
    unit: 'bytes',
    baseline: { name: 'frame_bytes_1080p', value: 1920 * 1080 * 4, unit: 'bytes' },
    ratio_to_baseline: flips > 0 ? copied / flips / (1920 * 1080 * 4) : -1,
    note: `${flips} frames presented; each checked to be a view on machine memory itself (its one view, or each page: what is not counts as copied); must be 0`,
  });

  for (const [label, w, h] of [['1080p', 1920, 1080], ['4k', 3840, 2160]] as const) {
    for (const beAlloc of [false, true]) {
      const r = await run(`backend=BE,be-alloc=${beAlloc ? 1 : 0},connectors=c0:${w}x${h}`, { mode: 'dbuf', width: w, height: h, rounds: 60 });
      const lat = (r.result as number[]).slice(10);
      const name = `dbuf_create_${label}${beAlloc ? '_be_alloc' : ''}_ms`;
      const ring = ms(lat);
      report.add(name, versus(ring, 'flip_rtt_us (one request round trip)', { p50: t.p50 * 1e3, p99: t.p99 * 1e3 }, `card.createDumb ${w}x${h} XRGB8888, ${beAlloc ? 'backend' : 'frontend'}-allocated${label === '1080p' ? '; target <= 1 ms' : ''}`, 1e-6, 'ms'));
    }
  }
}

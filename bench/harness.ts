/**
 * A small benchmark harness: runs an operation in batches, reports the per-operation time of the
 * median batch and of the 99th-percentile batch, and writes bench/results.json in the format
 * every issue uses: { machine, date, metrics: { name: { value, unit, ... } } }.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';

export interface Metric {
  value: number;
  unit: string;
  p50?: number;
  p99?: number;
  /** The physical limit measured in the same run, and how far from it we are. */
  baseline?: { name: string; value: number; unit: string };
  ratio_to_baseline?: number;
  note?: string;
}

export interface Timing {
  /** Per-operation time of the median batch, in ns. */
  p50: number;
  /** Per-operation time of the 99th-percentile batch, in ns. */
  p99: number;
}

/** Runs `op(i)` `batch` times per sample, `samples` samples after a warm-up. */
export function timeOp(op: (i: number) => void, batch: number, samples = 200): Timing {
  for (let i = 0; i < batch * 5; i++) op(i);
  const per: number[] = [];
  let k = 0;
  for (let s = 0; s < samples; s++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) op(k++);
    per.push(Number(process.hrtime.bigint() - t0) / batch);
  }
  return percentiles(per);
}

/**
 * A latency metric (ns per operation) compared with the baseline measured in the same run.
 * `scale` converts both from per-batch-op to the reported unit (e.g. 1 / messages per batch).
 */
export function versus(t: Timing, baselineName: string, baseline: Timing, note?: string, scale = 1, unit = 'ns'): Metric {
  const m: Metric = {
    value: round(t.p50 * scale),
    unit,
    p50: round(t.p50 * scale),
    p99: round(t.p99 * scale),
    baseline: { name: baselineName, value: round(baseline.p50 * scale), unit },
    ratio_to_baseline: round(t.p50 / baseline.p50, t.p50 / baseline.p50 < 1 ? 2 : 1),
  };
  if (note !== undefined) m.note = note;
  return m;
}

/** A microsecond latency compared with a baseline measured in the same run. */
export function versusUs(t: Timing, baselineName: string, baseline: Timing, note: string): Metric {
  return versus(t, baselineName, baseline, note, 1, 'us');
}

/** A microsecond latency that is itself a baseline (a physical limit measured in this run). */
export function limitUs(t: Timing, note: string): Metric {
  return { value: round(t.p50), unit: 'us', p50: round(t.p50), p99: round(t.p99), note };
}

/** p50 and p99 of raw samples (any unit). */
export function percentiles(samples: ArrayLike<number>): Timing {
  const s = Array.from(samples).sort((a, b) => a - b);
  return { p50: s[Math.floor(s.length * 0.5)]!, p99: s[Math.min(s.length - 1, Math.floor(s.length * 0.99))]! };
}

export function round(v: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export function machine(): Record<string, string | number> {
  const cpus = os.cpus();
  return {
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memory_gib: round(os.totalmem() / 2 ** 30, 1),
  };
}

export class Report {
  readonly metrics: Record<string, Metric> = {};

  add(name: string, m: Metric): void {
    this.metrics[name] = m;
    const base = m.baseline
      ? `  (${m.baseline.name} ${m.baseline.value} ${m.baseline.unit}, x${m.ratio_to_baseline})`
      : '';
    const pct = m.p99 !== undefined ? `  p99 ${m.p99}` : '';
    process.stdout.write(
      `  ${name.padEnd(34)} ${String(m.value).padStart(10)} ${m.unit.padEnd(6)}${pct}${base}\n`,
    );
  }

  write(path: string): void {
    const out = { machine: machine(), date: new Date().toISOString(), metrics: this.metrics };
    writeFileSync(path, `${JSON.stringify(out, null, 2)}\n`);
  }
}

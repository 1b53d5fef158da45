/**
 * Hypervisor costs against the physical limits measured in the same run:
 * - event channel round trip between two worker domains vs a raw Atomics ping-pong between two
 *   workers (blocking Atomics.wait: the limit; waitAsync: what an event loop can use);
 * - mapping + unmapping a 1080p / 4K framebuffer's grants vs copying the frame once (what
 *   zero-copy saves);
 * - granting and ending 10,000 refs vs writing the same entries with bare Atomics.
 */
import { once } from 'node:events';
import { type EmulatedPlatform, GrantMapBatch, GrantUnmapBatch, Machine } from '../src/hypervisor/index.js';
import { startWorker } from '../src/hypervisor/worker-bootstrap.js';
import { limitUs, percentiles, type Report, round, type Timing, timeOp, versus, versusUs } from './harness.js';

const ROUNDS = 6000;
const WARMUP = 1000;

async function rawPingPong(mode: 'sync' | 'async'): Promise<Timing> {
  const sab = new SharedArrayBuffer(16);
  const url = new URL('./workers/atomics-pingpong.ts', import.meta.url);
  const w1 = startWorker(url, { workerData: { sab, role: 1, mode, rounds: ROUNDS } });
  const w0 = startWorker(url, { workerData: { sab, role: 0, mode, rounds: ROUNDS } });
  const [lat] = (await once(w0, 'message')) as [number[]];
  await Promise.all([once(w0, 'exit'), once(w1, 'exit')]);
  return percentiles(lat.slice(WARMUP));
}

export async function evtchnRtt(spinMicros: number): Promise<Timing> {
  let portSeen: (p: number) => void = () => undefined;
  let resultSeen: (r: number[]) => void = () => undefined;
  const port = new Promise<number>((r) => (portSeen = r));
  const result = new Promise<number[]>((r) => (resultSeen = r));
  const m = new Machine({
    memoryMiB: 16,
    log: (_d, _n, text) => {
      if (text.startsWith('PORT ')) portSeen(Number(text.slice(5)));
      else if (text.startsWith('RESULT ')) resultSeen(JSON.parse(text.slice(7)) as number[]);
      else process.stderr.write(`${text}\n`);
    },
  });
  try {
    const module = new URL('./workers/evtchn-peer.ts', import.meta.url);
    await m.createDomain({ mode: 'worker', name: 'pinger', domid: 10, module, spinMicros, args: { role: 'pinger', peer: 11, rounds: ROUNDS } });
    const p = await port;
    await m.createDomain({ mode: 'worker', name: 'ponger', domid: 11, module, spinMicros, args: { role: 'ponger', peer: 10, port: p } });
    return percentiles((await result).slice(WARMUP));
  } finally {
    await m.close();
  }
}

async function twoDomains(memoryMiB: number): Promise<{ m: Machine; guest: EmulatedPlatform; back: EmulatedPlatform }> {
  const m = new Machine({ memoryMiB, log: () => undefined });
  const g = await m.createDomain({ mode: 'local', name: 'guest', platform: { autoStart: false } });
  const b = await m.createDomain({ mode: 'local', name: 'backend', platform: { autoStart: false } });
  return { m, guest: g.platform!, back: b.platform! };
}

async function grantMap(report: Report, name: string, width: number, height: number, target: string): Promise<void> {
  const bytes = width * height * 4;
  const pages = Math.ceil(bytes / 4096);
  const { m, guest, back } = await twoDomains(128);
  try {
    const gfns = guest.memory.allocPages(pages);
    if (typeof gfns === 'number') throw new Error(`alloc: ${gfns}`);
    const refs = guest.grants.grantAccessBatch(back.domid, gfns, false);
    if (typeof refs === 'number') throw new Error(`grant: ${refs}`);
    const cycle = (): void => {
      const r = back.maps.map(guest.domid, refs, false);
      if (!r.ok) throw new Error(`map: ${r.status}`);
      back.maps.unmap(r.mapping);
    };
    for (let i = 0; i < 50; i++) cycle(); // let the JIT settle: timeOp warms up only 5 calls of batch 1
    const t = timeOp(cycle, 1, 100);
    // The same through the raw hypercalls with preallocated batches: the hypervisor's own share.
    const mb = GrantMapBatch.of(guest.domid, refs, false);
    const ub = new GrantUnmapBatch(refs.length);
    const raw = timeOp(() => {
      back.hypercalls.gnttabMap(mb);
      ub.handle.set(mb.handle);
      back.hypercalls.gnttabUnmap(ub);
    }, 1, 100);
    const src = new Uint8Array(bytes).fill(1);
    const dst = new Uint8Array(bytes);
    const copy = timeOp(() => dst.set(src), 1, 30);
    report.add(name, versus(t, `memcpy_${width}x${height}_frame_ms`, copy, `platform maps.map + maps.unmap of ${pages} refs; target ${target}`, 1e-6, 'ms'));
    report.add(`${name.replace(/_ms$/, '')}_hypercall_ms`, versus(raw, `memcpy_${width}x${height}_frame_ms`, copy, `GNTTABOP_map + unmap of ${pages} refs with reused batches`, 1e-6, 'ms'));
  } finally {
    await m.close();
  }
}

async function shareEnd(report: Report): Promise<void> {
  const N = 10_000;
  const { m, guest, back } = await twoDomains(64);
  try {
    const gfns = guest.memory.allocPages(N);
    if (typeof gfns === 'number') throw new Error(`alloc: ${gfns}`);
    const refs = new Int32Array(N);
    const t = timeOp(() => {
      for (let i = 0; i < N; i++) refs[i] = guest.grants.grantAccess(back.domid, gfns[i]!, false);
      for (let i = 0; i < N; i++) guest.grants.endAccess(refs[i]!);
    }, 1, 60);
    // Baseline: the same entry writes and compare-exchanges with bare Atomics on an array.
    const table = new Int32Array(new SharedArrayBuffer(N * 8 + 64));
    const half = new Uint16Array(table.buffer);
    const raw = timeOp(() => {
      for (let i = 0; i < N; i++) {
        Atomics.store(table, 2 * i + 1, gfns[i]!);
        Atomics.store(table, 2 * i, 1 | (back.domid << 16));
      }
      for (let i = 0; i < N; i++) Atomics.compareExchange(half, 4 * i, 1, 0);
    }, 1, 60);
    report.add('grant_share_end_10k_ms', versus(t, 'atomics_entry_writes_10k_ms', raw, 'grantAccess + endAccess of 10,000 refs (unmapped: ends at once)', 1e-6, 'ms'));
  } finally {
    await m.close();
  }
}

export async function benchHypervisor(report: Report): Promise<{ atomics: Timing; evtchn: Timing }> {
  const sync = await rawPingPong('sync');
  report.add('atomics_pingpong_rtt_us', limitUs(sync, 'Atomics.wait/notify between two workers: the limit'));
  const async = await rawPingPong('async');
  report.add('atomics_waitasync_pingpong_rtt_us', versusUs(async, 'atomics_pingpong_rtt_us', sync, 'Atomics.waitAsync between two workers'));
  const ev = await evtchnRtt(0);
  report.add('evtchn_rtt_us', versusUs(ev, 'atomics_pingpong_rtt_us', sync, `notify -> handler -> notify back between two worker domains; target p50 <= 1.3x; x${round(ev.p50 / async.p50, 2)} of atomics_waitasync_pingpong_rtt_us (the same wakeup an event loop can use). The blocking baseline varies between runs on this VM (13-110 us p50)`));
  const evSpin = await evtchnRtt(50);
  report.add('evtchn_rtt_spin50_us', versusUs(evSpin, 'atomics_pingpong_rtt_us', sync, 'same with spinMicros 50 in both domains'));

  await grantMap(report, 'grant_map_1080p_ms', 1920, 1080, '<= 0.2 ms');
  await grantMap(report, 'grant_map_4k_ms', 3840, 2160, '<= 1 ms');
  await shareEnd(report);
  return { atomics: sync, evtchn: ev };
}

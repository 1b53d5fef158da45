/**
 * XenStore request latency (XS_READ and XS_WRITE of a 64-byte value, p50/p99) against the limit
 * of each path measured in the same run:
 * - in-process (an XsClient piped to the embedded daemon, wire encoding included) vs the store
 *   core's session call alone;
 * - over the unix socket, a Node client to `vdispl xenstored` in its own process, vs an echo
 *   round trip over a unix socket between two Node processes;
 * - over the guest ring from a worker domain vs an event channel ping-pong between that guest and
 *   dom0 (where xenstored runs), sleeping at once and spinning 50 us first;
 * - the socket and in-process paths again with 512 idle connections open.
 * Published anchors (not measured here): C xenstored ~93 us read / 140 us write (758 us at 512
 * connections), MirageOS ~870 us. Targets: <= 10 us in-process, <= 50 us socket or ring.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Toolstack } from '../src/toolstack/toolstack.js';
import type { XsClient } from '../src/xenstore/client.js';
import { connectPipe, connectSocket } from '../src/xenstore/client-transports.js';
import { XenStoreDaemon } from '../src/xenstore/daemon.js';
import { limitUs, percentiles, type Report, type Timing, timeOp, versusUs } from './harness.js';

const ROUNDS = 4000;
const WARMUP = 500;
const VALUE = 'v'.repeat(64);
const root = fileURLToPath(new URL('..', import.meta.url));

/** Untimed rounds first: the JIT needs a few thousand before the figures settle (measured: 23 us -> 8 us in-process). */
const JIT_WARMUP = 3000;

async function clientLatency(xs: XsClient, rounds = ROUNDS): Promise<{ read: Timing; write: Timing }> {
  await xs.write('/bench/key', VALUE);
  for (let i = 0; i < JIT_WARMUP; i++) {
    await xs.read('/bench/key');
    await xs.write('/bench/key', VALUE);
  }
  const read = new Float64Array(rounds);
  const write = new Float64Array(rounds);
  for (let i = 0; i < rounds; i++) {
    let t = performance.now();
    await xs.read('/bench/key');
    read[i] = (performance.now() - t) * 1000;
    t = performance.now();
    await xs.write('/bench/key', VALUE);
    write[i] = (performance.now() - t) * 1000;
  }
  return { read: percentiles(read.subarray(WARMUP)), write: percentiles(write.subarray(WARMUP)) };
}

function spawnReady(args: string[], match: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes(match)) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await gone;
}

async function echoRtt(path: string): Promise<Timing> {
  const sock = connect(path);
  await new Promise((r) => sock.once('connect', r));
  sock.setNoDelay(true);
  const msg = Buffer.alloc(16 + 64);
  const lat = new Float64Array(ROUNDS);
  for (let i = 0; i < ROUNDS; i++) {
    const t = performance.now();
    const back = new Promise((r) => sock.once('data', r));
    sock.write(msg);
    await back;
    lat[i] = (performance.now() - t) * 1000;
  }
  sock.destroy();
  return percentiles(lat.subarray(WARMUP));
}

async function idleSockets(path: string, n: number): Promise<Socket[]> {
  const socks: Socket[] = [];
  for (let i = 0; i < n; i++) {
    const s = connect(path);
    await new Promise((r) => s.once('connect', r));
    socks.push(s);
  }
  return socks;
}

async function inProcess(report: Report): Promise<void> {
  const daemon = new XenStoreDaemon({ log: () => undefined });
  const session = daemon.store.connect({ domid: 0, privileged: true });
  session.write('/bench/key', new TextEncoder().encode(VALUE));
  const core = timeOp(() => session.read('/bench/key'), 200);
  const coreUs = { p50: core.p50 / 1000, p99: core.p99 / 1000 };
  report.add('xs_core_read_us', limitUs(coreUs, 'XsSession.read in the store core, no wire: the in-process limit'));
  const xs = connectPipe(daemon);
  const r = await clientLatency(xs);
  report.add('xs_read_us', versusUs(r.read, 'xs_core_read_us', coreUs, 'in-process XsClient over a pipe (wire encode/decode, promise); target <= 10 us'));
  report.add('xs_write_us', versusUs(r.write, 'xs_core_read_us', coreUs, 'in-process XsClient over a pipe; target <= 10 us'));
  const idle = Array.from({ length: 512 }, () => connectPipe(daemon));
  const r512 = await clientLatency(xs);
  report.add('xs_read_512conn_us', versusUs(r512.read, 'xs_read_us', r.read, 'in-process, 512 idle connections open'));
  report.add('xs_write_512conn_us', versusUs(r512.write, 'xs_write_us', r.write, 'in-process, 512 idle connections open'));
  for (const c of idle) c.close();
  xs.close();
  session.close();
}

async function overSocket(report: Report): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vdispl-xs-bench-'));
  const echoPath = join(dir, 'echo.sock');
  const xsPath = join(dir, 'xs.sock');
  const echo = await spawnReady(['--import', 'tsx', fileURLToPath(new URL('./workers/unix-echo.ts', import.meta.url)), echoPath], 'ready');
  const daemon = await spawnReady(['bin/vdispl.js', 'xenstored', '--socket', xsPath], 'listening');
  try {
    const base = await echoRtt(echoPath);
    report.add('unix_socket_echo_rtt_us', limitUs(base, 'request/reply over a unix socket between two Node processes: the socket limit'));
    const xs = await connectSocket(xsPath);
    const r = await clientLatency(xs);
    report.add('xs_read_socket_us', versusUs(r.read, 'unix_socket_echo_rtt_us', base, 'Node client -> vdispl xenstored process; C xenstored anchor ~93 us; target <= 50 us'));
    report.add('xs_write_socket_us', versusUs(r.write, 'unix_socket_echo_rtt_us', base, 'Node client -> vdispl xenstored process; C anchor ~140 us; target <= 50 us'));
    const idle = await idleSockets(xsPath, 512);
    const r512 = await clientLatency(xs);
    report.add('xs_read_socket_512conn_us', versusUs(r512.read, 'xs_read_socket_us', r.read, 'socket, 512 idle connections open; target flat'));
    report.add('xs_write_socket_512conn_us', versusUs(r512.write, 'xs_write_socket_us', r.write, 'socket, 512 idle connections open; C anchor ~758 us; target flat'));
    for (const s of idle) s.destroy();
    xs.close();
  } finally {
    await stop(daemon);
    await stop(echo);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function overRing(report: Report, spinMicros: number): Promise<void> {
  let resultSeen: (r: { evtchn: number[]; read: number[]; write: number[] }) => void = () => undefined;
  const result = new Promise<{ evtchn: number[]; read: number[]; write: number[] }>((r) => (resultSeen = r));
  const ts = await Toolstack.start({
    log: () => undefined,
    machine: {
      memoryMiB: 32,
      log: (_d, _n, text) => {
        if (text.startsWith('RESULT ')) resultSeen(JSON.parse(text.slice(7)) as never);
        else process.stderr.write(`${text}\n`);
      },
    },
  });
  try {
    const dom0 = ts.dom0;
    // Both event loops spin this long before sleeping (0: straight to Atomics.waitAsync).
    ts.machine.dom0.platform!.loop.spinMicros = spinMicros;
    const g = await ts.createDomain({ mode: 'worker', name: 'xs-bench', spinMicros, module: new URL('./workers/xs-guest.ts', import.meta.url), args: { rounds: ROUNDS } });
    const w = await ts.xs.watch(`/local/domain/${g.domid}/data/ping-port`, () => {
      void ts.xs.tryRead(`/local/domain/${g.domid}/data/ping-port`).then((p) => {
        if (p === undefined) return;
        const local = dom0.events.bindInterdomain(g.domid, Number(p));
        if (local < 0) return;
        dom0.events.on(local, () => dom0.events.notify(local));
        dom0.events.notify(local);
        void w.unwatch();
      });
    });
    const r = await result;
    const evtchn = percentiles(r.evtchn.slice(WARMUP));
    const sfx = spinMicros > 0 ? `_spin${spinMicros}` : '';
    const how = spinMicros > 0 ? `, both event loops spinning ${spinMicros} us before sleeping` : '';
    const base = `evtchn_rtt_guest_dom0${sfx}_us`;
    report.add(base, limitUs(evtchn, `event channel ping-pong, worker guest <-> dom0 main thread${how}: the ring limit`));
    report.add(`xs_read_ring${sfx}_us`, versusUs(percentiles(r.read.slice(WARMUP)), base, evtchn, `guest worker over its xenstore ring page${how}; target <= 50 us`));
    report.add(`xs_write_ring${sfx}_us`, versusUs(percentiles(r.write.slice(WARMUP)), base, evtchn, `guest worker over its xenstore ring page${how}; target <= 50 us`));
  } finally {
    await ts.close();
  }
}

export async function benchXenstore(report: Report): Promise<void> {
  await inProcess(report);
  await overSocket(report);
  await overRing(report, 0);
  await overRing(report, 50);
}

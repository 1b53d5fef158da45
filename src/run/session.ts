/**
 * `vdispl run` / `vdispl demo`: boots the emulated machine (XenStore, toolstack), a display
 * backend in dom0 presenting into the viewer feed (and the VNC server), and one guest running a
 * guest program; shows figures, serves the browser viewer and VNC, writes PNG snapshots, and shuts everything down cleanly
 * (the guest closes its device, the backend releases everything) on Ctrl-C, after N frames, or
 * when the guest program ends, then checks that the hypervisor's accounting is back where it
 * started.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { DisplayBackend } from '../back/backend.js';
import type { Presenter } from '../back/presenter.js';
import { TeePresenter } from '../back/tee-presenter.js';
import type { DomainExit } from '../hypervisor/domain-context.js';
import type { MachineAccounting } from '../hypervisor/accounting.js';
import { framePng } from '../present/png.js';
import { type ConnectorFigures, ViewerFeed } from '../present/viewer-feed.js';
import { ViewerServer } from '../present/viewer-server.js';
import { VncServer } from '../present/vnc-server.js';
import { Toolstack } from '../toolstack/toolstack.js';
import { percentile } from './percentile.js';
import type { VdisplDeviceSpec } from '../toolstack/vdispl-spec.js';

export interface SessionIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Whether stdout is a terminal (figures are updated in place). */
  readonly tty: boolean;
}

export interface SessionOptions {
  readonly guestName: string;
  readonly devices: readonly VdisplDeviceSpec[];
  /** URL of the guest program. */
  readonly program: string;
  readonly programArgs?: unknown;
  /** Serve the viewer on this port (0: any free one); undefined: no viewer. */
  readonly viewerPort?: number | undefined;
  /** Serve VNC: connector n on basePort + n (0: any free ports), with VNC authentication if a password is given. */
  readonly vnc?: { readonly basePort: number; readonly password?: string | undefined } | undefined;
  readonly snapshotDir?: string | undefined;
  /** Stop once every connector presented this many frames. */
  readonly frames?: number | undefined;
  readonly json?: boolean;
  readonly io: SessionIo;
  /** Resolves when the user asks to stop (Ctrl-C). */
  readonly interrupt: Promise<unknown>;
  /** Figures every this many ms (default 1000). */
  readonly intervalMs?: number;
  /** Called once the guest is started (for tools that watch a session: the benchmarks). */
  readonly onReady?: (s: { readonly feed: ViewerFeed; readonly viewerUrl: string | undefined; readonly vnc: VncServer | undefined; readonly guestDomid: number }) => void;
}

interface GuestFigures {
  readonly index: number;
  readonly flips: number;
  readonly p50: number;
  readonly p99: number;
}

type GuestMessage = { type: 'figures'; connectors: GuestFigures[] } | { type: 'error'; stage: 'load' | 'run'; message: string; stack?: string };

const RUNNER = new URL(`./guest-runner${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href;

/**
 * What is not back at its starting value once everything is shut down (Machine.leaks), leaving
 * out the Xen-heap structures a domain grows on first use and keeps by design (p2m leaves,
 * maptrack and grant-table frames): the tests measure those after a warm-up; a session has none.
 */
function leaksAfter(ts: Toolstack, base: MachineAccounting): string[] {
  return ts.machine.leaks(base).filter((l) => !/^(freeFrames|xenFrames|d\d+\.(xenFrames|grantFrames)):/.test(l));
}

function fmt(v: number, digits = 1): string {
  return v.toFixed(digits);
}


export interface SessionResult {
  readonly code: number;
  readonly leaks: readonly string[];
}

export async function runSession(o: SessionOptions): Promise<SessionResult> {
  const { io } = o;
  const bad = o.devices.find((d) => !('domid' in d.backend) || d.backend.domid !== 0);
  if (bad) {
    io.stderr(`vdispl: vdispl[${bad.devid}]: the backend must be dom0 (backend=0) for vdispl run\n`);
    return { code: 2, leaks: [] };
  }
  if (o.devices.length !== 1) {
    io.stderr(`vdispl: the config has ${o.devices.length} vdispl devices; vdispl run shows one per guest\n`);
    return { code: 2, leaks: [] };
  }
  // Domains' log lines go above the figures (which are redrawn below them on a terminal).
  let drawn = 0;
  const printLog = (text: string): void => {
    if (o.json) return;
    if (io.tty && drawn > 0) {
      io.stdout(`\x1b[${drawn}F\x1b[J`);
      drawn = 0;
    }
    io.stdout(`${text}\n`);
  };
  const ts = await Toolstack.start({
    log: (t) => printLog(`[toolstack] ${t}`),
    machine: { memoryMiB: 512, log: (_d, name, text) => printLog(`[${name}] ${text}`) },
  });
  const feed = new ViewerFeed({ nameOf: (i) => `${o.guestName}/${i.uniqueId}`, log: printLog });
  let vnc: VncServer | undefined;
  if (o.vnc) {
    const connectors = o.devices[0]!.connectors.map((c) => ({ name: `${o.guestName}/${c.uniqueId}`, width: c.width, height: c.height }));
    try {
      vnc = await VncServer.start({ connectors, basePort: o.vnc.basePort, password: o.vnc.password, log: printLog });
    } catch (e) {
      const last = o.vnc.basePort === 0 ? '' : `-${o.vnc.basePort + connectors.length - 1}`;
      io.stderr(`vdispl: cannot serve VNC on 127.0.0.1:${o.vnc.basePort}${last}: ${e instanceof Error ? e.message : String(e)}\n`);
      await feed.close();
      await ts.close();
      return { code: 1, leaks: [] };
    }
  }
  const presenter: Presenter = vnc ? new TeePresenter([feed, vnc]) : feed;
  const backend = await DisplayBackend.start({ platform: ts.dom0, presenter, log: (t) => printLog(`[backend] ${t}`) });
  let viewer: ViewerServer | undefined;
  if (o.viewerPort !== undefined) {
    try {
      viewer = await ViewerServer.start({ feed, port: o.viewerPort });
    } catch (e) {
      io.stderr(`vdispl: cannot serve the viewer on 127.0.0.1:${o.viewerPort}: ${e instanceof Error ? e.message : String(e)}\n`);
      await backend.stop();
      await vnc?.close();
      await feed.close();
      await ts.close();
      return { code: 1, leaks: [] };
    }
  }
  const base = ts.machine.accounting();

  const { port1, port2 } = new MessageChannel();
  const guestFigures = new Map<number, GuestFigures>();
  let guestError: Extract<GuestMessage, { type: 'error' }> | undefined;
  port1.on('message', (m: GuestMessage) => {
    if (m.type === 'figures') for (const c of m.connectors) guestFigures.set(c.index, c);
    else guestError ??= m;
  });
  const guest = await ts.createDomain({
    mode: 'worker',
    name: o.guestName,
    module: RUNNER,
    args: { program: o.program, programArgs: o.programArgs, port: port2 },
    transfer: [port2],
    limits: { maxPages: 65536 },
    vdispl: o.devices,
  });

  o.onReady?.({ feed, viewerUrl: viewer?.url, vnc, guestDomid: guest.domid });
  const expected = o.devices.reduce((n, d) => n + d.connectors.length, 0);
  if (viewer) io.stdout(`viewer: ${viewer.url}\n`);
  for (const p of vnc?.ports() ?? []) io.stdout(`vnc: ${p.name} on 127.0.0.1:${p.port} (vncviewer 127.0.0.1::${p.port})${vnc!.password ? ', password required' : ''}\n`);
  io.stdout(`guest ${o.guestName} (d${guest.domid}): ${o.devices.flatMap((d) => d.connectors.map((c) => `${c.uniqueId} ${c.width}x${c.height}`)).join(', ')}${o.devices.some((d) => d.beAlloc) ? ', backend-allocated buffers' : ''}; Ctrl-C to stop\n`);

  const started = performance.now();
  let last = { t: started, presented: new Map<number, number>(), painted: new Map<number, number>(), vncUpdates: new Map<string, number>() };
  const figuresLines = (overall = false): { lines: string[]; json: unknown } => {
    const now = performance.now();
    if (overall) last = { t: started, presented: new Map(), painted: new Map(), vncUpdates: new Map() };
    const vncFigs = vnc?.figures() ?? [];
    const dt = (now - last.t) / 1000;
    const figs: ConnectorFigures[] = feed.figures();
    const rows = figs.map((f, i) => {
      const g = guestFigures.get(i);
      const fps = dt > 0 ? (f.presented - (last.presented.get(f.id) ?? 0)) / dt : 0;
      const paintFps = dt > 0 ? (f.painted - (last.painted.get(f.id) ?? 0)) / dt : 0;
      const row = { name: f.name, width: f.width, height: f.height, format: f.format, fps, flips: f.presented, flipP50Ms: g?.p50 ?? 0, flipP99Ms: g?.p99 ?? 0, viewerFps: paintFps, painted: f.painted, skipped: f.skipped, paintP50Ms: percentile(f.latencies.slice(-120).sort((a, b) => a - b), 0.5), viewerBytes: f.bytes, viewerEncodeMs: Math.round(f.encodeMs * 10) / 10 };
      const v = vncFigs.find((x) => x.name === f.name);
      if (!v) return row;
      const vncFps = dt > 0 ? (v.updates - (last.vncUpdates.get(v.name) ?? 0)) / dt : 0;
      return { ...row, vncClients: v.clients, vncFps, vncUpdates: v.updates, vncP50Ms: percentile(v.latencies.slice(-120).sort((a, b) => a - b), 0.5), vncBytes: v.bytes, vncEncodeMs: Math.round(v.encodeMs * 10) / 10 };
    });
    last = { t: now, presented: new Map(figs.map((f) => [f.id, f.presented])), painted: new Map(figs.map((f) => [f.id, f.painted])), vncUpdates: new Map(vncFigs.map((v) => [v.name, v.updates])) };
    const lines = rows.map((r) => {
      const v = viewer ? `  viewer ${fmt(r.viewerFps, 0)} fps, paint ${fmt(r.paintP50Ms)} ms, skipped ${r.skipped}` : '';
      const n = 'vncClients' in r ? `  vnc ${r.vncClients} client${r.vncClients === 1 ? '' : 's'}${r.vncClients > 0 ? ` ${fmt(r.vncFps, 0)} fps, sent ${fmt(r.vncP50Ms)} ms after the flip` : ''}` : '';
      return `  ${r.name.padEnd(20)} ${`${r.width}x${r.height}`.padEnd(10)} ${r.format.padEnd(9)} ${fmt(r.fps).padStart(5)} fps  flip p50 ${fmt(r.flipP50Ms, 2)} ms p99 ${fmt(r.flipP99Ms, 2)} ms  ${r.flips} frames${v}${n}`;
    });
    return { lines, json: { t: Math.round(now - started), connectors: rows } };
  };
  const show = (final = false): void => {
    const { lines, json } = figuresLines(final);
    if (o.json) {
      io.stdout(`${JSON.stringify(json)}\n`);
      return;
    }
    if (io.tty && !final) {
      io.stdout(`${drawn > 0 ? `\x1b[${drawn}F\x1b[J` : ''}${lines.join('\n')}\n`);
      drawn = lines.length;
    } else if (final) {
      io.stdout(`${lines.join('\n')}\n`);
    }
  };

  // Run until interrupted, the guest ends, or every connector presented `frames` frames.
  let reason = 'guest' as 'interrupt' | 'frames' | 'guest';
  let exit: DomainExit | undefined;
  await new Promise<void>((resolve) => {
    const tick = setInterval(show, o.intervalMs ?? 1000);
    // The --frames check has its own, faster timer: figures keep their interval.
    const check =
      o.frames === undefined
        ? undefined
        : setInterval(() => {
            const figs = feed.figures();
            if (figs.length >= expected && figs.every((f) => f.presented >= o.frames!)) {
              reason = 'frames';
              finish();
            }
          }, 50);
    const finish = (): void => {
      clearInterval(tick);
      clearInterval(check);
      resolve();
    };
    void o.interrupt.then(() => {
      reason = 'interrupt';
      finish();
    });
    void guest.handle.exited.then((e) => {
      exit = e;
      finish();
    });
  });

  show(true);
  // Snapshots of what each connector shows now, before the guest lets go of its buffers.
  if (o.snapshotDir) {
    mkdirSync(o.snapshotDir, { recursive: true });
    for (const f of feed.frames()) {
      const file = join(o.snapshotDir, `${f.name.replace(/[^A-Za-z0-9._-]+/g, '_')}.png`);
      writeFileSync(file, framePng(f.frame, f.width, f.height));
      io.stdout(`snapshot: ${file}\n`);
    }
  }
  exit ??= reason === 'guest' ? await guest.handle.exited : await ts.shutdownDomain(guest.domid, 5000);
  await ts.settled();
  port1.close();
  await backend.stop();
  await viewer?.close();
  await vnc?.close();
  await feed.close();
  // The backend releases asynchronously: give it a moment to let go of the last grants.
  let leaks = leaksAfter(ts, base);
  for (let i = 0; i < 50 && leaks.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 20));
    leaks = leaksAfter(ts, base);
  }
  await ts.close();

  let code = 0;
  if (guestError?.stage === 'load') {
    const first = guestError.message.split('\n').find((l) => l.trim() !== '') ?? guestError.message;
    io.stderr(`vdispl: cannot load the guest program ${o.program}: ${first.trim()}\n`);
    code = 1;
  } else if (guestError) {
    io.stderr(`vdispl: the guest program threw:\n${guestError.stack ?? guestError.message}\n`);
    code = 1;
  } else if (exit.reason === 'crash') {
    io.stderr(`vdispl: guest ${o.guestName} crashed: ${exit.error ?? 'unknown error'}\n`);
    code = 1;
  }
  if (leaks.length > 0) {
    io.stderr(`vdispl: resources not released after shutdown: ${leaks.join('; ')}\n`);
    code = code || 1;
  } else {
    io.stdout(`stopped (${reason === 'interrupt' ? 'interrupted' : reason === 'frames' ? `${o.frames} frames per connector` : 'the guest program ended'}); every grant, mapping, page and port released\n`);
  }
  return { code, leaks };
}

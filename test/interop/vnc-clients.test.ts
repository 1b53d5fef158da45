/**
 * The VNC server (src/present/vnc-server.ts) judged by real VNC clients nobody here wrote, each
 * against a session (runSession, in this process) running the guest program
 * guests/vnc-pattern.ts, whose pictures are recomputed here from the same pure functions and
 * converted with toRgba, the conversion the viewer and PNG snapshots use:
 *
 * - gvnccapture (gtk-vnc 1.3.1, Debian gvncviewer): RFB 3.8, security None or VNC (it asks for
 *   the password on a terminal, so it runs under `script` for that), exclusive (shared flag 0),
 *   keeps the server's pixel format, encodings DesktopSize, ZRLE, Hextile, RRE, CopyRect, Raw; one
 *   full update saved as PNG. XRGB8888 at 333x177 and 1920x1080: pixel for pixel. It saves its
 *   picture as soon as a rectangle reaching the bottom-right corner arrives (gvnccapture.c: "Crude
 *   attempt to see if we've got a complete frame"), so a frame of repeated tiles (CopyRect) checks
 *   that the server sends that corner last.
 *   Not tested with a 16 bpp connector: gvnccapture itself garbles those (it passes its local and
 *   remote pixel formats to vnc_base_framebuffer_new in swapped order, so it stores 2-byte pixels
 *   in its 4-byte RGBA buffer: a half-width picture. The swap cancels out for 32 bpp formats).
 * - vncsnapshot 1.2a (TightVNC-based): RFB 3.3, shared, SetPixelFormat 32 bpp with red at 0, blue
 *   at 16 (so the server converts every pixel, even XRGB8888's), JPEG output (RGB, quality 100:
 *   nearly lossless, compared within the tolerance below); its default encodings, and ZRLE, Raw,
 *   Zlib, CopyRect chosen with -encodings; with VNC authentication from a vncpasswd file (right and wrong
 *   password); an RGB565 connector converted to its 32 bpp format.
 * - TigerVNC's vncviewer 1.12 under Xvfb (24-bit): while the guest animates, the viewer turns on
 *   continuous updates (its log says so) and then gets an update per guest frame without asking
 *   for each (a tap between the two counts its FramebufferUpdateRequests); two screenshots a second
 *   apart differ where the square moves and equal the guest's frame exactly everywhere else; and
 *   once with VNC authentication (-passwd), a wrong password refused.
 *
 * A tap (a TCP relay that parses what the client sends) records each client's messages: the
 * encodings and pixel formats asserted here are what the clients really asked for.
 *
 * Needs the Debian packages gvncviewer, vncsnapshot, tigervnc-viewer, tigervnc-tools, xvfb,
 * x11-apps, netpbm and bsdutils (for `script`); .ci/run installs them: a missing tool is a
 * failure, never a skip.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket, connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decode } from 'fast-png';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dumbLayout, pixelFormatByName } from '../../src/abi/fourcc.js';
import { toRgba } from '../../src/present/pixels.js';
import type { VncServer } from '../../src/present/vnc-server.js';
import { runSession, type SessionResult } from '../../src/run/session.js';
import { parseVdisplSpec } from '../../src/toolstack/vdispl-spec.js';
import { BAND_ROWS, MOVER, MOVER_Y, type PatternKind, type VncPatternArgs, vncPattern } from './guests/vnc-pattern.js';
import { onPath } from '../support/on-path.js';

const GUEST = new URL('./guests/vnc-pattern.ts', import.meta.url).href;

/** Each tool and the Debian package it comes from (checked with dpkg -S). */
const TOOLS: readonly (readonly [string, string])[] = [
  ['gvnccapture', 'gvncviewer'],
  ['vncsnapshot', 'vncsnapshot'],
  ['xtigervncviewer', 'tigervnc-viewer'],
  ['tigervncpasswd', 'tigervnc-tools'],
  ['Xvfb', 'xvfb'],
  ['xwd', 'x11-apps'],
  ['xwdtopnm', 'netpbm'],
  ['jpegtopnm', 'netpbm'],
  ['script', 'bsdutils'],
];

/**
 * JPEG tolerance for vncsnapshot (it writes quality 100 with R, G and B as the components, no
 * YCbCr and no subsampling (sampling 1x1 each): nearly lossless):
 * per channel, the largest absolute difference from the expected picture, and the mean over all
 * channels of all pixels. Measured (libjpeg-turbo 2.1, Debian 12): XRGB8888 max 1, mean 0.056-0.068;
 * RGB565 max 2, mean 0.064-0.066 (noise tiles included). A server widening RGB565's 5-bit
 * channels by a shift instead of bit replication would be off by up to 7; swapped or misplaced
 * channels by far more.
 */
const JPEG_MAX_ERROR = 4;
const JPEG_MEAN_ERROR = 0.25;

// ---------------------------------------------------------------------------------------------
// Processes

const children = new Set<ChildProcess>();

/** Kills a child's whole process group (they are all started detached, as group leaders). */
function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  readonly stdout: Buffer;
  readonly stderr: string;
}

interface RunOptions {
  readonly timeoutMs?: number;
  readonly input?: Uint8Array;
  /** Written to stdin once stdout shows this prompt (stdin stays open until the end). */
  readonly answer?: { readonly prompt: string; readonly text: string };
}

/** Runs a command in its own process group; resolves (never rejects on a failure status) when it ends or is killed at the timeout. */
function run(cmd: string, args: readonly string[], o: RunOptions = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(child);
    const out: Buffer[] = [];
    let err = '';
    let timedOut = false;
    // The answer: written a moment after the prompt shows, and again if the terminal echoed it
    // (it arrived before the program turned echo off, so the program's TCSAFLUSH dropped it).
    let sent = 0;
    let pending = false;
    const answer = (): void => {
      const a = o.answer;
      if (!a || pending || sent >= 5) return;
      const text = Buffer.concat(out).toString('latin1');
      const at = text.indexOf(a.prompt);
      if (at < 0) return;
      const echoed = text.slice(at).split(a.text.trim()).length - 1;
      if (echoed < sent) return;
      pending = true;
      setTimeout(() => {
        pending = false;
        sent++;
        child.stdin.write(a.text);
      }, 200);
    };
    child.stdout.on('data', (d: Buffer) => {
      out.push(d);
      answer();
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    child.stdin.on('error', () => undefined);
    if (o.input) child.stdin.end(o.input);
    else if (!o.answer) child.stdin.end();
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, o.timeoutMs ?? 20_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      children.delete(child);
      reject(new Error(`${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, timedOut, stdout: Buffer.concat(out), stderr: err });
    });
  });
}


const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

// ---------------------------------------------------------------------------------------------
// Sessions

interface Session {
  readonly vnc: VncServer;
  /** Connector n's VNC port. */
  readonly ports: readonly number[];
  readonly log: string[];
  stop(): Promise<SessionResult>;
}

const sessions = new Set<Session>();

/** A free-looking port base in 15900..25899 (gvnccapture takes display numbers: port - 5900). */
function randomBase(count: number): number {
  return 15900 + Math.floor(Math.random() * (10_000 - count));
}

/**
 * Starts a session of the vnc-pattern guest on `connectors` ("a:333x177;b:1920x1080") with VNC
 * on a fixed random port base (another base if one is taken), and waits until every connector
 * presented a frame.
 */
async function startSession(connectors: string, args: VncPatternArgs, password?: string): Promise<Session> {
  for (let attempt = 0; attempt < 8; attempt++) {
    const count = connectors.split(';').length;
    const basePort = randomBase(count);
    let stop!: () => void;
    const interrupt = new Promise<void>((r) => (stop = r));
    const log: string[] = [];
    let ready: ((v: VncServer) => void) | undefined;
    const vncReady = new Promise<VncServer>((r) => (ready = r));
    const done = runSession({
      guestName: 'vnc',
      devices: [parseVdisplSpec(`backend=0,connectors=${connectors}`)],
      program: GUEST,
      programArgs: args,
      vnc: { basePort, password },
      io: { tty: false, stdout: (t) => log.push(t), stderr: (t) => log.push(t) },
      interrupt,
      onReady: (s) => ready?.(s.vnc!),
    });
    const first = await Promise.race([vncReady, done]);
    if (!('figures' in first)) {
      if (first.code === 1 && log.some((l) => l.includes('cannot serve VNC'))) continue;
      throw new Error(`the session did not start (code ${first.code}):\n${log.join('')}`);
    }
    const vnc = first;
    let stopped: Promise<SessionResult> | undefined;
    const session: Session = {
      vnc,
      ports: vnc.ports().map((p) => p.port),
      log,
      stop: () => {
        stopped ??= (async () => {
          stop();
          const r = await done;
          sessions.delete(session);
          return r;
        })();
        return stopped;
      },
    };
    sessions.add(session);
    await waitFor('every connector to present a frame', () => vnc.figures().every((f) => f.presented > 0), 30_000);
    return session;
  }
  throw new Error('no free VNC port base found in 8 attempts');
}

async function stopSession(s: Session | undefined): Promise<void> {
  if (!s) return;
  const r = await s.stop();
  expect(r.code, s.log.join('')).toBe(0);
}

// ---------------------------------------------------------------------------------------------
// The tap: a TCP relay recording what each client sends

type TapMessage =
  | { readonly type: 'setPixelFormat'; readonly bpp: number; readonly depth: number; readonly bigEndian: boolean; readonly trueColour: boolean; readonly max: readonly number[]; readonly shift: readonly number[] }
  | { readonly type: 'setEncodings'; readonly encodings: readonly number[] }
  | { readonly type: 'updateRequest'; readonly incremental: boolean; readonly at: number }
  | { readonly type: 'enableContinuousUpdates'; readonly enable: boolean; readonly at: number }
  | { readonly type: 'fence'; readonly flags: number }
  | { readonly type: 'input' }
  | { readonly type: 'other'; readonly code: number };

interface TapConnection {
  version: string;
  securityType: number | undefined;
  shared: boolean | undefined;
  readonly messages: TapMessage[];
  serverBytes: number;
}

/** Parses a client's side of an RFB session as it streams by (the handshake, then messages). */
class ClientStream {
  private buf = Buffer.alloc(0);
  private state: 'version' | 'security' | 'auth' | 'init' | 'messages' | 'lost' = 'version';

  constructor(
    readonly conn: TapConnection,
    private readonly vncAuth: boolean,
  ) {}

  push(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      const used = this.step();
      if (used === 0) return;
      this.buf = this.buf.subarray(used);
    }
  }

  /** Consumes one item; returns the bytes used, 0 when more are needed. */
  private step(): number {
    const b = this.buf;
    switch (this.state) {
      case 'version':
        if (b.length < 12) return 0;
        this.conn.version = b.toString('latin1', 4, 11);
        // 3.3: the server picks the security type, the client sends nothing for it.
        this.state = this.conn.version === '003.003' ? (this.vncAuth ? 'auth' : 'init') : 'security';
        return 12;
      case 'security':
        if (b.length < 1) return 0;
        this.conn.securityType = b[0]!;
        this.state = b[0] === 2 ? 'auth' : 'init';
        return 1;
      case 'auth':
        if (b.length < 16) return 0;
        this.state = 'init';
        return 16;
      case 'init':
        if (b.length < 1) return 0;
        this.conn.shared = b[0] !== 0;
        this.state = 'messages';
        return 1;
      case 'lost':
        return b.length;
      case 'messages':
        return this.message();
    }
  }

  private message(): number {
    const b = this.buf;
    if (b.length < 1) return 0;
    const m = this.conn.messages;
    const at = performance.now();
    const type = b[0]!;
    switch (type) {
      case 0:
        if (b.length < 20) return 0;
        m.push({ type: 'setPixelFormat', bpp: b[4]!, depth: b[5]!, bigEndian: b[6] !== 0, trueColour: b[7] !== 0, max: [b.readUInt16BE(8), b.readUInt16BE(10), b.readUInt16BE(12)], shift: [b[14]!, b[15]!, b[16]!] });
        return 20;
      case 2: {
        if (b.length < 4) return 0;
        const n = b.readUInt16BE(2);
        if (b.length < 4 + 4 * n) return 0;
        const encodings: number[] = [];
        for (let i = 0; i < n; i++) encodings.push(b.readInt32BE(4 + 4 * i));
        m.push({ type: 'setEncodings', encodings });
        return 4 + 4 * n;
      }
      case 3:
        if (b.length < 10) return 0;
        m.push({ type: 'updateRequest', incremental: b[1] !== 0, at });
        return 10;
      case 4:
        if (b.length < 8) return 0;
        m.push({ type: 'input' });
        return 8;
      case 5:
        if (b.length < 6) return 0;
        m.push({ type: 'input' });
        return 6;
      case 6: {
        if (b.length < 8) return 0;
        const n = b.readUInt32BE(4);
        if (b.length < 8 + n) return 0;
        m.push({ type: 'other', code: 6 });
        return 8 + n;
      }
      case 150:
        if (b.length < 10) return 0;
        m.push({ type: 'enableContinuousUpdates', enable: b[1] !== 0, at });
        return 10;
      case 248: {
        if (b.length < 9) return 0;
        const n = b[8]!;
        if (b.length < 9 + n) return 0;
        m.push({ type: 'fence', flags: b.readUInt32BE(4) });
        return 9 + n;
      }
      default:
        // Not a message this tap knows: stop parsing (the bytes are still relayed).
        m.push({ type: 'other', code: type });
        this.state = 'lost';
        return b.length;
    }
  }
}

interface Tap {
  readonly port: number;
  readonly connections: TapConnection[];
  close(): Promise<void>;
}

/** A relay on a free port >= 5900 (so gvnccapture can name it by display number) to `target`. */
async function startTap(target: number, vncAuth: boolean): Promise<Tap> {
  const connections: TapConnection[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const conn: TapConnection = { version: '', securityType: undefined, shared: undefined, messages: [], serverBytes: 0 };
    connections.push(conn);
    const parser = new ClientStream(conn, vncAuth);
    const upstream = connect(target, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    client.on('data', (d: Buffer) => {
      parser.push(d);
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      conn.serverBytes += d.length;
      client.write(d);
    });
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  for (let attempt = 0; ; attempt++) {
    const port = randomBase(1);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      });
      break;
    } catch (e) {
      if (attempt >= 8) throw e;
    }
  }
  const port = (server.address() as { port: number }).port;
  return {
    port,
    connections,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Pictures

interface Picture {
  readonly width: number;
  readonly height: number;
  /** Bytes per pixel in `data` (3: RGB, 4: RGBA); the first three are R, G, B. */
  readonly channels: number;
  readonly data: Uint8Array;
}

const expectedCache = new Map<string, Uint8Array>();

/** The guest's frame for `kind` as RGBA (toRgba of the framebuffer bytes the guest writes). */
function expectedRgba(kind: PatternKind, formatName: string, width: number, height: number): Uint8Array {
  const key = `${kind}/${formatName}/${width}x${height}`;
  let e = expectedCache.get(key);
  if (!e) {
    const format = pixelFormatByName(formatName)!;
    const lay = dumbLayout(width, height, format.bpp);
    if (!lay.ok) throw new Error(lay.error.message);
    const bytes = vncPattern(kind, format, width, height, lay.value.pitch);
    e = toRgba({ bytes, offset: 0, pitch: lay.value.pitch, width, height, format }) as Uint8Array;
    expectedCache.set(key, e);
  }
  return e;
}

function readPng(bytes: Uint8Array): Picture {
  const png = decode(bytes);
  if (png.depth !== 8) throw new Error(`a ${png.depth}-bit PNG`);
  return { width: png.width, height: png.height, channels: png.channels, data: png.data as Uint8Array };
}

/** Parses a binary PPM (P6, maxval 255), as netpbm writes it. */
function readPpm(bytes: Buffer): Picture {
  let o = 0;
  const token = (): string => {
    for (;;) {
      while (o < bytes.length && /\s/.test(String.fromCharCode(bytes[o]!))) o++;
      if (bytes[o] !== 0x23) break;
      while (o < bytes.length && bytes[o] !== 0x0a) o++;
    }
    const start = o;
    while (o < bytes.length && !/\s/.test(String.fromCharCode(bytes[o]!))) o++;
    return bytes.toString('latin1', start, o);
  };
  const magic = token();
  const width = Number(token());
  const height = Number(token());
  const maxval = Number(token());
  o++; // the single whitespace byte before the raster
  if (magic !== 'P6' || maxval !== 255) throw new Error(`not an 8-bit P6 PPM (${magic}, maxval ${maxval})`);
  if (bytes.length - o < width * height * 3) throw new Error(`a PPM of ${width}x${height} with only ${bytes.length - o} raster bytes`);
  return { width, height, channels: 3, data: new Uint8Array(bytes.buffer, bytes.byteOffset + o, width * height * 3) };
}

interface Rows {
  readonly from: number;
  readonly to: number;
}

/** Pixels of `got` (rows `rows`) whose RGB differs from `expected` (RGBA): count, first few, and the 64x64 tiles they are in. */
function diffExact(got: Picture, expected: Uint8Array, width: number, rows: Rows = { from: 0, to: got.height }): { count: number; report: string } {
  let count = 0;
  const first: string[] = [];
  const tiles = new Set<string>();
  for (let y = rows.from; y < rows.to; y++) {
    for (let x = 0; x < width; x++) {
      const g = (y * got.width + x) * got.channels;
      const e = (y * width + x) * 4;
      if (got.data[g] !== expected[e] || got.data[g + 1] !== expected[e + 1] || got.data[g + 2] !== expected[e + 2]) {
        count++;
        tiles.add(`(${x >> 6},${y >> 6})`);
        if (first.length < 4) first.push(`(${x},${y}) got ${got.data[g]},${got.data[g + 1]},${got.data[g + 2]}${got.channels === 4 ? ` a${got.data[g + 3]}` : ''} expected ${expected[e]},${expected[e + 1]},${expected[e + 2]}`);
      }
    }
  }
  const t = [...tiles];
  return { count, report: count === 0 ? 'identical' : `${count} pixels differ, first ${first.join('; ')}; in ${t.length} tiles of 64x64: ${t.slice(0, 24).join(' ')}${t.length > 24 ? ' ...' : ''}` };
}

/** Per-channel absolute differences of a lossy picture: the largest and the mean. */
function diffLossy(got: Picture, expected: Uint8Array): { max: number; mean: number } {
  let max = 0;
  let sum = 0;
  const n = got.width * got.height;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const d = Math.abs(got.data[i * got.channels + c]! - expected[i * 4 + c]!);
      sum += d;
      if (d > max) max = d;
    }
  }
  return { max, mean: sum / (n * 3) };
}

// ---------------------------------------------------------------------------------------------
// The clients

let dir: string;

function file(name: string): string {
  return path.join(dir, name);
}

/** gvnccapture: 127.0.0.1:D reaches port 5900 + D (its `::port` form does not exist). */
async function gvnccapture(port: number, out: string, password?: string): Promise<Run> {
  const display = port - 5900;
  if (password === undefined) return run('gvnccapture', ['-q', `127.0.0.1:${display}`, out], { timeoutMs: 20_000 });
  // It reads the password from its terminal (turning echo off; without a terminal it gives up):
  // `script` gives it one, and the answer goes in once the prompt is there (it flushes input typed earlier).
  return run('script', ['-qec', `gvnccapture -q 127.0.0.1:${display} '${out}'`, '/dev/null'], { timeoutMs: 20_000, answer: { prompt: 'Password:', text: `${password}\n` } });
}

/** vncsnapshot: display numbers only (`host::port` is taken as a display and fails). */
function vncsnapshot(port: number, out: string, opts: { encodings?: string; passwd?: string; timeoutMs?: number } = {}): Promise<Run> {
  const args = ['-quiet'];
  if (opts.encodings !== undefined) args.push('-encodings', opts.encodings);
  if (opts.passwd !== undefined) args.push('-passwd', opts.passwd);
  args.push(`127.0.0.1:${port - 5900}`, out);
  return run('vncsnapshot', args, { timeoutMs: opts.timeoutMs ?? 20_000 });
}

async function jpegPicture(jpeg: string): Promise<Picture> {
  const r = await run('jpegtopnm', [jpeg]);
  if (r.code !== 0) throw new Error(`jpegtopnm ${jpeg}: ${r.stderr}`);
  return readPpm(r.stdout);
}

async function vncpasswdFile(name: string, password: string): Promise<string> {
  const r = await run('tigervncpasswd', ['-f'], { input: Buffer.from(`${password}\n`) });
  if (r.code !== 0 || r.stdout.length !== 8) throw new Error(`tigervncpasswd -f: status ${r.code}, ${r.stdout.length} bytes: ${r.stderr}`);
  const f = file(name);
  await writeFile(f, r.stdout);
  return f;
}

function describeRun(what: string, r: Run): string {
  return `${what}: status ${r.code}${r.signal ? ` (${r.signal})` : ''}${r.timedOut ? ', killed at the timeout' : ''}\nstdout: ${r.stdout.toString('utf8').trim()}\nstderr: ${r.stderr.trim()}`;
}

function lastPixelFormat(c: TapConnection | undefined): TapMessage | undefined {
  return c?.messages.filter((m) => m.type === 'setPixelFormat').at(-1);
}

function encodingsOf(c: TapConnection | undefined): readonly number[] {
  const m = c?.messages.filter((x) => x.type === 'setEncodings').at(-1);
  return m?.type === 'setEncodings' ? m.encodings : [];
}

beforeAll(async () => {
  const missing: string[] = [];
  for (const [tool, pkg] of TOOLS) if (!(await onPath(tool))) missing.push(`${tool} (Debian package ${pkg})`);
  if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}: .ci/run installs them`);
  dir = await mkdtemp(path.join(tmpdir(), 'vdispl-vnc-'));
});

afterAll(async () => {
  for (const c of children) killGroup(c);
  for (const s of sessions) await s.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

describe('gvnccapture (gtk-vnc, RFB 3.8, the server pixel format, ZRLE)', () => {
  let tiles: Session | undefined;
  let repeated: Session | undefined;
  beforeAll(async () => {
    tiles = await startSession('a:333x177;b:1920x1080', { kind: 'tiles' });
  });
  afterAll(async () => {
    await stopSession(tiles);
    await stopSession(repeated);
  });

  it.each([
    ['333x177', 0, 333, 177],
    ['1920x1080', 1, 1920, 1080],
  ] as const)('XRGB8888 %s: its PNG equals the guest frame pixel for pixel', async (name, index, width, height) => {
    const tap = await startTap(tiles!.ports[index]!, false);
    try {
      const out = file(`gvnccapture-${name}.png`);
      const r = await gvnccapture(tap.port, out);
      expect(r.code, describeRun('gvnccapture', r)).toBe(0);
      const got = readPng(await readFile(out));
      expect([got.width, got.height]).toEqual([width, height]);
      const d = diffExact(got, expectedRgba('tiles', 'XRGB8888', width, height), width);
      expect(d.report, `gvnccapture of ${name}`).toBe('identical');
      // What it asked for: RFB 3.8, exclusive, no SetPixelFormat, ZRLE first.
      const c = tap.connections[0];
      expect(c?.version).toBe('003.008');
      expect(c?.shared).toBe(false);
      expect(lastPixelFormat(c)).toBeUndefined();
      expect(encodingsOf(c)).toEqual([-223, 16, 5, 2, 1, 0]);
    } finally {
      await tap.close();
    }
  });

  it('repeated tiles (sent as CopyRect): the picture is complete when gvnccapture saves it', async () => {
    // gvnccapture saves as soon as a rectangle reaching the bottom-right corner arrives. At
    // 333x177 the last (partial) tile is unique, so unless the server sends it after the
    // CopyRects, the copied tiles are missing (transparent) from the PNG.
    repeated = await startSession('a:333x177', { kind: 'repeated' });
    const out = file('gvnccapture-repeated.png');
    const r = await gvnccapture(repeated.ports[0]!, out);
    expect(r.code, describeRun('gvnccapture', r)).toBe(0);
    const got = readPng(await readFile(out));
    const d = diffExact(got, expectedRgba('repeated', 'XRGB8888', 333, 177), 333);
    expect(d.report, 'gvnccapture of repeated tiles 333x177 (missing tiles = CopyRects after the bottom-right rectangle)').toBe('identical');
  });

  it('with VNC authentication: the right password gets the picture, a wrong one exits non-zero', async () => {
    const s = await startSession('a:333x177', { kind: 'tiles' }, 'Pa55word');
    try {
      const out = file('gvnccapture-auth.png');
      const r = await gvnccapture(s.ports[0]!, out, 'Pa55word');
      expect(r.code, describeRun('gvnccapture (right password)', r)).toBe(0);
      const d = diffExact(readPng(await readFile(out)), expectedRgba('tiles', 'XRGB8888', 333, 177), 333);
      expect(d.report).toBe('identical');
      const bad = await gvnccapture(s.ports[0]!, file('gvnccapture-bad.png'), 'wrong');
      expect(bad.code, describeRun('gvnccapture (wrong password)', bad)).not.toBe(0);
      expect(bad.timedOut).toBe(false);
      expect(s.log.join('')).toContain('VNC authentication failed (wrong password)');
    } finally {
      await stopSession(s);
    }
  });
});

describe('vncsnapshot (RFB 3.3, SetPixelFormat 32 bpp red at 0, JPEG)', () => {
  let tiles: Session | undefined;
  beforeAll(async () => {
    tiles = await startSession('a:333x177;b:1920x1080', { kind: 'tiles' });
  });
  afterAll(async () => {
    await stopSession(tiles);
  });

  async function snapshotMatches(s: Session, index: number, kind: PatternKind, format: string, width: number, height: number, opts: { encodings?: string; passwd?: string }, name: string): Promise<{ max: number; mean: number; tap: Tap }> {
    const tap = await startTap(s.ports[index]!, opts.passwd !== undefined);
    try {
      const out = file(`${name}.jpg`);
      // A snapshot takes well under a second; 10 s means it is stuck.
      const r = await vncsnapshot(tap.port, out, { ...opts, timeoutMs: 10_000 });
      expect(r.code, describeRun(`vncsnapshot ${name}`, r)).toBe(0);
      const got = await jpegPicture(out);
      expect([got.width, got.height]).toEqual([width, height]);
      const d = diffLossy(got, expectedRgba(kind, format, width, height));
      expect(d.max, `${name}: largest channel error (mean ${d.mean.toFixed(3)})`).toBeLessThanOrEqual(JPEG_MAX_ERROR);
      expect(d.mean, `${name}: mean channel error`).toBeLessThanOrEqual(JPEG_MEAN_ERROR);
      const c = tap.connections[0];
      expect(c?.version).toBe('003.003');
      expect(c?.shared).toBe(true);
      expect(lastPixelFormat(c)).toEqual({ type: 'setPixelFormat', bpp: 32, depth: 24, bigEndian: false, trueColour: true, max: [255, 255, 255], shift: [0, 8, 16] });
      return { ...d, tap };
    } finally {
      await tap.close();
    }
  }

  it.each([
    ['zrle', 333, 177, 0],
    ['zrle', 1920, 1080, 1],
    ['raw', 333, 177, 0],
    ['zlib', 333, 177, 0],
  ] as const)('XRGB8888, -encodings %s, %ix%i: within the JPEG tolerance', async (encodings, width, height, index) => {
    const r = await snapshotMatches(tiles!, index, 'tiles', 'XRGB8888', width, height, { encodings }, `vncsnapshot-${encodings}-${width}x${height}`);
    expect(encodingsOf(r.tap.connections[0])[0]).toBe(encodings === 'zrle' ? 16 : encodings === 'raw' ? 0 : 6);
  });

  it('its default encodings (LastRect listed but not implemented by vncsnapshot): it finishes and the picture matches', async () => {
    // vncsnapshot lists LastRect (-224) among its default encodings, yet its decoder reads
    // exactly the count the update header gives; a count of 0xFFFF ended by a LastRect
    // rectangle leaves it waiting for 65534 more rectangles ("Zero size rect - ignoring").
    const r = await snapshotMatches(tiles!, 0, 'tiles', 'XRGB8888', 333, 177, {}, 'vncsnapshot-default');
    const enc = encodingsOf(r.tap.connections[0]);
    expect(enc.slice(0, 3)).toEqual([-224, 1, 0]);
  });

  it('repeated tiles with -encodings "copyrect zrle": the CopyRects land where they belong', async () => {
    const s = await startSession('a:333x177;b:1920x1080', { kind: 'repeated' });
    try {
      await snapshotMatches(s, 0, 'repeated', 'XRGB8888', 333, 177, { encodings: 'copyrect zrle' }, 'vncsnapshot-copyrect-333');
      await snapshotMatches(s, 1, 'repeated', 'XRGB8888', 1920, 1080, { encodings: 'copyrect zrle' }, 'vncsnapshot-copyrect-1920');
    } finally {
      await stopSession(s);
    }
  });

  it('an RGB565 connector, converted to its 32 bpp format: within the JPEG tolerance', async () => {
    const s = await startSession('a:333x177;b:1920x1080', { kind: 'tiles', format: 'RGB565' });
    try {
      await snapshotMatches(s, 0, 'tiles', 'RGB565', 333, 177, { encodings: 'zrle' }, 'vncsnapshot-rgb565-zrle-333');
      await snapshotMatches(s, 1, 'tiles', 'RGB565', 1920, 1080, { encodings: 'zrle' }, 'vncsnapshot-rgb565-zrle-1920');
      await snapshotMatches(s, 0, 'tiles', 'RGB565', 333, 177, { encodings: 'raw' }, 'vncsnapshot-rgb565-raw-333');
      expect(s.log.join('')).toContain('16bpp depth 16 LE r5@11 g6@5 b5@0');
    } finally {
      await stopSession(s);
    }
  });

  it('with VNC authentication from a vncpasswd file: the right password works, a wrong one exits non-zero', async () => {
    const s = await startSession('a:333x177', { kind: 'tiles' }, 'Pa55word');
    try {
      const good = await vncpasswdFile('good.passwd', 'Pa55word');
      const bad = await vncpasswdFile('bad.passwd', 'Pa55wore');
      await snapshotMatches(s, 0, 'tiles', 'XRGB8888', 333, 177, { encodings: 'zrle', passwd: good }, 'vncsnapshot-auth');
      const r = await vncsnapshot(s.ports[0]!, file('vncsnapshot-bad.jpg'), { encodings: 'zrle', passwd: bad, timeoutMs: 10_000 });
      expect(r.code, describeRun('vncsnapshot (wrong password)', r)).not.toBe(0);
      expect(r.timedOut).toBe(false);
      expect(r.stderr).toContain('VNC authentication failed');
    } finally {
      await stopSession(s);
    }
  });
});

describe('TigerVNC vncviewer under Xvfb', () => {
  const WIDTH = 640;
  const HEIGHT = 480;
  let xvfb: ChildProcess | undefined;
  let display = '';

  beforeAll(async () => {
    // -displayfd: Xvfb picks a free display and writes its number on fd 3.
    const x = spawn('Xvfb', ['-displayfd', '3', '-screen', '0', `${WIDTH}x${HEIGHT}x24`, '-nolisten', 'tcp'], { detached: true, stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
    xvfb = x;
    children.add(x);
    let err = '';
    x.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    display = await new Promise<string>((resolve, reject) => {
      let got = '';
      const fd3 = x.stdio[3] as NodeJS.ReadableStream;
      fd3.on('data', (d: Buffer) => {
        got += d.toString();
        if (got.includes('\n')) resolve(`:${got.trim()}`);
      });
      x.on('exit', (code) => reject(new Error(`Xvfb exited (${code}): ${err}`)));
      setTimeout(() => reject(new Error(`Xvfb did not start: ${err}`)), 15_000);
    });
  });
  afterAll(() => {
    if (xvfb) {
      killGroup(xvfb, 'SIGTERM');
      children.delete(xvfb);
    }
  });

  interface Viewer {
    readonly child: ChildProcess;
    log(): string;
    readonly exited: Promise<number | null>;
  }

  function startViewer(port: number, extra: readonly string[] = []): Viewer {
    const args = ['-ViewOnly', '-FullScreen', '-Shared', '-MenuKey=', '-AutoSelect=0', '-FullColor', '-PreferredEncoding=ZRLE', '-AlertOnFatalError=0', ...extra, '-Log', '*:stderr:30', `127.0.0.1::${port}`];
    // Log level 30: at 100 the viewer overlays its statistics graph on the picture.
    const child = spawn('xtigervncviewer', args, { detached: true, env: { ...process.env, DISPLAY: display }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let text = '';
    child.stdout?.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (text += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => {
      children.delete(child);
      r(code);
    }));
    return { child, log: () => text, exited };
  }

  async function stopViewer(v: Viewer | undefined): Promise<void> {
    if (!v) return;
    killGroup(v.child, 'SIGTERM');
    await Promise.race([v.exited, sleep(3000)]);
    killGroup(v.child);
  }

  async function screenshot(): Promise<Picture> {
    const xwd = await run('xwd', ['-root', '-silent', '-display', display]);
    if (xwd.code !== 0) throw new Error(describeRun('xwd', xwd));
    const pnm = await run('xwdtopnm', [], { input: xwd.stdout });
    if (pnm.code !== 0) throw new Error(describeRun('xwdtopnm', pnm));
    return readPpm(pnm.stdout);
  }

  /** The differing pixels' bounding box in rows [0, BAND_ROWS). */
  function bandChange(got: Picture, expected: Uint8Array): { count: number; box: { x0: number; y0: number; x1: number; y1: number } | undefined } {
    let count = 0;
    let box: { x0: number; y0: number; x1: number; y1: number } | undefined;
    for (let y = 0; y < BAND_ROWS; y++) {
      for (let x = 0; x < WIDTH; x++) {
        const g = (y * got.width + x) * 3;
        const e = (y * WIDTH + x) * 4;
        if (got.data[g] === expected[e] && got.data[g + 1] === expected[e + 1] && got.data[g + 2] === expected[e + 2]) continue;
        count++;
        box = box ? { x0: Math.min(box.x0, x), y0: Math.min(box.y0, y), x1: Math.max(box.x1, x), y1: Math.max(box.y1, y) } : { x0: x, y0: y, x1: x, y1: y };
      }
    }
    return { count, box };
  }

  it('while the guest animates: continuous updates, one update per frame without requests, exact static area', async () => {
    const s = await startSession(`a:${WIDTH}x${HEIGHT}`, { kind: 'tiles', moving: true, fps: 30 });
    const tap = await startTap(s.ports[0]!, false);
    let viewer: Viewer | undefined;
    try {
      viewer = startViewer(tap.port);
      await waitFor('the viewer to enable continuous updates', () => viewer!.log().includes('Enabling continuous updates'));
      await waitFor('EnableContinuousUpdates through the tap', () => tap.connections[0]?.messages.some((m) => m.type === 'enableContinuousUpdates' && m.enable) ?? false);
      const c = tap.connections[0]!;
      // Let the first full update settle, then count over 1.5 s.
      await sleep(500);
      const before = s.vnc.figures()[0]!;
      const requestsBefore = c.messages.filter((m) => m.type === 'updateRequest').length;
      await sleep(1500);
      const after = s.vnc.figures()[0]!;
      const requests = c.messages.filter((m) => m.type === 'updateRequest').length - requestsBefore;
      const updates = after.updates - before.updates;
      const presented = after.presented - before.presented;
      // 30 frames a second: about 45 frames and as many updates; the viewer asks for none of them.
      expect(presented, 'guest frames in 1.5 s').toBeGreaterThanOrEqual(20);
      expect(updates, `updates in 1.5 s (guest frames ${presented})`).toBeGreaterThanOrEqual(Math.floor(presented * 0.6));
      expect(requests, 'FramebufferUpdateRequests in 1.5 s').toBeLessThanOrEqual(1);
      expect(after.clients).toBe(1);
      // What the viewer asked for: RFB 3.8, shared; no SetPixelFormat (the server's 32 bpp r16 g8
      // b0 is its own "depth 24 rgb888"); ZRLE as the first real encoding, with CopyRect,
      // LastRect, DesktopSize, ExtendedDesktopSize, Fence and ContinuousUpdates.
      expect(c.version).toBe('003.008');
      expect(c.shared).toBe(true);
      expect(lastPixelFormat(c)).toBeUndefined();
      const enc = encodingsOf(c);
      expect(enc.filter((e) => e >= 0 && e < 256 && e !== 1)[0]).toBe(16);
      expect(enc).toEqual(expect.arrayContaining([1, -224, -223, -308, -312, -313]));

      const expected = expectedRgba('tiles', 'XRGB8888', WIDTH, HEIGHT);
      const one = await screenshot();
      await sleep(1000);
      const two = await screenshot();
      for (const [name, shot] of [['first', one], ['second', two]] as const) {
        expect([shot.width, shot.height]).toEqual([WIDTH, HEIGHT]);
        expect(diffExact(shot, expected, WIDTH, { from: BAND_ROWS, to: HEIGHT }).report, `${name} screenshot below the band`).toBe('identical');
      }
      // In the band: only the square differs from the pattern, and it moved.
      const a = bandChange(one, expected);
      const b = bandChange(two, expected);
      for (const [name, ch] of [['first', a], ['second', b]] as const) {
        expect(ch.box, `${name} screenshot: the moving square`).toBeDefined();
        expect(ch.box!.y0, name).toBeGreaterThanOrEqual(MOVER_Y);
        expect(ch.box!.y1, name).toBeLessThan(MOVER_Y + MOVER);
        expect(ch.box!.x1 - ch.box!.x0, name).toBeLessThan(MOVER);
      }
      expect(a.box!.x0, 'the square moved between the screenshots').not.toBe(b.box!.x0);
    } finally {
      await stopViewer(viewer);
      await tap.close();
      await stopSession(s);
    }
  });

  it('with VNC authentication (-passwd): the right password shows the frame exactly, a wrong one is refused', async () => {
    const s = await startSession(`a:${WIDTH}x${HEIGHT}`, { kind: 'tiles' }, 'Pa55word');
    let viewer: Viewer | undefined;
    try {
      const good = await vncpasswdFile('viewer-good.passwd', 'Pa55word');
      const bad = await vncpasswdFile('viewer-bad.passwd', 'nope');
      viewer = startViewer(s.ports[0]!, ['-passwd', good]);
      await waitFor('the viewer to enable continuous updates', () => viewer!.log().includes('Enabling continuous updates'));
      await waitFor('an update', () => s.vnc.figures()[0]!.updates > 0);
      await sleep(500);
      const shot = await screenshot();
      expect(diffExact(shot, expectedRgba('tiles', 'XRGB8888', WIDTH, HEIGHT), WIDTH).report).toBe('identical');
      await stopViewer(viewer);
      // A wrong password: the viewer says why (and, with -AlertOnFatalError=0, just stays on).
      viewer = startViewer(s.ports[0]!, ['-passwd', bad]);
      await waitFor('the viewer to report the failure', () => viewer!.log().includes('Authentication failure'));
      expect(viewer.log()).toMatch(/VNC authentication failed \(wrong\s+password\)/);
      expect(s.log.join('')).toContain('VNC authentication failed (wrong password)');
      expect(s.vnc.figures()[0]!.clients).toBe(0);
    } finally {
      await stopViewer(viewer);
      await stopSession(s);
    }
  });
});

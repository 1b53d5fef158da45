/**
 * Helpers for the xenstored tests: the daemon as the real CLI child process
 * (`node bin/vdispl.js xenstored --socket PATH`), a raw unix-socket client that speaks
 * `xsd_sockmsg` with its own encoder and parser (so the tests do not trust the code under test
 * to frame what they check), and polling.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `pred` every few ms until it holds; throws with `what` after `ms`. */
export async function waitUntil(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!pred()) {
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(2);
  }
}

// ---- the CLI daemon --------------------------------------------------------------------------

export interface XenstoredProcess {
  readonly child: ChildProcess;
  readonly socket: string;
  /** Everything it printed so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit status once it has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `vdispl xenstored --socket <socket>` and waits for its "listening" line. */
export async function spawnXenstored(socket: string, timeoutMs = 30_000): Promise<XenstoredProcess> {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/vdispl.js'), 'xenstored', '--socket', socket], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let gone: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void exited.then((e) => (gone = e));
  const listening = `xenstored: listening on ${socket}`;
  const end = performance.now() + timeoutMs;
  while (!out.split('\n').some((l) => l.startsWith(listening))) {
    if (gone) throw new Error(`vdispl xenstored exited (${gone.code ?? gone.signal}) before listening:\n${out}\n${err}`);
    if (performance.now() > end) {
      child.kill('SIGKILL');
      throw new Error(`vdispl xenstored did not print "${listening}" within ${timeoutMs} ms:\n${out}\n${err}`);
    }
    await sleep(10);
  }
  return { child, socket, stdout: () => out, stderr: () => err, exited };
}

// ---- xsd_sockmsg, independently of src/abi/xs-wire.ts ----------------------------------------

export const HDR = 16;

/** NUL-terminates each string (latin1 bytes). */
export function strs(...s: string[]): Buffer {
  return Buffer.from(s.map((x) => `${x}\0`).join(''), 'latin1');
}

/** One message: the 16-byte header (little-endian u32 type, req_id, tx_id, len) + payload. */
export function msg(type: number, reqId: number, txId: number, payload: Uint8Array | string = Buffer.alloc(0), len?: number): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : Buffer.from(payload);
  const h = Buffer.alloc(HDR);
  h.writeUInt32LE(type >>> 0, 0);
  h.writeUInt32LE(reqId >>> 0, 4);
  h.writeUInt32LE(txId >>> 0, 8);
  h.writeUInt32LE((len ?? body.length) >>> 0, 12);
  return Buffer.concat([h, body]);
}

export interface RawMsg {
  readonly type: number;
  readonly reqId: number;
  readonly txId: number;
  readonly payload: Buffer;
}

/** The payload as text with the trailing NUL (if any) dropped. */
export function text(m: RawMsg): string {
  const p = m.payload;
  return p.subarray(0, p.length > 0 && p[p.length - 1] === 0 ? p.length - 1 : p.length).toString('latin1');
}

/** A raw socket client: writes whatever it is given and collects every message it gets back. */
export class RawConn {
  readonly messages: RawMsg[] = [];
  closed = false;
  bytesIn = 0;
  private buf: Buffer = Buffer.alloc(0);

  private constructor(readonly sock: Socket) {
    sock.on('data', (b: Buffer) => {
      this.bytesIn += b.length;
      this.buf = this.buf.length === 0 ? b : Buffer.concat([this.buf, b]);
      while (this.buf.length >= HDR) {
        const len = this.buf.readUInt32LE(12);
        if (this.buf.length < HDR + len) break;
        this.messages.push({
          type: this.buf.readUInt32LE(0),
          reqId: this.buf.readUInt32LE(4),
          txId: this.buf.readUInt32LE(8),
          payload: Buffer.from(this.buf.subarray(HDR, HDR + len)),
        });
        this.buf = this.buf.subarray(HDR + len);
      }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => (this.closed = true));
  }

  static open(socketPath: string, opts: { read?: boolean } = {}): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const sock = connect(socketPath);
      sock.once('error', reject);
      sock.once('connect', () => {
        sock.off('error', reject);
        const c = new RawConn(sock);
        if (opts.read === false) sock.pause();
        resolve(c);
      });
    });
  }

  /** Bytes not yet forming a whole message. */
  get partial(): number {
    return this.buf.length;
  }

  write(bytes: Uint8Array): void {
    this.sock.write(bytes);
  }

  /** Replies (everything but watch events, type 15). */
  replies(): RawMsg[] {
    return this.messages.filter((m) => m.type !== 15);
  }

  events(): RawMsg[] {
    return this.messages.filter((m) => m.type === 15);
  }

  async waitReplies(n: number, ms = 5000): Promise<RawMsg[]> {
    await waitUntil(() => this.replies().length >= n || this.closed, ms, `${n} replies (have ${this.replies().length})`);
    return this.replies();
  }

  /** One request, one reply (the next reply this connection gets). */
  async request(type: number, reqId: number, txId: number, payload: Uint8Array | string): Promise<RawMsg> {
    const before = this.replies().length;
    this.write(msg(type, reqId, txId, payload));
    const r = await this.waitReplies(before + 1);
    const m = r[before];
    if (!m) throw new Error(`connection closed before the reply to request ${reqId}`);
    return m;
  }

  async waitClosed(ms = 5000): Promise<void> {
    await waitUntil(() => this.closed, ms, 'the server to close the connection');
  }

  destroy(): void {
    this.sock.destroy();
  }
}

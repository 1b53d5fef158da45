/**
 * `vdispl xenstored`: serves a socket until told to stop and removes it; a missing --socket is a
 * usage error (exit 2), a socket that cannot be created is one line and exit 1. The real binary
 * exits 0 on SIGTERM and removes its socket.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { type CliIo, main } from '../../../src/cli/main.js';
import { runXenstored } from '../../../src/cli/xenstored-command.js';
import { connectSocket } from '../../../src/xenstore/client-transports.js';

const BIN = fileURLToPath(new URL('../../../bin/vdispl.js', import.meta.url));
let dir = '';
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

function capture(): { io: CliIo; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    io: { readStdin: () => Promise.resolve(''), stdout: (t) => void (out += t), stderr: (t) => void (err += t) },
    out: () => out,
    err: () => err,
  };
}

describe('vdispl xenstored', () => {
  it('serves until stopped, then removes its socket', async () => {
    dir = mkdtempSync(join(tmpdir(), 'vdispl-xsd-'));
    const path = join(dir, 'xs.sock');
    const c = capture();
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    const running = runXenstored({ socket: path }, c.io, stopped);
    while (!c.out().includes('listening')) await new Promise((r) => setTimeout(r, 5));
    const xs = await connectSocket(path);
    await xs.write('/a/b', 'c');
    expect(await xs.readString('/a/b')).toBe('c');
    xs.close();
    stop();
    expect(await running).toBe(0);
    expect(existsSync(path)).toBe(false);
  });

  it('refuses to take over the socket of a running daemon, and replaces a stale one', async () => {
    dir = mkdtempSync(join(tmpdir(), 'vdispl-xsd-'));
    const path = join(dir, 'xs.sock');
    const a = capture();
    let stopA!: () => void;
    const runningA = runXenstored({ socket: path }, a.io, new Promise<void>((r) => (stopA = r)));
    while (!a.out().includes('listening')) await new Promise((r) => setTimeout(r, 5));
    const b = capture();
    expect(await runXenstored({ socket: path }, b.io, Promise.resolve())).toBe(1);
    expect(b.err()).toMatch(/another xenstored is listening/);
    const xs = await connectSocket(path);
    await xs.write('/still', 'A');
    xs.close();
    stopA();
    expect(await runningA).toBe(0);
    // A socket file nobody answers on (a daemon that was killed) is replaced.
    const { createServer } = await import('node:net');
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(path, r));
    const fd = (dead as unknown as { _handle: { fd: number } })._handle.fd;
    expect(fd).toBeGreaterThanOrEqual(0);
    await new Promise<void>((r) => dead.close(() => r()));
    const c = capture();
    let stopC!: () => void;
    const runningC = runXenstored({ socket: path }, c.io, new Promise<void>((r) => (stopC = r)));
    while (!c.out().includes('listening') && !c.err()) await new Promise((r) => setTimeout(r, 5));
    expect(c.err()).toBe('');
    stopC();
    expect(await runningC).toBe(0);
  });

  it('rejects a missing --socket as a usage error', async () => {
    const c = capture();
    expect(await main(['xenstored'], c.io)).toBe(2);
    expect(c.err()).toMatch(/--socket/);
  });

  it('reports a socket it cannot create in one line', async () => {
    const c = capture();
    const code = await runXenstored({ socket: '/nonexistent-dir/xs.sock' }, c.io, Promise.resolve());
    expect(code).toBe(1);
    expect(c.err().trim().split('\n')).toHaveLength(1);
    expect(c.err()).toMatch(/cannot listen on \/nonexistent-dir\/xs.sock/);
  });

  it('exits 0 on SIGTERM and removes its socket (the real binary)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'vdispl-xsd-'));
    const path = join(dir, 'xs.sock');
    const child = spawn(process.execPath, [BIN, 'xenstored', '--socket', path], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('listening')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`exited early with ${code}`)));
    });
    expect(existsSync(path)).toBe(true);
    const exited = new Promise<number | null>((r) => child.once('exit', r));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(existsSync(path)).toBe(false);
  });
});

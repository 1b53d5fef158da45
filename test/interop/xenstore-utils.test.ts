/**
 * `vdispl xenstored` as the real CLI child process, driven by Debian's xenstore-utils 4.17
 * (libxenstore over the unix socket named by XENSTORED_PATH): write/read (several pairs in one
 * call, spaces, escapes), ls (tree, -f, -p), chmod (plain, -r, -u), rm (subtree, -t), exists,
 * list (including a directory too big for one XS_DIRECTORY reply, which libxenstore pages with
 * XS_DIRECTORY_PART), watch -n, the "couldn't read path" failure, and the daemon's SIGTERM exit
 * (status 0, socket file removed). Values cross between the tools and our XsClient both ways.
 * Needs xenstore-utils (.ci/run installs it): a missing tool is a failure, never a skip.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { XsClient } from '../../src/xenstore/client.js';
import { connectSocket } from '../../src/xenstore/client-transports.js';
import { spawnXenstored, waitUntil, type XenstoredProcess } from '../integration/xenstore-helpers.js';
import { onPath } from '../support/on-path.js';

const TOOLS = [
  'xenstore-read',
  'xenstore-write',
  'xenstore-ls',
  'xenstore-list',
  'xenstore-exists',
  'xenstore-rm',
  'xenstore-chmod',
  'xenstore-watch',
] as const;
type Tool = (typeof TOOLS)[number];


interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

let dir: string;
let daemon: XenstoredProcess;
let env: NodeJS.ProcessEnv;
let client: XsClient;

/** Runs a tool against our daemon; resolves with its exit status and output (never rejects on a non-zero status). */
function xs(tool: Tool, ...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(tool, args, { env, timeout: 10_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(new Error(`${tool} ${args.join(' ')}: ${err.message}\n${stderr}`));
        return;
      }
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

/** Runs a tool that must succeed; returns its stdout. */
async function ok(tool: Tool, ...args: string[]): Promise<string> {
  const r = await xs(tool, ...args);
  expect(r, `${tool} ${args.join(' ')}`).toMatchObject({ code: 0 });
  return r.stdout;
}

beforeAll(async () => {
  const missing: string[] = [];
  for (const t of TOOLS) if (!(await onPath(t))) missing.push(t);
  if (missing.length > 0) {
    throw new Error(`missing ${missing.join(', ')}: install the Debian package xenstore-utils (.ci/run does)`);
  }
  dir = await mkdtemp(path.join(tmpdir(), 'vdispl-xs-utils-'));
  const socket = path.join(dir, 'xs.sock');
  daemon = await spawnXenstored(socket);
  env = { ...process.env, XENSTORED_PATH: socket };
  delete env.XENSTORED_RUNDIR;
  client = await connectSocket(socket);
}, 60_000);

afterAll(async () => {
  client?.close();
  if (daemon && daemon.child.exitCode === null && daemon.child.signalCode === null) {
    daemon.child.kill('SIGKILL');
    await daemon.exited;
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('xenstore-utils 4.17 against vdispl xenstored (CLI child process)', () => {
  it('xenstore-write takes several pairs in one call; xenstore-read reads several keys', async () => {
    await ok('xenstore-write', '/vm/name', 'demo', '/vm/title', 'hello big world', '/vm/deep/er/key', '42');
    expect(await ok('xenstore-read', '/vm/name', '/vm/title', '/vm/deep/er/key')).toBe('demo\nhello big world\n42\n');
    expect(await ok('xenstore-read', '-p', '/vm/title')).toBe('/vm/title: hello big world\n');
    // Parents were created with empty values.
    expect(await ok('xenstore-read', '/vm/deep')).toBe('\n');
    // What the tools wrote is what our client reads, byte for byte, and the other way round.
    expect(await client.readString('/vm/title')).toBe('hello big world');
    await client.write('/vm/from-client', 'written by XsClient');
    expect(await ok('xenstore-read', '/vm/from-client')).toBe('written by XsClient\n');
  });

  it('escapes: xenstore-write unescapes \\x01, xenstore-read escapes it back, -R reads raw bytes', async () => {
    await ok('xenstore-write', '/vm/esc', 'a\\x01b\\\\c');
    expect(Array.from(await client.read('/vm/esc'))).toEqual([0x61, 0x01, 0x62, 0x5c, 0x63]);
    expect(await ok('xenstore-read', '/vm/esc')).toBe('a\\001b\\\\c\n');
    expect(await ok('xenstore-read', '-R', '/vm/esc')).toBe('a\x01b\\c'); // raw: no newline either
  });

  it('xenstore-ls prints the tree, indented, and with -f full paths', async () => {
    await ok('xenstore-write', '/ls/x/y', '1', '/ls/z', 'two words');
    expect(await ok('xenstore-ls', '/ls')).toBe('x = ""\n y = "1"\nz = "two words"\n');
    expect(await ok('xenstore-ls', '-f', '/ls')).toBe('/ls/x = ""\n/ls/x/y = "1"\n/ls/z = "two words"\n');
    const all = await ok('xenstore-ls', '/');
    // xenstored's initial tree is there, then what the tests wrote.
    expect(all).toMatch(/^tool = ""\n xenstored = ""\n/);
    expect(all).toContain('\nls = ""\n x = ""\n  y = "1"\n z = "two words"\n');
  });

  it('xenstore-chmod sets permissions that xenstore-ls -p shows; -r recurses; -u goes up the path', async () => {
    await ok('xenstore-write', '/perm/a', 'v', '/perm/sub/b', 'w');
    await ok('xenstore-chmod', '/perm/a', 'r5', 'w7');
    expect(await client.getPerms('/perm/a')).toEqual([
      { access: 'r', domid: 5 },
      { access: 'w', domid: 7 },
    ]);
    const ls = await ok('xenstore-ls', '-p', '/perm');
    expect(ls).toMatch(/^a = "v"[ .]*\(r5,w7\)$/m);
    expect(ls).toMatch(/^sub = ""[ .]*\(n0\)$/m);

    await ok('xenstore-chmod', '-r', '/perm', 'n0', 'b3');
    const rec = await ok('xenstore-ls', '-p', '/perm');
    expect(rec.trim().split('\n')).toHaveLength(3);
    for (const line of rec.trim().split('\n')) expect(line).toMatch(/\(n0,b3\)$/);
    expect(await client.getPerms('/perm')).toEqual([
      { access: 'n', domid: 0 },
      { access: 'b', domid: 3 },
    ]);

    await ok('xenstore-write', '/up/per/most', 'x');
    await ok('xenstore-chmod', '-u', '/up/per/most', 'r9');
    const up = await ok('xenstore-ls', '-f', '-p', '/up');
    expect(up).toMatch(/^\/up\/per[ =".]*\(r9\)$/m);
    expect(up).toMatch(/^\/up\/per\/most = "x"[ .]*\(r9\)$/m);
    expect(await client.getPerms('/up')).toEqual([{ access: 'r', domid: 9 }]);
    expect(await client.getPerms('/')).toEqual([{ access: 'n', domid: 0 }]);
  });

  it('xenstore-rm removes a whole subtree; -t also removes the parents it leaves empty', async () => {
    await ok('xenstore-write', '/rmme/a/b', '1', '/rmme/c', '2', '/keep/me', '3');
    await ok('xenstore-rm', '/rmme');
    expect((await xs('xenstore-exists', '/rmme')).code).toBe(1);
    expect((await xs('xenstore-exists', '/rmme/a/b')).code).toBe(1);
    expect(await client.tryRead('/rmme/c')).toBeUndefined();
    expect(await ok('xenstore-read', '/keep/me')).toBe('3\n');
    // Removing a missing node whose parent exists is fine, as with xenstored.
    await ok('xenstore-rm', '/keep/nothing-here');

    await ok('xenstore-write', '/tidy/a/b/c', '1', '/tidy/x', '2');
    await ok('xenstore-rm', '-t', '/tidy/a/b/c');
    expect(await ok('xenstore-ls', '-f', '/tidy')).toBe('/tidy/x = "2"\n');
  });

  it('xenstore-exists exits 0 for a node and 1 for a missing one', async () => {
    await ok('xenstore-write', '/ex/here', '');
    expect(await xs('xenstore-exists', '/ex/here')).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(await xs('xenstore-exists', '/ex')).toMatchObject({ code: 0 });
    expect(await xs('xenstore-exists', '/ex/gone')).toMatchObject({ code: 1 });
    expect(await xs('xenstore-exists', '/nowhere/at/all')).toMatchObject({ code: 1 });
  });

  it('xenstore-list lists children in creation order, -p with paths', async () => {
    await ok('xenstore-write', '/lst/zeta', '1', '/lst/alpha', '2', '/lst/mid/x', '3');
    expect(await ok('xenstore-list', '/lst')).toBe('zeta\nalpha\nmid\n');
    expect(await ok('xenstore-list', '-p', '/lst')).toBe('/lst/zeta\n/lst/alpha\n/lst/mid\n');
    expect(await ok('xenstore-list', '/lst/zeta')).toBe('');
  });

  it('a directory too big for one reply (E2BIG) is listed whole through XS_DIRECTORY_PART', async () => {
    const names = Array.from({ length: 300 }, (_, i) => `child-with-a-long-name-${String(i).padStart(4, '0')}`);
    expect(names.reduce((n, s) => n + s.length + 1, 0)).toBeGreaterThan(4096 * 2);
    await Promise.all(names.map((n) => client.write(`/big/${n}`, n.slice(-4))));
    expect(await ok('xenstore-list', '/big')).toBe(`${names.join('\n')}\n`);
    const ls = (await ok('xenstore-ls', '/big')).trim().split('\n');
    expect(ls).toHaveLength(300);
    expect(ls[299]).toBe('child-with-a-long-name-0299 = "0299"');
  });

  it('xenstore-watch -n 2 prints the initial event, then the event of a later write', async () => {
    const w = spawn('xenstore-watch', ['-n', '2', '/wt'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    w.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    w.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    const exit = new Promise<number | null>((resolve) => w.once('exit', (code) => resolve(code)));
    try {
      await waitUntil(() => out.includes('\n'), 10_000, `xenstore-watch's first line (stderr: ${err})`);
      expect(out).toBe('/wt\n');
      await ok('xenstore-write', '/wt/k', 'v');
      expect(await exit).toBe(0);
      expect(out).toBe('/wt\n/wt/k\n');
    } finally {
      w.kill('SIGKILL');
    }
  });

  it('a missing path: "couldn\'t read path ..." and exit status 1', async () => {
    const r = await xs('xenstore-read', '/no/such/node');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain("couldn't read path /no/such/node");
    expect(await xs('xenstore-list', '/no/such/node')).toMatchObject({ code: 1 });
    expect(await xs('xenstore-ls', '/no/such/node')).toMatchObject({ code: 1 });
    expect(await xs('xenstore-chmod', '/no/such/node', 'r1')).toMatchObject({ code: 1 });
    // rm of a node whose parent is missing too fails.
    expect(await xs('xenstore-rm', '/no/such/node')).toMatchObject({ code: 1 });
  });

  it('SIGTERM: the daemon drops its clients, exits 0 and removes its socket', async () => {
    expect(existsSync(daemon.socket)).toBe(true);
    expect(daemon.child.kill('SIGTERM')).toBe(true);
    expect(await daemon.exited).toEqual({ code: 0, signal: null });
    expect(existsSync(daemon.socket)).toBe(false);
    await waitUntil(() => client.closed, 5000, 'the XsClient to see the connection closed');
    await expect(client.read('/vm/name')).rejects.toMatchObject({ code: 'ECLOSED' });
    expect(daemon.stderr()).not.toMatch(/failed|error|EIO/i);
    // The tools now fail to connect.
    const r = await xs('xenstore-read', '/vm/name');
    expect(r.code).toBe(1);
  });
});

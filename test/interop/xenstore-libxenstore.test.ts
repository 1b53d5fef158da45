/**
 * The real libxenstore (Debian libxenstore4, `libxenstore.so.4`) through koffi, against
 * `vdispl xenstored` run as the CLI child process (so blocking library calls in this thread
 * cannot stall the daemon): xs_open(0) with XENSTORED_PATH, xs_write/xs_read (binary values,
 * embedded NULs), xs_read's ENOENT, xs_directory (also past one reply: libxenstore falls back to
 * XS_DIRECTORY_PART on E2BIG), xs_set_permissions, xs_watch + xs_fileno + poll + xs_read_watch
 * (then an async xs_read_watch woken by our XsClient's write), xs_unwatch, transactions (commit,
 * abort, EAGAIN on a conflict), xs_close. Values cross between libxenstore and our XsClient both
 * ways. Needs libxenstore4 (.ci/run installs it): a missing library is a failure, never a skip.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import koffi from 'koffi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { XsClient } from '../../src/xenstore/client.js';
import { connectSocket } from '../../src/xenstore/client-transports.js';
import { spawnXenstored, type XenstoredProcess } from '../integration/xenstore-helpers.js';

const ENOENT = 2;
const EAGAIN = 11;
const POLLIN = 1;
const XBT_NULL = 0;
// enum xs_perm_type
const XS_PERM_NONE = 0;
const XS_PERM_READ = 1;
const XS_PERM_WRITE = 2;

const libc = koffi.load('libc.so.6');
const lib = koffi.load('libxenstore.so.4');

const free = libc.func('void free(void *p)');
const setenv = libc.func('int setenv(const char *name, const char *value, int overwrite)');
koffi.struct('pollfd', { fd: 'int', events: 'short', revents: 'short' });
const poll = libc.func('int poll(_Inout_ pollfd *fds, unsigned long nfds, int timeout)');

koffi.opaque('xs_handle');
const xsPermissions = koffi.struct('xs_permissions', { id: 'unsigned int', perms: 'int' });
const xs_open = lib.func('xs_handle *xs_open(unsigned long flags)');
const xs_close = lib.func('void xs_close(xs_handle *h)');
const xs_write = lib.func('bool xs_write(xs_handle *h, uint32_t t, const char *path, const void *data, unsigned int len)');
const xs_read = lib.func('void *xs_read(xs_handle *h, uint32_t t, const char *path, _Out_ unsigned int *len)');
const xs_directory = lib.func('void *xs_directory(xs_handle *h, uint32_t t, const char *path, _Out_ unsigned int *num)');
const xs_set_permissions = lib.func('bool xs_set_permissions(xs_handle *h, uint32_t t, const char *path, xs_permissions *perms, unsigned int num)');
const xs_watch = lib.func('bool xs_watch(xs_handle *h, const char *path, const char *token)');
const xs_unwatch = lib.func('bool xs_unwatch(xs_handle *h, const char *path, const char *token)');
const xs_fileno = lib.func('int xs_fileno(xs_handle *h)');
const xs_read_watch = lib.func('void *xs_read_watch(xs_handle *h, _Out_ unsigned int *num)');
const xs_transaction_start = lib.func('uint32_t xs_transaction_start(xs_handle *h)');
const xs_transaction_end = lib.func('bool xs_transaction_end(xs_handle *h, uint32_t t, bool abort)');

type Handle = unknown;

/** xs_read: the value's bytes (the malloc'd buffer freed), or undefined and errno. */
function read(h: Handle, t: number, p: string): Uint8Array | { errno: number } {
  const len = [0];
  const ptr: unknown = xs_read(h, t, p, len);
  if (!ptr) return { errno: koffi.errno() };
  try {
    return new Uint8Array(koffi.decode(ptr, 'uint8_t', len[0]!) as Uint8Array);
  } finally {
    free(ptr);
  }
}

function readText(h: Handle, t: number, p: string): string {
  const v = read(h, t, p);
  if (!(v instanceof Uint8Array)) throw new Error(`xs_read ${p}: errno ${v.errno}`);
  return Buffer.from(v).toString('latin1');
}

function write(h: Handle, t: number, p: string, value: Uint8Array | string): boolean {
  const b = typeof value === 'string' ? Buffer.from(value) : Buffer.from(value);
  return xs_write(h, t, p, b, b.length) as boolean;
}

/** A char ** vector of `num` strings in one malloc'd block (xs_directory, xs_read_watch). */
function strings(ptr: unknown, num: number): string[] {
  try {
    return koffi.decode(ptr, 'char *', num) as string[];
  } finally {
    free(ptr);
  }
}

function directory(h: Handle, t: number, p: string): string[] | { errno: number } {
  const num = [0];
  const ptr: unknown = xs_directory(h, t, p, num);
  if (!ptr) return { errno: koffi.errno() };
  return strings(ptr, num[0]!);
}

function readWatchAsync(h: Handle): Promise<string[]> {
  const num = [0];
  return new Promise((resolve, reject) => {
    xs_read_watch.async(h, num, (err: unknown, ptr: unknown) => {
      if (err) reject(err instanceof Error ? err : new Error(`xs_read_watch.async failed: ${JSON.stringify(err)}`));
      else if (!ptr) reject(new Error(`xs_read_watch: errno ${koffi.errno()}`));
      else resolve(strings(ptr, num[0]!));
    });
  });
}

let dir: string;
let daemon: XenstoredProcess;
let h: Handle;
let client: XsClient;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vdispl-libxs-'));
  const socket = path.join(dir, 'xs.sock');
  daemon = await spawnXenstored(socket);
  // libxenstore reads XENSTORED_PATH with getenv(): set it in the C environment too, whatever
  // kind of worker vitest runs this file in.
  process.env.XENSTORED_PATH = socket;
  expect(setenv('XENSTORED_PATH', socket, 1)).toBe(0);
  h = xs_open(0);
  expect(h, `xs_open(0) failed: errno ${koffi.errno()}`).toBeTruthy();
  client = await connectSocket(socket);
}, 60_000);

afterAll(async () => {
  client?.close();
  if (h) xs_close(h);
  if (daemon && daemon.child.exitCode === null) {
    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toEqual({ code: 0, signal: null });
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('libxenstore 4.17 (koffi) against vdispl xenstored', () => {
  it('xs_write / xs_read, with binary values, both ways with XsClient', async () => {
    expect(write(h, XBT_NULL, '/lib/name', 'hello from libxenstore')).toBe(true);
    expect(readText(h, XBT_NULL, '/lib/name')).toBe('hello from libxenstore');
    expect(await client.readString('/lib/name')).toBe('hello from libxenstore');

    const binary = new Uint8Array([0, 1, 2, 0, 0xff, 0x80, 0]);
    expect(write(h, XBT_NULL, '/lib/bin', binary)).toBe(true);
    expect(Array.from(await client.read('/lib/bin'))).toEqual(Array.from(binary));
    await client.write('/lib/from-client', new Uint8Array([9, 0, 9]));
    expect(read(h, XBT_NULL, '/lib/from-client')).toEqual(new Uint8Array([9, 0, 9]));

    expect(write(h, XBT_NULL, '/lib/empty', '')).toBe(true);
    expect(read(h, XBT_NULL, '/lib/empty')).toEqual(new Uint8Array(0));
    // A value as big as one message allows: path + NUL + value = 4096 bytes.
    const big = 'v'.repeat(4096 - '/lib/big'.length - 1);
    expect(write(h, XBT_NULL, '/lib/big', big)).toBe(true);
    expect(await client.readString('/lib/big')).toBe(big);
    expect(readText(h, XBT_NULL, '/lib/big')).toBe(big);
  });

  it('xs_read of a missing node: NULL with errno ENOENT', () => {
    expect(read(h, XBT_NULL, '/lib/none')).toEqual({ errno: ENOENT });
    expect(directory(h, XBT_NULL, '/lib/none/deeper')).toEqual({ errno: ENOENT });
  });

  it('xs_directory, also for a directory too big for one reply', async () => {
    expect(directory(h, XBT_NULL, '/lib')).toEqual(['name', 'bin', 'from-client', 'empty', 'big']);
    const names = Array.from({ length: 250 }, (_, i) => `a-fairly-long-child-name-number-${i}`);
    await Promise.all(names.map((n) => client.write(`/libbig/${n}`, '')));
    expect(directory(h, XBT_NULL, '/libbig')).toEqual(names);
    expect(await client.directory('/libbig')).toEqual(names);
  });

  it('xs_set_permissions: XsClient sees them', async () => {
    expect(write(h, XBT_NULL, '/lib/perm', 'p')).toBe(true);
    const perms = [
      { id: 4, perms: XS_PERM_NONE },
      { id: 5, perms: XS_PERM_READ },
      { id: 6, perms: XS_PERM_READ | XS_PERM_WRITE },
      { id: 7, perms: XS_PERM_WRITE },
    ];
    const arr = koffi.as(perms, koffi.pointer(xsPermissions));
    expect(xs_set_permissions(h, XBT_NULL, '/lib/perm', arr, perms.length)).toBe(true);
    expect(await client.getPerms('/lib/perm')).toEqual([
      { access: 'n', domid: 4 },
      { access: 'r', domid: 5 },
      { access: 'b', domid: 6 },
      { access: 'w', domid: 7 },
    ]);
  });

  it('xs_watch: the initial event makes xs_fileno readable; a later XsClient write wakes xs_read_watch', async () => {
    expect(xs_watch(h, '/libw', 'tok-1')).toBe(true);
    const fd = xs_fileno(h) as number;
    expect(fd).toBeGreaterThanOrEqual(0);
    const pfd = { fd, events: POLLIN, revents: 0 };
    expect(poll(pfd, 1, 5000)).toBe(1);
    expect(pfd.revents & POLLIN).toBe(POLLIN);
    const num = [0];
    expect(strings(xs_read_watch(h, num), 2)).toEqual(['/libw', 'tok-1']);
    expect(num[0]).toBe(2);

    // Nothing pending now: wait in a koffi worker thread while our client writes.
    const next = readWatchAsync(h);
    await client.write('/libw/child', 'x');
    expect(await next).toEqual(['/libw/child', 'tok-1']);

    const removed = readWatchAsync(h);
    await client.rm('/libw');
    expect(await removed).toEqual(['/libw', 'tok-1']);

    expect(xs_unwatch(h, '/libw', 'tok-1')).toBe(true);
    expect(xs_unwatch(h, '/libw', 'tok-1')).toBe(false);
    expect(koffi.errno()).toBe(ENOENT);
  });

  it('transactions: writes are invisible until xs_transaction_end commits; abort discards', async () => {
    const t = xs_transaction_start(h) as number;
    expect(t).not.toBe(0);
    expect(write(h, t, '/libtx/a', 'in tx')).toBe(true);
    expect(readText(h, t, '/libtx/a')).toBe('in tx');
    expect(await client.tryRead('/libtx/a')).toBeUndefined();
    expect(read(h, XBT_NULL, '/libtx/a')).toEqual({ errno: ENOENT });
    expect(xs_transaction_end(h, t, false)).toBe(true);
    expect(await client.readString('/libtx/a')).toBe('in tx');

    const t2 = xs_transaction_start(h) as number;
    expect(write(h, t2, '/libtx/a', 'aborted')).toBe(true);
    expect(xs_transaction_end(h, t2, true)).toBe(true);
    expect(await client.readString('/libtx/a')).toBe('in tx');
    // The id is gone after the end.
    expect(read(h, t2, '/libtx/a')).toEqual({ errno: ENOENT });
  });

  it('a transaction that read a node someone else then changed ends with EAGAIN', async () => {
    await client.write('/libtx/counter', '1');
    const t = xs_transaction_start(h) as number;
    expect(readText(h, t, '/libtx/counter')).toBe('1');
    expect(write(h, t, '/libtx/counter', '2')).toBe(true);
    await client.write('/libtx/counter', '10'); // the conflict
    expect(xs_transaction_end(h, t, false)).toBe(false);
    expect(koffi.errno()).toBe(EAGAIN);
    expect(await client.readString('/libtx/counter')).toBe('10');

    // The retry, with nobody interfering, commits.
    const t2 = xs_transaction_start(h) as number;
    const n = Number(readText(h, t2, '/libtx/counter'));
    expect(write(h, t2, '/libtx/counter', String(n + 1))).toBe(true);
    expect(xs_transaction_end(h, t2, false)).toBe(true);
    expect(await client.readString('/libtx/counter')).toBe('11');
  });

  it('xs_close, then a fresh xs_open sees the same store', () => {
    xs_close(h);
    h = xs_open(0);
    expect(h).toBeTruthy();
    expect(readText(h, XBT_NULL, '/lib/name')).toBe('hello from libxenstore');
  });
});

/**
 * The promise-based XsClient over in-process pipes to an XenStoreDaemon: every operation, XsError
 * codes, transaction() with EAGAIN retry and abort on throw, watches through a callback and
 * through `for await`, unwatch, DIRECTORY_PART fallback for huge directories, and closing.
 */
import { describe, expect, it } from 'vitest';
import { XsClient, XsError, type WatchEvent, type XsTransport } from '../../../src/xenstore/client.js';
import { connectPipe } from '../../../src/xenstore/client-transports.js';
import { XenStoreDaemon } from '../../../src/xenstore/daemon.js';
import { XS_DIRECTORY, XS_DIRECTORY_PART } from '../../../src/abi/xs-wire.js';
import { dec } from './helpers.js';

function setup() {
  const d = new XenStoreDaemon({ log: () => {} });
  const c = connectPipe(d);
  return { d, c };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (e) {
    if (e instanceof XsError) return e.code;
    throw e;
  }
}

/** A transport that never answers (requests stay pending). */
function silentTransport(): XsTransport & { sent: Uint8Array[]; closed: number } {
  const t = {
    sent: [] as Uint8Array[],
    closed: 0,
    send: (b: Uint8Array) => void t.sent.push(b),
    onData: () => undefined,
    onClose: () => undefined,
    close: () => void t.closed++,
  };
  return t;
}

describe('operations', () => {
  it('write/read/readString/tryRead/mkdir/rm/directory', async () => {
    const { d, c } = setup();
    await c.write('/a/b', 'hello');
    await c.write('/a/bin', new Uint8Array([0, 1, 0xff]));
    expect(await c.readString('/a/b')).toBe('hello');
    expect([...await c.read('/a/bin')]).toEqual([0, 1, 0xff]);
    expect(await c.readString('/a')).toBe('');
    expect(await c.tryRead('/a/b')).toBe('hello');
    expect(await c.tryRead('/a/missing')).toBeUndefined();
    await c.mkdir('/a/dir/sub');
    expect(await c.directory('/a')).toEqual(['b', 'bin', 'dir']);
    expect(await c.directory('/a/dir/sub')).toEqual([]);
    expect(d.stats.nodes).toBe(8);
    await c.rm('/a/dir');
    await c.rm('/a/dir'); // missing, parent exists: fine
    expect(await c.directory('/a')).toEqual(['b', 'bin']);
    expect(d.stats.nodes).toBe(6);
    await c.write('/a/b', '');
    expect(await c.readString('/a/b')).toBe('');
  });

  it('getPerms/setPerms with objects or strings', async () => {
    const { c } = setup();
    await c.write('/p', 'v');
    expect(await c.getPerms('/p')).toEqual([{ domid: 0, access: 'n' }]);
    await c.setPerms('/p', [{ domid: 0, access: 'r' }, { domid: 5, access: 'b' }]);
    expect(await c.getPerms('/p')).toEqual([{ domid: 0, access: 'r' }, { domid: 5, access: 'b' }]);
    await c.setPerms('/p', ['n0', 'w7']);
    expect(await c.getPerms('/p')).toEqual([{ domid: 0, access: 'n' }, { domid: 7, access: 'w' }]);
    expect(await codeOf(c.setPerms('/p', ['bogus']))).toBe('EINVAL');
    expect(await codeOf(c.setPerms('/p', []))).toBe('EINVAL');
  });

  it('getDomainPath, isDomainIntroduced, introduce/release without a platform', async () => {
    const { c } = setup();
    expect(await c.getDomainPath(7)).toBe('/local/domain/7');
    expect(await c.isDomainIntroduced(0)).toBe(true);
    expect(await c.isDomainIntroduced(7)).toBe(false);
    expect(await codeOf(c.introduceDomain(7, 0x1000, 3))).toBe('ENOSYS');
    expect(await codeOf(c.releaseDomain(7))).toBe('ENOENT');
  });

  it('a guest client: relative paths, its own home, permission errors', async () => {
    const { d, c } = setup();
    await c.mkdir('/local/domain/5');
    await c.setPerms('/local/domain/5', ['n5']);
    const g = connectPipe(d, { domid: 5, privileged: false });
    await g.write('device/vdispl/0/state', '1');
    expect(await c.readString('/local/domain/5/device/vdispl/0/state')).toBe('1');
    expect(await g.directory('device')).toEqual(['vdispl']);
    expect(await g.getPerms('device')).toEqual([{ domid: 5, access: 'n' }]);
    expect(await g.getDomainPath(5)).toBe('/local/domain/5');
    expect(d.store.tree.ownedBy(5)).toBe(5); // home, device, vdispl, 0, state
    expect(await codeOf(g.read('/tool'))).toBe('EACCES');
    expect(await codeOf(g.tryRead('/tool'))).toBe('EACCES');
    expect(await codeOf(g.write('/x', 'v'))).toBe('EACCES');
    expect(await codeOf(g.setPerms('device', ['n7']))).toBe('EPERM');
    expect(await codeOf(g.introduceDomain(6, 1, 1))).toBe('EACCES');
  });
});

describe('XsError', () => {
  it('carries the error name, the operation and the path', async () => {
    const { c } = setup();
    const e = await c.read('/missing').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(XsError);
    expect(e).toMatchObject({ code: 'ENOENT', op: 'XS_READ', path: '/missing', name: 'XsError' });
    expect((e as XsError).message).toBe('xenstore XS_READ /missing: ENOENT');
    expect(await codeOf(c.write('/a//b', 'x'))).toBe('EINVAL');
    expect(await codeOf(c.rm('/'))).toBe('EINVAL');
    expect(await codeOf(c.rm('/no/such'))).toBe('ENOENT');
    expect(await codeOf(c.directory('/no'))).toBe('ENOENT');
    expect(await codeOf(c.getPerms('/no'))).toBe('ENOENT');
    expect(await codeOf(c.mkdir('bad path'))).toBe('EINVAL');
  });

  it('a request too large for one message is E2BIG locally and the client keeps working', async () => {
    const { c } = setup();
    expect(await codeOf(c.write('/big', new Uint8Array(5000)))).toBe('E2BIG');
    await c.write('/small', 'ok');
    expect(await c.readString('/small')).toBe('ok');
  });
});

describe('transaction()', () => {
  it('commits the body and returns its value', async () => {
    const { d, c } = setup();
    const r = await c.transaction(async (tx) => {
      await tx.write('/t/a', '1');
      await tx.mkdir('/t/b');
      expect(await tx.readString('/t/a')).toBe('1');
      expect(await tx.tryRead('/t/none')).toBeUndefined();
      expect(await tx.directory('/t')).toEqual(['a', 'b']);
      expect(await c.tryRead('/t/a')).toBeUndefined(); // not visible outside yet
      await tx.setPerms('/t/b', ['r0']);
      expect(await tx.getPerms('/t/b')).toEqual([{ domid: 0, access: 'r' }]);
      expect(dec(await tx.read('/t/a'))).toBe('1');
      await tx.rm('/t/a');
      return 42;
    });
    expect(r).toBe(42);
    expect(await c.directory('/t')).toEqual(['b']);
    expect(d.stats.transactions).toBe(0);
  });

  it('retries the whole body on EAGAIN', async () => {
    const { d, c } = setup();
    const other = connectPipe(d);
    await c.write('/counter', '10');
    let attempts = 0;
    const result = await c.transaction(async (tx) => {
      attempts++;
      const n = Number(await tx.readString('/counter'));
      if (attempts === 1) await other.write('/counter', '20'); // conflicting change, first attempt only
      await tx.write('/counter', String(n + 1));
      return n;
    });
    expect(attempts).toBe(2);
    expect(result).toBe(20);
    expect(await c.readString('/counter')).toBe('21');
    expect(d.stats.transactions).toBe(0);
  });

  it('gives up with EAGAIN after 32 attempts', async () => {
    const { d, c } = setup();
    const other = connectPipe(d);
    await c.write('/hot', '0');
    let attempts = 0;
    const err = await codeOf(c.transaction(async (tx) => {
      attempts++;
      await tx.read('/hot');
      await other.write('/hot', String(attempts));
      await tx.write('/never', 'x');
    }));
    expect(err).toBe('EAGAIN');
    expect(attempts).toBe(32);
    expect(await c.tryRead('/never')).toBeUndefined();
    expect(d.stats.transactions).toBe(0);
  });

  it('a throwing body aborts the transaction and rethrows', async () => {
    const { d, c } = setup();
    const boom = new Error('boom');
    let attempts = 0;
    await expect(c.transaction(async (tx) => {
      attempts++;
      await tx.write('/aborted', 'x');
      throw boom;
    })).rejects.toBe(boom);
    expect(attempts).toBe(1);
    expect(await c.tryRead('/aborted')).toBeUndefined();
    expect(d.stats.transactions).toBe(0);
  });

  it('an XsError inside the body is not retried', async () => {
    const { d, c } = setup();
    let attempts = 0;
    expect(await codeOf(c.transaction(async (tx) => {
      attempts++;
      await tx.write('/ok', '1');
      await tx.read('/missing');
    }))).toBe('ENOENT');
    expect(attempts).toBe(1);
    expect(await c.tryRead('/ok')).toBeUndefined();
    expect(d.stats.transactions).toBe(0);
  });
});

describe('watches', () => {
  it('callback: the initial event, then one per change, with the token', async () => {
    const { d, c } = setup();
    const events: WatchEvent[] = [];
    const w = await c.watch('/w', (e) => events.push(e), { token: 'mine' });
    expect(w.token).toBe('mine');
    expect(w.path).toBe('/w');
    expect(w.active).toBe(true);
    expect(events).toEqual([{ path: '/w', token: 'mine' }]);
    await c.write('/w/a', '1');
    await c.write('/other', '1');
    await c.rm('/w');
    expect(events).toEqual([{ path: '/w', token: 'mine' }, { path: '/w/a', token: 'mine' }, { path: '/w', token: 'mine' }]);
    expect(d.stats.watches).toBe(1);
    await w.unwatch();
    expect(w.active).toBe(false);
    expect(d.stats.watches).toBe(0);
    await c.write('/w', 'x');
    expect(events).toHaveLength(3);
    await w.unwatch(); // idempotent
  });

  it('tokens default to unique names; a token in use is EEXIST', async () => {
    const { d, c } = setup();
    const a = await c.watch('/a', () => {});
    const b = await c.watch('/a', () => {});
    expect(a.token).not.toBe(b.token);
    expect(a.token).toMatch(/^vdispl-[0-9a-z]+-[0-9a-z]+-\d+$/);
    expect(await codeOf(c.watch('/b', () => {}, { token: a.token }))).toBe('EEXIST');
    expect(d.stats.watches).toBe(2);
  });

  it('a refused watch is not kept', async () => {
    const { d, c } = setup();
    expect(await codeOf(c.watch('/bad/', () => {}, { token: 't' }))).toBe('EINVAL');
    expect(d.stats.watches).toBe(0);
    const w = await c.watch('/good', () => {}, { token: 't' });
    expect(w.active).toBe(true);
  });

  it('depth limits the events', async () => {
    const { c } = setup();
    const events: string[] = [];
    await c.watch('/d', (e) => events.push(e.path), { depth: 1 });
    await c.write('/d/a', '1');
    await c.write('/d/a/b', '2');
    await c.write('/d', '3');
    expect(events).toEqual(['/d', '/d/a', '/d']);
  });

  it('for await: events queue until read; break unwatches', async () => {
    const { d, c } = setup();
    const w = await c.watch('/it');
    await c.write('/it/a', '1');
    await c.write('/it/b', '2');
    const seen: string[] = [];
    for await (const e of w) {
      seen.push(e.path);
      if (seen.length === 2) await c.write('/it/c', '3');
      if (seen.length === 4) break;
    }
    expect(seen).toEqual(['/it', '/it/a', '/it/b', '/it/c']);
    expect(w.active).toBe(false);
    expect(d.stats.watches).toBe(0);
  });

  it('unwatch ends a waiting iterator', async () => {
    const { d, c } = setup();
    const w = await c.watch('/u');
    const it = w[Symbol.asyncIterator]();
    expect(await it.next()).toEqual({ value: { path: '/u', token: w.token }, done: false });
    const pending = it.next();
    await w.unwatch();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(await it.next()).toEqual({ value: undefined, done: true });
    expect(d.stats.watches).toBe(0);
  });

  it('a guest watch with a relative path gets relative events', async () => {
    const { d, c } = setup();
    await c.mkdir('/local/domain/5');
    await c.setPerms('/local/domain/5', ['n5']);
    const g = connectPipe(d, { domid: 5, privileged: false });
    const events: string[] = [];
    const w = await g.watch('device', (e) => events.push(e.path));
    await c.write('/local/domain/5/device/x', '1');
    expect(events).toEqual(['device', 'device/x']);
    await w.unwatch();
    expect(d.stats.watches).toBe(0);
  });

  it('resetWatches ends every watch', async () => {
    const { d, c } = setup();
    const events: string[] = [];
    const a = await c.watch('/a', (e) => events.push(e.path));
    const b = await c.watch('/b');
    expect(d.stats.watches).toBe(2);
    await c.resetWatches();
    expect(d.stats.watches).toBe(0);
    expect(a.active).toBe(false);
    expect(b.active).toBe(false);
    await c.write('/a', '1');
    expect(events).toEqual(['/a']);
    const it = b[Symbol.asyncIterator]();
    expect(await it.next()).toEqual({ value: { path: '/b', token: b.token }, done: false });
    expect(await it.next()).toEqual({ value: undefined, done: true });
  });
});

/** A pipe to the daemon that records the type of every request and can act before forwarding one. */
function recordingPipe(d: XenStoreDaemon, before?: (type: number, n: number) => void) {
  const types: number[] = [];
  const pipe = d.pipe();
  const client = new XsClient({
    ...pipe,
    send: (b) => {
      const type = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0, true);
      types.push(type);
      before?.(type, types.length);
      pipe.send(b);
    },
  });
  return { client, types };
}

describe('huge directories', () => {
  it('the fallback pages with DIRECTORY_PART after one E2BIG', async () => {
    const { d, c } = setup();
    const names = Array.from({ length: 120 }, (_, i) => `n${String(i).padStart(3, '0')}${'z'.repeat(96)}`);
    for (const n of names) await c.mkdir(`/huge/${n}`);
    const { client, types } = recordingPipe(d);
    expect(await client.directory('/huge')).toEqual(names);
    expect(types).toEqual([XS_DIRECTORY, XS_DIRECTORY_PART, XS_DIRECTORY_PART, XS_DIRECTORY_PART]);
  });

  it('the fallback restarts when the directory changes between pages', async () => {
    const { d, c } = setup();
    const names = Array.from({ length: 60 }, (_, i) => `n${String(i).padStart(3, '0')}${'z'.repeat(96)}`);
    for (const n of names) await c.mkdir(`/huge/${n}`);
    const s = d.store.connect({ domid: 0, privileged: true });
    let added = false;
    const { client, types } = recordingPipe(d, (type, n) => {
      if (type === XS_DIRECTORY_PART && n === 3 && !added) {
        added = true;
        expect(s.mkdir('/huge/late').ok).toBe(true);
      }
    });
    expect(await client.directory('/huge')).toEqual([...names, 'late']);
    expect(types).toEqual([XS_DIRECTORY, XS_DIRECTORY_PART, XS_DIRECTORY_PART, XS_DIRECTORY, XS_DIRECTORY_PART, XS_DIRECTORY_PART]);
  });


  it('directory() falls back to DIRECTORY_PART when DIRECTORY is E2BIG', async () => {
    const { c } = setup();
    const names = Array.from({ length: 120 }, (_, i) => `node-${String(i).padStart(3, '0')}-${'y'.repeat(90)}`);
    await c.transaction(async (tx) => {
      for (const n of names) await tx.mkdir(`/huge/${n}`);
    });
    expect(names.reduce((s, n) => s + n.length + 1, 0)).toBeGreaterThan(2 * 4096); // three DIRECTORY_PART pages
    expect(await c.directory('/huge')).toEqual(names);
    // Inside a transaction too.
    expect(await c.transaction((tx) => tx.directory('/huge'))).toEqual(names);
  });
});

describe('closing', () => {
  it('a closed client rejects every request with ECLOSED and detaches from the daemon', async () => {
    const { d, c } = setup();
    const w = await c.watch('/x');
    expect(d.stats.sessions).toBe(1);
    c.close();
    expect(c.closed).toBe(true);
    expect(w.active).toBe(false);
    expect(d.stats).toMatchObject({ sessions: 0, watches: 0 });
    const e = await c.read('/').catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'ECLOSED', op: 'XS_READ', path: '/' });
    expect(await codeOf(c.write('/a', 'b'))).toBe('ECLOSED');
    expect(await codeOf(c.watch('/a'))).toBe('ECLOSED');
    expect(await codeOf(c.transaction(() => Promise.resolve(1)))).toBe('ECLOSED');
    expect(await codeOf(c.resetWatches())).toBe('ECLOSED');
    await w.unwatch(); // nothing to do, no throw
  });

  it('pending requests reject with ECLOSED and iterators end when the client closes', async () => {
    const t = silentTransport();
    const c = new XsClient(t);
    const pending = c.read('/slow');
    const pendingWatch = c.watch('/w');
    expect(t.sent).toHaveLength(2);
    c.close();
    expect(t.closed).toBe(1);
    expect(await codeOf(pending)).toBe('ECLOSED');
    expect(await codeOf(pendingWatch)).toBe('ECLOSED');
  });

  it('a transport closing under the client fails pending requests', async () => {
    let closed: ((reason: string) => void) | undefined;
    const c = new XsClient({
      send: () => undefined,
      onData: () => undefined,
      onClose: (cb) => void (closed = cb),
      close: () => undefined,
    });
    const p = c.getDomainPath(1);
    closed?.('peer went away');
    expect(await codeOf(p)).toBe('ECLOSED');
    expect(c.closed).toBe(true);
    expect(await codeOf(c.read('/'))).toBe('ECLOSED');
  });
});

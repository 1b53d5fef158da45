/**
 * The xenstored unix socket under hostile or careless clients, with an in-process daemon on a
 * temporary socket and raw `net` clients that frame messages themselves (xenstore-helpers.ts).
 *
 * Bad inputs tried: headers announcing 4097 and 0xffffffff payload bytes (that connection is
 * closed, others keep working, the requests before the bad header are still served), payloads
 * without their NULs, empty payloads, unknown and server-only message types (99, 20, 0xffff,
 * 15, 16, 23..26), a header and payload dribbled in one byte per write, 1000 requests in one
 * write, fast-check garbage (random bytes, and streams of headers with plausible types, ids,
 * wrong lengths and NUL-separated strings from a small alphabet of real paths, tokens and perms),
 * a client that sends 10,000 big-reply requests and never reads, a client that watches a hot
 * path and stops reading while another does 100,000 writes, and an unprivileged guest-like
 * connection trying everything outside its permissions and quotas.
 *
 * Properties: every complete request gets exactly one reply, in order, with its req_id and tx_id
 * echoed and either its own type or XS_ERROR; a too-large header closes only that connection;
 * the daemon never throws and keeps answering other clients promptly; memory stays bounded;
 * replies are never dropped (only watch events, for a client that does not read); a guest gets
 * EACCES outside its permissions (ENOENT never leaks existence), ENOSPC past its node quota
 * (with nothing half-created), and no watch event for nodes it cannot read. After every
 * scenario the daemon's sessions, watches, transactions and socket connections are back to
 * their baseline.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  XS_CONTROL, XS_DIRECTORY, XS_ERROR, XS_GET_DOMAIN_PATH, XS_GET_PERMS, XS_INTRODUCE, XS_READ, XS_TRANSACTION_END,
  XS_TRANSACTION_START, XS_WATCH, XS_WATCH_EVENT, XS_WRITE,
} from '../../src/abi/xs-wire.js';
import type { XsClient } from '../../src/xenstore/client.js';
import { connectPipe, connectSocket } from '../../src/xenstore/client-transports.js';
import { type DaemonOptions, type DaemonStats, XenStoreDaemon } from '../../src/xenstore/daemon.js';
import { HDR, msg, RawConn, type RawMsg, sleep, strs, text, waitUntil } from './xenstore-helpers.js';

interface Env {
  readonly daemon: XenStoreDaemon;
  readonly socket: string;
  readonly logs: string[];
  readonly dir: string;
  readonly baseline: DaemonStats;
  readonly conns: RawConn[];
  readonly clients: XsClient[];
}

let current: Env | undefined;

async function start(opts: Omit<DaemonOptions, 'log'> = {}): Promise<Env> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vdispl-xs-bad-'));
  const logs: string[] = [];
  const daemon = new XenStoreDaemon({ ...opts, log: (t) => logs.push(t) });
  const socket = path.join(dir, 'xs.sock');
  await daemon.listen(socket);
  current = { daemon, socket, logs, dir, baseline: daemon.stats, conns: [], clients: [] };
  return current;
}

async function raw(env: Env, opts: { read?: boolean } = {}): Promise<RawConn> {
  const c = await RawConn.open(env.socket, opts);
  env.conns.push(c);
  return c;
}

async function client(env: Env): Promise<XsClient> {
  const c = await connectSocket(env.socket);
  env.clients.push(c);
  return c;
}

function leakStats(s: DaemonStats): Pick<DaemonStats, 'sessions' | 'watches' | 'transactions' | 'socketConnections' | 'guests'> {
  return { sessions: s.sessions, watches: s.watches, transactions: s.transactions, socketConnections: s.socketConnections, guests: s.guests };
}

/** Closes every client of the scenario and waits for the daemon's counters to be back to the baseline. */
async function expectNoLeaks(env: Env): Promise<void> {
  for (const c of env.conns.splice(0)) c.destroy();
  for (const c of env.clients.splice(0)) c.close();
  const want = leakStats(env.baseline);
  try {
    await waitUntil(() => JSON.stringify(leakStats(env.daemon.stats)) === JSON.stringify(want), 5000, 'the daemon to drop every connection');
  } catch {
    // Show the difference.
  }
  expect(leakStats(env.daemon.stats)).toEqual(want);
  expect(env.logs.filter((l) => / failed: /.test(l)), 'the daemon hit an internal error (EIO)').toEqual([]);
}

/** A fresh client still gets its answers. */
async function expectServing(env: Env): Promise<void> {
  const c = await connectSocket(env.socket);
  try {
    await c.write('/probe/alive', 'yes');
    expect(await c.readString('/probe/alive')).toBe('yes');
    expect(await c.getDomainPath(3)).toBe('/local/domain/3');
  } finally {
    c.close();
  }
}

afterEach(async () => {
  const env = current;
  current = undefined;
  if (!env) return;
  for (const c of env.conns) c.destroy();
  for (const c of env.clients) c.close();
  await env.daemon.close();
  await rm(env.dir, { recursive: true, force: true });
});

const errorOf = (m: RawMsg | undefined): string | undefined => (m?.type === XS_ERROR ? text(m) : undefined);

describe('xenstored socket: framing errors', () => {
  it('a header announcing 4097 bytes closes that connection only; the requests before it are served', async () => {
    const env = await start();
    const other = await raw(env);
    // The other connection has state that must survive: a watch and an open transaction.
    expect(text(await other.request(XS_WATCH, 1, 0, strs('/survivor', 'tok')))).toBe('OK');
    const txReply = await other.request(XS_TRANSACTION_START, 2, 0, strs(''));
    const tx = Number(text(txReply));
    expect(tx).toBeGreaterThan(0);
    expect(env.daemon.stats).toMatchObject({ watches: 1, transactions: 1, socketConnections: 1 });

    const bad = await raw(env);
    bad.write(Buffer.concat([msg(XS_GET_DOMAIN_PATH, 77, 0, strs('5')), msg(XS_READ, 78, 0, strs('/x'), 4097), Buffer.alloc(200, 0x41)]));
    await bad.waitClosed();
    expect(bad.replies().map((m) => [m.reqId, text(m)])).toEqual([[77, '/local/domain/5']]);
    expect(env.logs.some((l) => /closing connection of domain 0: .*4097/.test(l))).toBe(true);

    // The other connection keeps working, with its watch and transaction.
    expect(text(await other.request(XS_WRITE, 3, tx, Buffer.concat([strs('/survivor/a'), Buffer.from('1')])))).toBe('OK');
    expect(text(await other.request(XS_TRANSACTION_END, 4, tx, strs('T')))).toBe('OK');
    await waitUntil(() => other.events().length >= 2, 2000, 'the watch event of the commit');
    expect(other.events().map(text)).toEqual(['/survivor\0tok', '/survivor/a\0tok']);
    await expectServing(env);
    await expectNoLeaks(env);
  });

  it('exactly 4096 payload bytes is accepted', async () => {
    const env = await start();
    const c = await raw(env);
    const p = strs('/max');
    const payload = Buffer.concat([p, Buffer.alloc(4096 - p.length, 0x7a)]);
    expect(payload.length).toBe(4096);
    expect(text(await c.request(XS_WRITE, 9, 0, payload))).toBe('OK');
    const r = await c.request(XS_READ, 10, 0, strs('/max'));
    expect(r.payload.length).toBe(4096 - p.length);
    expect(c.closed).toBe(false);
    await expectNoLeaks(env);
  });

  it('len 0xffffffff: closed at the header, without waiting for a payload', async () => {
    const env = await start();
    const other = await raw(env);
    const bad = await raw(env);
    bad.write(msg(XS_READ, 1, 0, Buffer.alloc(0), 0xffff_ffff));
    await bad.waitClosed();
    expect(bad.replies()).toEqual([]);
    expect(text(await other.request(XS_GET_DOMAIN_PATH, 5, 0, strs('1')))).toBe('/local/domain/1');
    await expectNoLeaks(env);
  });

  it('payloads without their NUL, or empty, get EINVAL and the connection stays up', async () => {
    const env = await start();
    const c = await raw(env);
    await c.request(XS_WRITE, 1, 0, Buffer.concat([strs('/n/x'), Buffer.from('v')]));
    const cases: [number, string | Buffer][] = [
      [XS_READ, 'abc'],
      [XS_READ, '/n/x'],
      [XS_READ, ''],
      [XS_READ, '/n/x\0/n/x\0'],
      [XS_DIRECTORY, '/n'],
      [XS_GET_PERMS, '/n/x'],
      [XS_WRITE, '/n/y'],
      [XS_WATCH, '/n\0tok'],
      [XS_WATCH, '/n\0'],
      [XS_TRANSACTION_END, 'T'],
      [XS_GET_DOMAIN_PATH, '5'],
      [XS_GET_DOMAIN_PATH, '-1\0'],
      [XS_GET_DOMAIN_PATH, '99999999999\0'],
    ];
    for (const [i, [type, payload]] of cases.entries()) {
      const r = await c.request(type, 1000 + i, 0, payload);
      expect({ i, type: r.type, reqId: r.reqId, txId: r.txId, err: text(r) }).toEqual({ i, type: XS_ERROR, reqId: 1000 + i, txId: 0, err: 'EINVAL' });
    }
    // A bad request does not poison the stream: a good one right after is answered.
    expect(text(await c.request(XS_READ, 7, 0, strs('/n/x')))).toBe('v');
    expect(env.daemon.store.tree.get('/n/y')).toBeUndefined();
    expect(c.closed).toBe(false);
    await expectNoLeaks(env);
  });

  it('unknown, removed and server-only types get ENOSYS with req_id and tx_id echoed', async () => {
    const env = await start();
    const c = await raw(env);
    const types = [99, 20, 0xffff, XS_WATCH_EVENT, XS_ERROR, 23, 24, 25, 26, 27, 0x7fff_ffff, 0xffff_ffff];
    for (const [i, type] of types.entries()) {
      const r = await c.request(type, 0xabc000 + i, 0, strs('/tool'));
      expect({ type, got: r.type, reqId: r.reqId, txId: r.txId, err: text(r) }).toEqual({ type, got: XS_ERROR, reqId: 0xabc000 + i, txId: 0, err: 'ENOSYS' });
    }
    // With no payload at all too.
    expect(errorOf(await c.request(99, 5, 0, ''))).toBe('ENOSYS');
    expect(c.closed).toBe(false);
    await expectServing(env);
    await expectNoLeaks(env);
  });

  it('a header and payload dribbled in one byte per write make one request', async () => {
    const env = await start();
    const c = await raw(env);
    c.sock.setNoDelay(true);
    const bytes = Buffer.concat([msg(XS_GET_DOMAIN_PATH, 0x01020304, 0, strs('12')), msg(XS_READ, 0x0a0b0c0d, 0, strs('/tool'))]);
    for (let i = 0; i < bytes.length; i++) {
      c.write(bytes.subarray(i, i + 1));
      await sleep(1);
      // Nothing is answered before the first message is complete.
      if (i < HDR + 3 - 1) expect(c.messages).toEqual([]);
    }
    const r = await c.waitReplies(2);
    expect(r.map((m) => [m.type, m.reqId, text(m)])).toEqual([
      [XS_GET_DOMAIN_PATH, 0x01020304, '/local/domain/12'],
      [XS_READ, 0x0a0b0c0d, ''],
    ]);
    await expectNoLeaks(env);
  });

  it('1000 pipelined requests in one write: all answered, in order, req_ids and tx_ids echoed', async () => {
    const env = await start();
    const c = await raw(env);
    const tx = Number(text(await c.request(XS_TRANSACTION_START, 1, 0, strs(''))));
    const reqs: { type: number; reqId: number; txId: number; want: string }[] = [];
    for (let i = 0; i < 1000; i++) {
      const reqId = (Math.imul(i, 0x9e3779b1) ^ 0x5a5a5a5a) >>> 0;
      switch (i % 5) {
        case 0:
          reqs.push({ type: XS_WRITE, reqId, txId: 0, want: 'OK' });
          break;
        case 1:
          reqs.push({ type: XS_READ, reqId, txId: 0, want: `v${i - 1}` });
          break;
        case 2:
          reqs.push({ type: XS_GET_DOMAIN_PATH, reqId, txId: 0, want: `/local/domain/${i}` });
          break;
        case 3:
          // The transaction fixes a node at its first access (as xenstored does), here after the write.
          reqs.push({ type: XS_READ, reqId, txId: tx, want: `v${i - 3}` });
          break;
        default:
          reqs.push({ type: XS_READ, reqId, txId: 0xdead, want: 'ENOENT' }); // no such transaction
      }
    }
    const bytes = Buffer.concat(
      reqs.map((r, i) => {
        const k = `/pipe/n${Math.floor(i / 5)}`;
        if (r.type === XS_WRITE) return msg(r.type, r.reqId, r.txId, Buffer.concat([strs(k), Buffer.from(`v${i}`)]));
        if (r.type === XS_GET_DOMAIN_PATH) return msg(r.type, r.reqId, r.txId, strs(String(i)));
        return msg(r.type, r.reqId, r.txId, strs(k));
      }),
    );
    c.write(bytes);
    const replies = (await c.waitReplies(1001)).slice(1);
    expect(replies).toHaveLength(1000);
    const got = replies.map((m) => ({ reqId: m.reqId, txId: m.txId, type: m.type === XS_ERROR ? XS_READ : m.type, want: text(m) }));
    expect(got).toEqual(reqs.map((r) => ({ reqId: r.reqId, txId: r.txId, type: r.type, want: r.want })));
    expect(replies.filter((m) => m.type === XS_ERROR)).toHaveLength(200);
    await expectNoLeaks(env);
  });
});

// ---- fuzzing ---------------------------------------------------------------------------------

interface Framed {
  readonly msgs: RawMsg[];
  /** A header announced more than 4096 bytes. */
  readonly bad: boolean;
  /** Bytes missing to complete the last message. */
  readonly missing: number;
}

function frames(b: Buffer): Framed {
  const msgs: RawMsg[] = [];
  let o = 0;
  for (;;) {
    const left = b.length - o;
    if (left < HDR) return { msgs, bad: false, missing: left === 0 ? 0 : HDR - left };
    const len = b.readUInt32LE(o + 12);
    if (len > 4096) return { msgs, bad: true, missing: 0 };
    if (left < HDR + len) return { msgs, bad: false, missing: HDR + len - left };
    msgs.push({ type: b.readUInt32LE(o), reqId: b.readUInt32LE(o + 4), txId: b.readUInt32LE(o + 8), payload: b.subarray(o + HDR, o + HDR + len) });
    o += HDR + len;
  }
}

const u32 = fc.oneof(fc.constantFrom(0, 1, 0xffff_ffff), fc.nat({ max: 0xffff_ffff }));
const pathArb = fc.constantFrom(
  '/fz', '/fz/a', '/fz/a/b', '/fz/c', '/fz/d/e/f', 'fz/rel', '/', '@releaseDomain', '@introduceDomain', // valid (some only for watches)
  '', '//', '/fz/', '/fz//a', '/fz/a b', '/fz/\u00e9', 'x'.repeat(3100), // invalid
);
const domidArb = fc.constantFrom('0', '1', '7', '32752', '65535', '-1', '4294967296', 'x', '');
const permArb = fc.constantFrom('n0', 'r0', 'b7', 'w5', 'r32751', 'r99999', 'x1', '');
const tokenArb = fc.constantFrom('tok', 't2', '', 'a\u0001b');
/** A request of a real type with a plausible payload (strings NUL-terminated). */
const requestArb: fc.Arbitrary<{ type: number; strings: readonly string[]; value?: string }> = fc.oneof(
  fc.record({ type: fc.constantFrom(XS_READ, XS_DIRECTORY, XS_GET_PERMS, 12 /* MKDIR */, 13 /* RM */), strings: pathArb.map((p) => [p]) }),
  fc.record({ type: fc.constant(XS_WRITE), strings: pathArb.map((p) => [p]), value: fc.string({ maxLength: 20 }) }),
  fc.record({ type: fc.constant(14 /* SET_PERMS */), strings: fc.tuple(pathArb, fc.array(permArb, { maxLength: 4 })).map(([p, ps]) => [p, ...ps]) }),
  fc.record({ type: fc.constantFrom(XS_WATCH, 5 /* UNWATCH */), strings: fc.tuple(pathArb, tokenArb).map(([p, t]) => [p, t]) }),
  fc.record({ type: fc.constant(XS_TRANSACTION_START), strings: fc.constant(['']) }),
  fc.record({ type: fc.constant(XS_TRANSACTION_END), strings: fc.constantFrom(['T'], ['F'], ['X'], []) }),
  fc.record({ type: fc.constantFrom(XS_GET_DOMAIN_PATH, 17 /* IS_DOMAIN_INTRODUCED */, 9 /* RELEASE */), strings: domidArb.map((d) => [d]) }),
  fc.record({ type: fc.constant(XS_INTRODUCE), strings: fc.tuple(domidArb, domidArb, domidArb).map((t) => [...t]) }),
  fc.record({ type: fc.constant(21 /* RESET_WATCHES */), strings: fc.constant(['']) }),
  fc.record({ type: fc.constant(XS_CONTROL), strings: fc.constantFrom(['help'], ['print', 'fuzz'], ['quota'], ['nope'], []) }),
  fc.record({ type: fc.constant(22 /* DIRECTORY_PART */), strings: fc.tuple(pathArb, fc.constantFrom('0', '1', '4', '99999', 'x')).map((t) => [...t]) }),
);
/** `arb` one time in `n`, else undefined. */
function rarely<T>(arb: fc.Arbitrary<T>, n: number): fc.Arbitrary<T | undefined> {
  return fc.oneof({ weight: n - 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });
}
const messageArb = fc
  .record({
    req: requestArb,
    reqId: u32,
    txId: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: fc.nat({ max: 3 }) }, { weight: 1, arbitrary: u32 }),
    // Now and then: another type, the last NUL gone, a byte flipped, raw bytes, a false length.
    type: rarely(fc.oneof(fc.nat({ max: 27 }), fc.constantFrom(99, 0xffff), u32), 10),
    chop: rarely(fc.constant(true), 10),
    flip: rarely(fc.tuple(fc.nat(), fc.nat({ max: 255 })), 15),
    rawPayload: rarely(fc.uint8Array({ maxLength: 64 }), 15),
    len: rarely(fc.oneof(fc.nat({ max: 80 }), fc.constantFrom(4096, 4097), u32), 25),
  })
  .map((m) => {
    let payload = m.rawPayload ? Buffer.from(m.rawPayload) : Buffer.concat([strs(...m.req.strings), Buffer.from(m.req.value ?? '', 'latin1')]);
    if (m.chop && payload.length > 0) payload = payload.subarray(0, payload.length - 1);
    if (m.flip && payload.length > 0) payload[m.flip[0] % payload.length] = m.flip[1];
    return msg(m.type ?? m.req.type, m.reqId, m.txId, payload, m.len ?? undefined);
  });
const streamArb = fc.oneof(
  { weight: 6, arbitrary: fc.array(messageArb, { maxLength: 16 }).map((ms) => Buffer.concat(ms)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.tuple(fc.array(messageArb, { maxLength: 4 }), fc.uint8Array({ maxLength: 40 })).map(([ms, tail]) => Buffer.concat([...ms, tail])) },
);
/** Cut points for writing the stream in pieces. */
const cutsArb = fc.array(fc.nat({ max: 2000 }), { maxLength: 6 });

const SENTINEL_REQ = 0x5e71_e1;

describe('xenstored socket: garbage', () => {
  it('any byte stream gets one in-order reply per complete request, or a close; the daemon survives', async () => {
    const env = await start();
    let closedRuns = 0;
    let repliesSeen = 0;
    await fc.assert(
      fc.asyncProperty(streamArb, cutsArb, async (garbage, cuts) => {
        // Complete the last message with zeros so that the outcome is decided, then add a sentinel.
        let all = garbage;
        for (let f = frames(all); f.missing > 0; f = frames(all)) all = Buffer.concat([all, Buffer.alloc(f.missing)]);
        const f = frames(all);
        if (!f.bad) all = Buffer.concat([all, msg(XS_GET_DOMAIN_PATH, SENTINEL_REQ, 0, strs('9'))]);
        const expected = f.bad ? f.msgs : [...f.msgs, { type: XS_GET_DOMAIN_PATH, reqId: SENTINEL_REQ, txId: 0, payload: Buffer.alloc(0) }];

        const c = await raw(env);
        const points = [...new Set(cuts.map((x) => x % (all.length + 1)))].sort((a, b) => a - b);
        let from = 0;
        for (const p of [...points, all.length]) {
          if (p > from) c.write(all.subarray(from, p));
          from = Math.max(from, p);
        }
        if (f.bad) await c.waitClosed();
        else await waitUntil(() => c.replies().length >= expected.length || c.closed, 5000, `${expected.length} replies`);

        const replies = c.replies();
        if (f.bad) closedRuns++;
        else {
          expect(c.closed).toBe(false);
          expect(replies).toHaveLength(expected.length);
          expect(text(replies[replies.length - 1]!)).toBe('/local/domain/9');
        }
        // Replies (all of them, or those that got out before the close) match the requests in order.
        expect(replies.length).toBeLessThanOrEqual(expected.length);
        replies.forEach((r, i) => {
          const q = expected[i]!;
          expect(r.reqId).toBe(q.reqId);
          expect(r.txId).toBe(q.txId);
          expect([q.type, XS_ERROR]).toContain(r.type);
          if (r.type === XS_ERROR) expect(text(r)).toMatch(/^E[A-Z0-9]+$/);
        });
        for (const e of c.events()) expect([e.reqId, e.txId]).toEqual([0, 0]);
        repliesSeen += replies.length;
        await expectNoLeaks(env);
        await expectServing(env);
      }),
      { numRuns: 250 },
    );
    expect(closedRuns).toBeGreaterThan(10);
    expect(repliesSeen).toBeGreaterThan(250);
  }, 60_000);
});

// ---- clients that do not read ----------------------------------------------------------------

const MB = 1 << 20;

describe('xenstored socket: clients that stop reading', () => {
  it('10,000 big-reply requests never read: memory stays bounded, others are served promptly, no reply is lost', async () => {
    const env = await start();
    const admin = await client(env);
    const value = 'x'.repeat(4000);
    await admin.write('/big', value);
    const rss0 = process.memoryUsage().rss;

    const hog = await raw(env, { read: false });
    const req = msg(XS_READ, 0, 0, strs('/big'));
    const N = 10_000;
    const burst = Buffer.concat(
      Array.from({ length: N }, (_, i) => {
        const b = Buffer.from(req);
        b.writeUInt32LE(i + 1, 4);
        return b;
      }),
    );
    hog.write(burst);
    await sleep(300); // let the daemon take what it will

    // Others are served promptly meanwhile.
    const other = await client(env);
    let worst = 0;
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      await other.write(`/busy/k${i % 10}`, String(i));
      expect(await other.readString(`/busy/k${i % 10}`)).toBe(String(i));
      worst = Math.max(worst, performance.now() - t0);
    }
    expect(worst, `slowest answer ${worst.toFixed(0)} ms`).toBeLessThan(1000);
    // ~20 MB here; a daemon that kept reading (no backpressure) would hold all 40 MB of replies
    // and grow by over 100 MB.
    const grown = (process.memoryUsage().rss - rss0) / MB;
    expect(grown, `RSS grew by ${grown.toFixed(1)} MB`).toBeLessThan(50);
    expect(hog.messages).toEqual([]);

    // Once it reads, it gets every reply, in order: output is throttled, never dropped.
    hog.sock.resume();
    await waitUntil(() => hog.replies().length >= N || hog.closed, 20_000, `${N} replies (have ${hog.replies().length})`);
    const replies = hog.replies();
    expect(replies).toHaveLength(N);
    expect(replies.every((m, i) => m.reqId === i + 1 && m.type === XS_READ && m.payload.length === 4000)).toBe(true);
    replies.length = 0;
    hog.messages.length = 0;

    // One that disconnects without ever reading is forgotten.
    const quitter = await raw(env, { read: false });
    quitter.write(burst);
    await sleep(100);
    quitter.destroy();
    await expectNoLeaks(env);
  }, 60_000);

  it('a watcher that stops reading while another client does 100,000 writes: its events are dropped, nobody else is affected', async () => {
    const env = await start();
    const slow = await raw(env);
    expect(text(await slow.request(XS_WATCH, 1, 0, strs('/hot', 'slow-token')))).toBe('OK');
    await waitUntil(() => slow.events().length === 1, 2000, 'the initial event');
    slow.sock.pause();

    const reader = await client(env);
    let seen = 0;
    await reader.watch('/hot', () => seen++);
    await waitUntil(() => seen === 1, 2000, 'the initial event of the reading watcher');

    const writer = await client(env);
    const rss0 = process.memoryUsage().rss;
    const N = 100_000;
    const BATCH = 1000;
    const long = 'p'.repeat(200);
    let worst = 0;
    const prober = await client(env);
    for (let i = 0; i < N; i += BATCH) {
      await Promise.all(Array.from({ length: BATCH }, (_, j) => writer.write(`/hot/${long}${(i + j) % 16}`, String(i + j))));
      if (i % 10_000 === 0) {
        const t0 = performance.now();
        await prober.getDomainPath(1);
        worst = Math.max(worst, performance.now() - t0);
      }
    }
    await waitUntil(() => seen === N + 1, 10_000, `all ${N + 1} events for the reading watcher (have ${seen})`);
    expect(worst, `slowest answer ${worst.toFixed(0)} ms`).toBeLessThan(1000);
    const grown = (process.memoryUsage().rss - rss0) / MB;
    expect(grown, `RSS grew by ${grown.toFixed(1)} MB`).toBeLessThan(100);
    expect(env.logs.some((l) => /not reading: dropping its watch events/.test(l))).toBe(true);

    // The slow one resumes: some events came, the rest were dropped, and it is still served.
    slow.sock.resume();
    const r = await slow.request(XS_GET_DOMAIN_PATH, 2, 0, strs('4'));
    expect(text(r)).toBe('/local/domain/4');
    const got = slow.events().length;
    expect(got).toBeGreaterThan(1);
    expect(got).toBeLessThan(N + 1);
    expect(env.daemon.stats.watches).toBe(2);
    await expectNoLeaks(env);
  }, 120_000);
});

// ---- an unprivileged (guest-like) connection -------------------------------------------------

describe('an unprivileged connection (domain 7)', () => {
  async function setup(): Promise<{ env: Env; dom0: XsClient; guest: XsClient }> {
    const env = await start();
    const dom0 = connectPipe(env.daemon);
    const guest = connectPipe(env.daemon, { domid: 7, privileged: false });
    env.clients.push(dom0, guest);
    await dom0.mkdir('/local/domain/7');
    await dom0.setPerms('/local/domain/7', [{ domid: 7, access: 'n' }]);
    await dom0.write('/secret/s', 'hidden');
    await dom0.write('/shared', 'for all');
    await dom0.setPerms('/shared', [
      { domid: 0, access: 'n' },
      { domid: 7, access: 'r' },
    ]);
    await dom0.write('/rw', 'both');
    await dom0.setPerms('/rw', [
      { domid: 0, access: 'n' },
      { domid: 7, access: 'b' },
    ]);
    return { env, dom0, guest };
  }

  const code = (p: Promise<unknown>): Promise<unknown> =>
    p.then(
      () => 'ok',
      (e: unknown) => (e as { code?: unknown }).code,
    );

  it('gets EACCES outside its permissions, and ENOENT never reveals what it cannot read', async () => {
    const { env, dom0, guest } = await setup();
    expect({
      readSecret: await code(guest.read('/secret/s')),
      readSecretDir: await code(guest.directory('/secret')),
      readMissingInSecret: await code(guest.read('/secret/none/deeper')),
      readTool: await code(guest.read('/tool/xenstored')),
      listRoot: await code(guest.directory('/')),
      permsSecret: await code(guest.getPerms('/secret/s')),
      writeSecret: await code(guest.write('/secret/s', 'mine')),
      createTop: await code(guest.write('/newtop', 'x')),
      mkdirTop: await code(guest.mkdir('/newdir')),
      rmSecret: await code(guest.rm('/secret')),
      chmodSecret: await code(guest.setPerms('/secret/s', [{ domid: 7, access: 'b' }])),
      writeShared: await code(guest.write('/shared', 'no')),
      writeOtherHome: await code(guest.write('/local/domain/8/x', 'no')),
      introduce: await code(guest.introduceDomain(9, 1, 1)),
      release: await code(guest.releaseDomain(9)),
      control: await code(guest.request(XS_CONTROL, ['help'])),
      chmodSpecial: await code(guest.setPerms('@releaseDomain', [{ domid: 7, access: 'r' }])),
    }).toEqual({
      readSecret: 'EACCES',
      readSecretDir: 'EACCES',
      readMissingInSecret: 'EACCES',
      readTool: 'EACCES',
      listRoot: 'EACCES',
      permsSecret: 'EACCES',
      writeSecret: 'EACCES',
      createTop: 'EACCES',
      mkdirTop: 'EACCES',
      rmSecret: 'EACCES',
      chmodSecret: 'EACCES',
      writeShared: 'EACCES',
      writeOtherHome: 'EACCES',
      introduce: 'EACCES',
      release: 'EACCES',
      control: 'EACCES',
      chmodSpecial: 'EACCES',
    });
    // Nothing changed.
    expect(await dom0.readString('/secret/s')).toBe('hidden');
    expect(await dom0.tryRead('/newtop')).toBeUndefined();
    expect(await dom0.readString('/shared')).toBe('for all');

    // What it may do.
    expect(await guest.readString('/shared')).toBe('for all');
    await guest.write('/rw', 'guest was here');
    expect(await dom0.readString('/rw')).toBe('guest was here');
    await guest.write('data/x', 'relative');
    expect(await dom0.readString('/local/domain/7/data/x')).toBe('relative');
    expect(await guest.getPerms('data/x')).toEqual([{ domid: 7, access: 'n' }]);
    expect(await code(guest.read('/local/domain/7/nothing'))).toBe('ENOENT');
    // It owns its nodes but cannot give them away.
    expect(await code(guest.setPerms('data/x', [{ domid: 8, access: 'r' }]))).toBe('EPERM');
    await guest.setPerms('data/x', [
      { domid: 7, access: 'n' },
      { domid: 8, access: 'r' },
    ]);
    await expectNoLeaks(env);
  });

  it('gets no watch event for nodes it cannot read', async () => {
    const { env, dom0, guest } = await setup();
    const events: string[] = [];
    await guest.watch('/secret', (e) => events.push(e.path));
    await guest.watch('/shared', (e) => events.push(e.path));
    expect(events).toEqual(['/secret', '/shared']); // the initial events
    await dom0.write('/secret/s', 'changed');
    await dom0.write('/secret/t', 'new');
    await dom0.write('/shared', 'changed too');
    await guest.getDomainPath(7); // a round trip: anything due has arrived
    expect(events).toEqual(['/secret', '/shared', '/shared']);
    expect(env.daemon.stats.watches).toBe(2);
    await expectNoLeaks(env);
  });

  it('exhausting its node quota (1000) gives ENOSPC and creates nothing half-way; freeing nodes lets it create again', async () => {
    const { env, dom0, guest } = await setup();
    const owned = (): number => env.daemon.store.tree.ownedBy(7);
    expect(owned()).toBe(1); // its home
    await guest.mkdir('q');
    let i = 0;
    while (owned() < 998) await guest.write(`q/n${i++}`, '');
    // Three new nodes (q2, q2/a, q2/a/b) would make 1001.
    expect(await code(guest.write('q2/a/b', 'x'))).toBe('ENOSPC');
    expect(await dom0.tryRead('/local/domain/7/q2')).toBeUndefined();
    expect(owned()).toBe(998);
    await guest.write(`q/n${i++}`, '');
    await guest.write(`q/n${i++}`, '');
    expect(owned()).toBe(1000);
    expect(await code(guest.write(`q/n${i}`, ''))).toBe('ENOSPC');
    expect(await code(guest.mkdir(`q/m`))).toBe('ENOSPC');
    expect(await code(guest.transaction((tx) => tx.write('q/intx', '')))).toBe('ENOSPC');
    expect(owned()).toBe(1000);
    // Overwriting an existing node needs no new one.
    await guest.write('q/n0', 'still fine');
    // dom0 is never limited; what it creates under the guest's home inherits the owner (7), as in xenstored.
    await dom0.write('/local/domain/7/from-dom0', 'x');
    expect(await dom0.getPerms('/local/domain/7/from-dom0')).toEqual([{ domid: 7, access: 'n' }]);
    expect(owned()).toBe(1001);
    await guest.rm('q/n1');
    await guest.rm('q/n2');
    expect(owned()).toBe(999);
    await guest.write(`q/n${i}`, 'room again');
    expect(await code(guest.write(`q/n${i + 1}`, ''))).toBe('ENOSPC');
    await expectNoLeaks(env);
  });

  it('other quotas: value size 2048 (ENOSPC), 10 transactions (ENOSPC), 128 watches (E2BIG)', async () => {
    const { env, guest } = await setup();
    await guest.write('v', 'x'.repeat(2048));
    expect(await code(guest.write('v', 'x'.repeat(2049)))).toBe('ENOSPC');
    const txs: number[] = [];
    for (let t = 0; t < 10; t++) txs.push(Number(text({ type: 0, reqId: 0, txId: 0, payload: Buffer.from(await guest.request(XS_TRANSACTION_START, [''])) })));
    expect(await code(guest.request(XS_TRANSACTION_START, ['']))).toBe('ENOSPC');
    expect(env.daemon.stats.transactions).toBe(10);
    for (const t of txs) await guest.request(XS_TRANSACTION_END, ['F'], { tx: t });
    for (let w = 0; w < 128; w++) await guest.watch(`w${w}`, () => undefined);
    expect(await code(guest.watch('w-one-too-many', () => undefined))).toBe('E2BIG');
    expect(env.daemon.stats).toMatchObject({ watches: 128, transactions: 0 });
    // XS_INTRODUCE from dom0 without a platform: ENOSYS, not a crash.
    const dom0raw = await raw(env);
    expect(errorOf(await dom0raw.request(XS_INTRODUCE, 1, 0, strs('9', '1', '1')))).toBe('ENOSYS');
    await expectNoLeaks(env);
  });
});

/**
 * ViewerFeed, driven the way the backend drives a Presenter (openConnector, configure, present)
 * with fake viewer clients that collect what they are sent and draw it: a new client gets the
 * connector list then the current frame whole; per client and connector at most `window` frames
 * are in flight (never a queue: an acknowledgement brings the newest frame, the ones in between
 * are skipped and counted); acknowledging the older of two frees one place; present() never calls
 * a client (the work happens later), so frame-done never waits for a viewer; a client that never
 * acknowledges does not hold back one that does; a removed client or connector gets nothing more,
 * and a closed connector leaves the list; latencies are paint time minus flip time; encode
 * failures are logged and retried whole; close() stops everything, with the worker encoder too.
 * Every frame a client receives, drawn over the previous ones, is exactly the frame it says it is.
 *
 * Bad inputs tried: acknowledgements with a seq never sent, already acknowledged, NaN or
 * negative, for an unknown connector id, from a client never added or already removed, with a
 * non-finite paint time (frees the place, records no latency), for a frame still being encoded;
 * windows 0, -1, 1.5, NaN and Infinity (refused); 70,000 connectors opened and closed (ids stay u16);
 * the guest drawing into a frame while it is encoded;
 * removeClient twice and of an unknown client; close() twice.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { pixelFormatByName } from '../../../src/abi/fourcc.js';
import type { ConnectorInfo, ConnectorOutput, Frame } from '../../../src/back/presenter.js';
import { DmaBuf } from '../../../src/dmabuf/dmabuf.js';
import { type EncodedFrame, type FrameEncoder, type FrameJob, InlineFrameEncoder } from '../../../src/present/frame-encoder.js';
import { decodeUpdate, type UpdateHeader, viewerCodec } from '../../../src/present/frame-update.js';
import { toRgba } from '../../../src/present/pixels.js';
import { unrle } from '../../../src/present/tiles.js';
import { type ViewerClient, ViewerFeed } from '../../../src/present/viewer-feed.js';

const PAGE = 4096;
const XRGB8888 = pixelFormatByName('XRGB8888')!;
const W = 131;
const H = 70;
const INFO: ConnectorInfo = { frontendDomid: 1, devid: 0, index: 0, uniqueId: 'DP-1', width: W, height: H };
const NAME = 'd1 vdispl0 #0 (DP-1)';

/** Lets setImmediate work and the promises it starts run. */
const flush = async (times = 3): Promise<void> => {
  for (let i = 0; i < times; i++) await new Promise<void>((r) => setImmediate(r));
};

const hash = (k: number): number => Math.imul(k + 1, 2654435761) >>> 24;

/** Frame number `n`: a fixed background with a 10x10 square whose place and colour depend on n. */
function makeFrame(n: number, o: { width?: number; height?: number; shared?: boolean; dmabuf?: boolean } = {}): Frame {
  const width = o.width ?? W;
  const height = o.height ?? H;
  const pitch = width * 4;
  const size = pitch * height;
  const pages = Math.ceil(size / PAGE);
  const view = new Uint8Array(o.shared ? new SharedArrayBuffer(pages * PAGE) : new ArrayBuffer(pages * PAGE));
  for (let i = 0; i < size; i++) view[i] = hash(i >> 8);
  const sx = (n * 17) % (width - 10);
  const sy = (n * 13) % (height - 10);
  for (let y = sy; y < sy + 10; y++) view.fill((n * 29 + 7) & 0xff, y * pitch + sx * 4, y * pitch + (sx + 10) * 4);
  const page = (i: number): Uint8Array => view.subarray(i * PAGE, (i + 1) * PAGE);
  const dmabuf = o.dmabuf ? DmaBuf.create({ size: pages * PAGE, page, contiguous: view, release: () => undefined }) : undefined;
  return { fbCookie: 1n, format: XRGB8888, width, height, pitch, offset: 0, size, view, page, dmabuf };
}

const rgbaOf = (f: Frame, width = f.width, height = f.height): Uint8Array =>
  toRgba({ bytes: f.view!, offset: f.offset, pitch: f.pitch, width, height, format: f.format }) as Uint8Array;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

interface Received {
  readonly id: number;
  readonly seq: number;
  readonly flipTime: number;
  readonly tiles: number;
}

/** A viewer page without a browser: collects messages and draws frames on one canvas per connector. */
class FakeClient implements ViewerClient {
  readonly frames: Received[] = [];
  readonly json: unknown[] = [];
  /** 'json' / 'frame', in the order they were sent. */
  readonly order: string[] = [];
  readonly canvases = new Map<number, { width: number; height: number; rgba: Uint8Array }>();
  private waiters: (() => void)[] = [];

  constructor(private readonly onFrame?: (r: Received) => void) {}

  sendFrame(msg: Uint8Array): void {
    const u = decodeUpdate(msg);
    let c = this.canvases.get(u.id);
    if (!c || c.width !== u.width || c.height !== u.height) this.canvases.set(u.id, (c = { width: u.width, height: u.height, rgba: new Uint8Array(u.width * u.height * 4) }));
    for (const t of u.tiles) {
      const rgba = t.encoding === 1 ? new Uint8Array(unrle(t.data, t.w * t.h).buffer) : t.data;
      for (let row = 0; row < t.h; row++) c.rgba.set(rgba.subarray(row * t.w * 4, (row + 1) * t.w * 4), ((t.y + row) * u.width + t.x) * 4);
    }
    const r = { id: u.id, seq: u.seq, flipTime: u.flipTime, tiles: u.tiles.length };
    this.frames.push(r);
    this.order.push('frame');
    for (const w of this.waiters.splice(0)) w();
    this.onFrame?.(r);
  }

  sendJson(msg: unknown): void {
    this.json.push(structuredClone(msg));
    this.order.push('json');
  }

  get last(): Received {
    return this.frames[this.frames.length - 1]!;
  }

  /** What connector `id` shows now. */
  shows(id: number): Uint8Array | undefined {
    return this.canvases.get(id)?.rgba;
  }

  async waitFrames(n: number): Promise<void> {
    while (this.frames.length < n) await new Promise<void>((r) => this.waiters.push(r));
  }
}

/** A new client added to `feed`, once it has what it is sent on joining. */
async function join(feed: ViewerFeed): Promise<FakeClient> {
  const client = new FakeClient();
  feed.addClient(client);
  await flush();
  return client;
}

/** An encoder whose jobs wait until released, to have work in flight for as long as a test needs. */
class GatedEncoder implements FrameEncoder<UpdateHeader> {
  private readonly inner = new InlineFrameEncoder(viewerCodec);
  readonly held: { readonly job: FrameJob<UpdateHeader>; readonly run: () => void; readonly fail: (e: Error) => void }[] = [];
  readonly forgotten: string[] = [];

  encode(job: FrameJob<UpdateHeader>): Promise<EncodedFrame> {
    return new Promise((resolve, reject) => {
      this.held.push({ job, run: () => resolve(this.inner.encodeNow(job)), fail: reject });
    });
  }

  release(): void {
    for (const h of this.held.splice(0)) h.run();
  }

  forget(slot: string): void {
    this.forgotten.push(slot);
    this.inner.forget(slot);
  }

  close(): Promise<void> {
    for (const h of this.held.splice(0)) h.fail(new Error('closed'));
    return this.inner.close();
  }
}

const feeds: ViewerFeed[] = [];
function newFeed(opts: ConstructorParameters<typeof ViewerFeed>[0] = { encoder: new InlineFrameEncoder(viewerCodec) }): ViewerFeed {
  const f = new ViewerFeed(opts);
  feeds.push(f);
  return f;
}

afterEach(async () => {
  vi.useRealTimers();
  for (const f of feeds.splice(0)) await f.close();
});

/** A connector showing frame 0 at W x H (configured before or after clients join, as asked). */
function connector(feed: ViewerFeed, frame = makeFrame(0), info = INFO): { out: ConnectorOutput } {
  const out = feed.openConnector(info);
  out.configure({ frame, x: 0, y: 0, width: info.width, height: info.height });
  return { out };
}

/** Flips like the backend does; the feed presents at once (frame-done never waits for a viewer). */
function present(out: ConnectorOutput, frame: Frame): void {
  expect(out.present(frame)).toBeUndefined();
}

/** Tiles the moving square of frames `n - 1` and `n` covers (what a delta between them carries). */
function squareTiles(n: number): number {
  const tiles = new Set<string>();
  for (const k of [n - 1, n]) {
    const sx = (k * 17) % (W - 10);
    const sy = (k * 13) % (H - 10);
    for (const x of [sx, sx + 9]) for (const y of [sy, sy + 9]) tiles.add(`${x >> 6},${y >> 6}`);
  }
  return tiles.size;
}

describe('ViewerFeed', () => {
  it('a new client gets the connector list, then the current frame whole', async () => {
    const feed = newFeed();
    const out = feed.openConnector(INFO);
    const frame = makeFrame(0);
    out.configure({ frame, x: 0, y: 0, width: 100, height: 60 }); // a mode smaller than the frame
    present(out, makeFrame(1));
    const f2 = makeFrame(2);
    present(out, f2);
    const client = new FakeClient();
    feed.addClient(client);
    expect(client.json).toEqual([{ type: 'connectors', connectors: [{ id: 1, name: NAME, width: 100, height: 60, format: 'XRGB8888' }] }]);
    await flush();
    expect(client.order).toEqual(['json', 'frame']);
    expect(client.frames).toEqual([{ id: 1, seq: 3, flipTime: expect.any(Number) as number, tiles: 2 }]);
    expect(sameBytes(client.shows(1)!, rgbaOf(f2, 100, 60))).toBe(true);
    expect(feed.inFlight(client)).toBe(1);
  });

  it('a connector without a mode is listed with its XenStore size and sends nothing; list() follows modes', async () => {
    const feed = newFeed();
    const client = new FakeClient();
    feed.addClient(client);
    expect(client.json).toEqual([{ type: 'connectors', connectors: [] }]);
    const out = feed.openConnector(INFO);
    expect(client.json[1]).toEqual({ type: 'connectors', connectors: [{ id: 1, name: NAME, width: W, height: H, format: '' }] });
    present(out, makeFrame(1)); // a flip without a mode: nothing to show
    await flush();
    expect(client.frames).toEqual([]);
    out.configure({ frame: makeFrame(1), x: 0, y: 0, width: W, height: H });
    await flush();
    expect(client.json).toHaveLength(3);
    expect(client.json[2]).toEqual({ type: 'connectors', connectors: [{ id: 1, name: NAME, width: W, height: H, format: 'XRGB8888' }] });
    expect(client.frames).toHaveLength(1);
    expect(feed.list()).toEqual([{ id: 1, name: NAME, width: W, height: H, format: 'XRGB8888' }]);
  });

  it('at most two frames in flight; an acknowledgement brings the newest frame, the ones in between are skipped', async () => {
    const feed = newFeed();
    const f0 = makeFrame(0);
    const { out } = connector(feed, f0);
    const client = await join(feed);
    expect(client.frames.map((f) => f.seq)).toEqual([1]);
    const presented = new Map<number, Frame>([[1, f0]]);
    for (let n = 1; n <= 10; n++) {
      const f = makeFrame(n);
      present(out, f);
      presented.set(n + 1, f);
      await flush();
      expect(client.frames.length).toBeLessThanOrEqual(2);
    }
    expect(client.frames.map((f) => f.seq)).toEqual([1, 2]);
    expect(feed.inFlight(client)).toBe(2);
    expect(sameBytes(client.shows(1)!, rgbaOf(presented.get(2)!))).toBe(true);

    feed.ack(client, 1, 2, NaN); // the newest sent: both painted
    await flush();
    expect(client.frames.map((f) => f.seq)).toEqual([1, 2, 11]);
    expect(sameBytes(client.shows(1)!, rgbaOf(presented.get(11)!))).toBe(true);
    expect(feed.inFlight(client)).toBe(1);
    let fig = feed.figures()[0]!;
    expect({ presented: fig.presented, painted: fig.painted, skipped: fig.skipped, encoded: fig.encoded }).toEqual({ presented: 10, painted: 2, skipped: 8, encoded: 3 });

    // Two more flips: the first fills the window, the second waits.
    for (const n of [11, 12]) {
      const f = makeFrame(n);
      present(out, f);
      presented.set(n + 1, f);
      await flush();
    }
    expect(client.frames.map((f) => f.seq)).toEqual([1, 2, 11, 12]);
    feed.ack(client, 1, 11, NaN); // the older of the two: one place frees
    await flush();
    expect(client.frames.map((f) => f.seq)).toEqual([1, 2, 11, 12, 13]);
    expect(feed.inFlight(client)).toBe(2);
    expect(sameBytes(client.shows(1)!, rgbaOf(presented.get(13)!))).toBe(true);
    fig = feed.figures()[0]!;
    expect({ presented: fig.presented, painted: fig.painted, skipped: fig.skipped }).toEqual({ presented: 12, painted: 3, skipped: 8 });
    expect(fig.bytes).toBeGreaterThan(0);

    // Everything acknowledged and nothing new: nothing is sent.
    feed.ack(client, 1, 13, NaN);
    await flush();
    expect(client.frames).toHaveLength(5);
    expect(feed.inFlight(client)).toBe(0);
    expect(feed.figures()[0]!.painted).toBe(5);
  });

  it('a window that is not an integer >= 1 (0, -1, 1.5, NaN, Infinity) is refused', () => {
    for (const window of [0, -1, 1.5, NaN, Infinity]) expect(() => new ViewerFeed({ encoder: new InlineFrameEncoder(viewerCodec), window }), String(window)).toThrow(RangeError);
  });

  it('window 1: one frame in flight', async () => {
    for (const window of [1]) {
      const feed = newFeed({ encoder: new InlineFrameEncoder(viewerCodec), window });
      const { out } = connector(feed);
      const client = await join(feed);
      for (let n = 1; n <= 3; n++) {
        present(out, makeFrame(n));
        await flush();
      }
      expect(client.frames.map((f) => f.seq), `window ${window}`).toEqual([1]);
      feed.ack(client, 1, 1, NaN);
      await flush();
      expect(client.frames.map((f) => f.seq), `window ${window}`).toEqual([1, 4]);
    }
  });

  it('stale, unknown and malformed acknowledgements change nothing and throw nothing', async () => {
    const feed = newFeed();
    const { out } = connector(feed);
    const client = await join(feed);
    present(out, makeFrame(1));
    await flush();
    present(out, makeFrame(2));
    await flush();
    expect(client.frames.map((f) => f.seq)).toEqual([1, 2]);
    const before = JSON.stringify(feed.figures());
    const stranger = new FakeClient();
    const bad: [ViewerClient, number, number, number][] = [
      [client, 1, 3, 0], // presented, never sent
      [client, 1, 99, 0],
      [client, 1, 0, 0],
      [client, 1, -1, 0],
      [client, 1, NaN, 0],
      [client, 2, 1, 0], // no such connector
      [client, 0, 1, 0],
      [stranger, 1, 1, 0], // never added
    ];
    for (const [c, id, seq, t] of bad) expect(() => feed.ack(c, id, seq, t)).not.toThrow();
    await flush();
    expect(client.frames).toHaveLength(2);
    expect(feed.inFlight(client)).toBe(2);
    expect(feed.inFlight(stranger)).toBe(0);
    expect(stranger.frames).toHaveLength(0);
    expect(JSON.stringify(feed.figures())).toBe(before);

    // A real one, then the same again and an older one: no effect the second time.
    feed.ack(client, 1, 1, NaN);
    await flush();
    expect(client.frames.map((f) => f.seq)).toEqual([1, 2, 3]);
    const after = JSON.stringify(feed.figures());
    feed.ack(client, 1, 1, NaN);
    feed.ack(client, 1, 1, 12345);
    await flush();
    expect(client.frames).toHaveLength(3);
    expect(JSON.stringify(feed.figures())).toBe(after);

    // From a client that has gone.
    feed.removeClient(client);
    expect(() => feed.ack(client, 1, 2, 0)).not.toThrow();
    expect(feed.inFlight(client)).toBe(0);
  });

  it('present() never calls a client: the work happens after it returns', async () => {
    const feed = newFeed();
    const { out } = connector(feed);
    const client = await join(feed);
    const sent = client.order.length;
    const r = out.present(makeFrame(1)) as unknown;
    expect(r).toBeUndefined(); // presented at once: frame-done is not held for the viewer
    out.configure({ frame: makeFrame(2), x: 0, y: 0, width: 100, height: H }); // a mode change too
    expect(client.order).toHaveLength(sent);
    await flush();
    // The mode change lists the new size before its frame.
    expect(client.order.slice(sent)).toEqual(['json', 'frame']);
    expect(client.json[client.json.length - 1]).toEqual({ type: 'connectors', connectors: [{ id: 1, name: NAME, width: 100, height: H, format: 'XRGB8888' }] });
    expect(client.last).toMatchObject({ seq: 3, tiles: 4 }); // a new size: whole
  });

  it('a client that never acknowledges does not hold back one that does', async () => {
    const feed = newFeed();
    const { out } = connector(feed);
    const fast: FakeClient = new FakeClient((r) => feed.ack(fast, r.id, r.seq, NaN));
    const slow = new FakeClient();
    feed.addClient(slow);
    feed.addClient(fast);
    await flush();
    let last = makeFrame(0);
    for (let n = 1; n <= 8; n++) {
      last = makeFrame(n);
      present(out, last);
      await flush();
      expect(fast.last.seq).toBe(n + 1);
    }
    expect(fast.frames.map((f) => f.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(slow.frames.map((f) => f.seq)).toEqual([1, 2]);
    expect(sameBytes(fast.shows(1)!, rgbaOf(last))).toBe(true);
    // Each frame after the first is a delta: the tiles where the square was and is.
    expect(fast.frames.map((f) => f.tiles)).toEqual([6, ...[1, 2, 3, 4, 5, 6, 7, 8].map(squareTiles)]);
    expect(feed.figures()[0]!.skipped).toBe(0);
  });

  it('clients have their own shadows: one joining later gets the frame whole, the other a delta', async () => {
    const feed = newFeed();
    const { out } = connector(feed);
    const a = new FakeClient();
    feed.addClient(a);
    await flush();
    feed.ack(a, 1, 1, NaN);
    const f1 = makeFrame(1);
    present(out, f1);
    const b = new FakeClient();
    feed.addClient(b);
    await flush();
    expect(a.last.seq).toBe(2);
    expect(a.last.tiles).toBe(squareTiles(1));
    expect(b.frames).toEqual([expect.objectContaining({ seq: 2, tiles: 6 })]);
    for (const c of [a, b]) expect(sameBytes(c.shows(1)!, rgbaOf(f1))).toBe(true);
  });

  it('removeClient while its frame is being encoded: nothing reaches it afterwards, its shadows are dropped', async () => {
    const encoder = new GatedEncoder();
    const feed = newFeed({ encoder });
    const { out } = connector(feed);
    const gone = new FakeClient();
    const stays = new FakeClient();
    feed.addClient(gone);
    feed.addClient(stays);
    expect(encoder.held).toHaveLength(2);
    feed.removeClient(gone);
    expect(encoder.forgotten).toEqual(['1:1']);
    encoder.release();
    await flush();
    expect(gone.frames).toHaveLength(0);
    expect(stays.frames).toHaveLength(1);
    present(out, makeFrame(1));
    await flush();
    encoder.release();
    await flush();
    expect(gone.frames).toHaveLength(0);
    expect(gone.json).toHaveLength(1);
    expect(stays.frames).toHaveLength(2);
    expect(() => feed.removeClient(gone)).not.toThrow();
    expect(() => feed.removeClient(new FakeClient())).not.toThrow();
  });

  it('a connector closed while its frame is being encoded: not sent, gone from the list, a new list broadcast', async () => {
    const encoder = new GatedEncoder();
    const feed = newFeed({ encoder });
    const { out: keep } = connector(feed);
    const { out } = connector(feed, makeFrame(5), { ...INFO, index: 1, uniqueId: 'DP-2' });
    const client = new FakeClient();
    feed.addClient(client);
    expect(feed.list().map((c) => c.id)).toEqual([1, 2]);
    expect(encoder.held.map((h) => h.job.slot)).toEqual(['1:1', '1:2']);
    present(out, makeFrame(6)); // pending for the next flush too
    out.close();
    expect(feed.list().map((c) => c.id)).toEqual([1]);
    expect(client.json[client.json.length - 1]).toEqual({ type: 'connectors', connectors: [{ id: 1, name: NAME, width: W, height: H, format: 'XRGB8888' }] });
    expect(encoder.forgotten).toEqual(['1:2']);
    encoder.release();
    await flush();
    expect(client.frames.map((f) => f.id)).toEqual([1]);
    expect(feed.figures().map((f) => f.id)).toEqual([1]);
    expect(() => feed.ack(client, 2, 1, 0)).not.toThrow();
    present(keep, makeFrame(1));
    await flush();
    encoder.release();
    await flush();
    expect(client.frames.map((f) => f.id)).toEqual([1, 1]);
  });

  it('latency is paint time minus flip time, one per acknowledgement', async () => {
    const feed = newFeed();
    const { out } = connector(feed);
    const client = await join(feed);
    const t0 = performance.timeOrigin + performance.now();
    present(out, makeFrame(1));
    const t1 = performance.timeOrigin + performance.now();
    await flush();
    const flipTime = client.last.flipTime;
    expect(flipTime).toBeGreaterThanOrEqual(t0);
    expect(flipTime).toBeLessThanOrEqual(t1);
    feed.ack(client, 1, client.last.seq, flipTime + 25); // covers frame 1 too: one latency, of the acknowledged frame
    feed.ack(client, 1, 999, flipTime + 50); // not in flight: nothing
    let fig = feed.figures()[0]!;
    expect(fig.latencies).toHaveLength(1);
    expect(fig.latencies[0]).toBeCloseTo(25, 3);
    expect(fig.painted).toBe(2);

    present(out, makeFrame(2));
    await flush();
    feed.ack(client, 1, client.last.seq, Infinity); // painted, but no usable time
    fig = feed.figures()[0]!;
    expect(fig.latencies).toHaveLength(1);
    expect(fig.painted).toBe(3);
  });

  it('an encode failure is logged, frees the place, drops the shadow, and the frame is retried whole', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout'] });
    const inner = new InlineFrameEncoder(viewerCodec);
    let failNext = false;
    const forgotten: string[] = [];
    const encoder: FrameEncoder<UpdateHeader> = {
      encode: (job) => {
        if (!failNext) return inner.encode(job);
        failNext = false;
        return Promise.reject(new Error('boom'));
      },
      forget: (slot) => {
        forgotten.push(slot);
        inner.forget(slot);
      },
      close: () => inner.close(),
    };
    const logs: string[] = [];
    const feed = newFeed({ encoder, log: (t) => logs.push(t) });
    const { out } = connector(feed);
    const client = await join(feed);
    feed.ack(client, 1, 1, NaN);
    failNext = true;
    const f1 = makeFrame(1);
    present(out, f1);
    await flush();
    expect(logs).toEqual([`viewer: encoding ${NAME} failed: boom`]);
    expect(forgotten).toEqual(['1:1']);
    expect(feed.inFlight(client)).toBe(0);
    expect(client.frames).toHaveLength(1);
    vi.advanceTimersByTime(250);
    await flush();
    expect(client.frames).toHaveLength(2);
    expect(client.last).toMatchObject({ seq: 2, tiles: 6 });
    expect(sameBytes(client.shows(1)!, rgbaOf(f1))).toBe(true);
  });

  it('close() stops everything: nothing more is sent, presenting still works', async () => {
    const feed = newFeed();
    const { out } = connector(feed);
    const client = await join(feed);
    present(out, makeFrame(1));
    await feed.close();
    await flush();
    expect(client.frames).toHaveLength(1);
    expect(() => present(out, makeFrame(2))).not.toThrow();
    await flush();
    expect(client.frames).toHaveLength(1);
    await feed.close();
  });

  it('with the default (worker) encoder: exact frames from shared memory, dma-buf references returned, close() resolves', async () => {
    const feed = newFeed({});
    const f0 = makeFrame(0, { shared: true, dmabuf: true });
    const { out } = connector(feed, f0);
    const client = new FakeClient();
    feed.addClient(client);
    await client.waitFrames(1);
    expect(client.last).toMatchObject({ seq: 1, tiles: 6 });
    expect(sameBytes(client.shows(1)!, rgbaOf(f0))).toBe(true);
    const f1 = makeFrame(1, { shared: true, dmabuf: true });
    present(out, f1);
    await client.waitFrames(2);
    expect(client.last.seq).toBe(2);
    expect(client.last.tiles).toBe(squareTiles(1));
    expect(sameBytes(client.shows(1)!, rgbaOf(f1))).toBe(true);
    expect([f0.dmabuf!.refCount, f1.dmabuf!.refCount]).toEqual([1, 1]);
    // One more in flight when the feed closes.
    feed.ack(client, 1, 2, NaN);
    const f2 = makeFrame(2, { shared: true, dmabuf: true });
    present(out, f2);
    await flush(1);
    expect(f2.dmabuf!.refCount).toBe(2); // the encoder holds it
    await feed.close();
    expect(f2.dmabuf!.refCount).toBe(1);
    await flush();
    expect(client.frames).toHaveLength(2);
  });

  it('the same buffer redrawn in place and flipped again (tearing) reaches the client exactly (the race inside one update is in frame-encoder.test.ts)', async () => {
    const feed = newFeed({ encoder: new GatedEncoder() });
    const f = makeFrame(0);
    const { out } = connector(feed, f);
    const enc = (feed as unknown as { encoder: GatedEncoder }).encoder;
    const client = await join(feed);
    enc.release();
    await flush();
    feed.ack(client, 1, 1, NaN);
    // Frame 1 is the same buffer with a new box; it is encoded, then drawn over again before the
    // next flip (tearing): the client must get the later pixels with the next update.
    for (let y = 20; y < 30; y++) f.view!.fill(0x33, y * f.pitch + 40 * 4, y * f.pitch + 50 * 4);
    present(out, f);
    await flush();
    enc.release();
    await flush();
    for (let y = 20; y < 30; y++) f.view!.fill(0x99, y * f.pitch + 40 * 4, y * f.pitch + 50 * 4);
    feed.ack(client, 1, 2, NaN);
    present(out, f);
    await flush();
    enc.release();
    await flush();
    expect(sameBytes(client.shows(1)!, rgbaOf(f))).toBe(true);
  });

  it('regression: connector ids stay in 1..65535 (they travel as u16) and are reused once free', () => {
    const feed = newFeed();
    const outs = [];
    for (let i = 0; i < 3; i++) outs.push(feed.openConnector({ ...INFO, index: i }));
    outs[1]!.close();
    const ids = new Set<number>();
    // Open and close past the u16 range: every id given out is in range and distinct from live ones.
    for (let i = 0; i < 70_000; i++) {
      const o = feed.openConnector({ ...INFO, index: 100 });
      const id = feed.list().at(-1)!.id;
      expect(id >= 1 && id <= 0xffff).toBe(true);
      ids.add(id);
      o.close();
    }
    expect(feed.list().map((c) => c.id).sort((a, b) => a - b)).toEqual([1, 3]);
    expect(ids.has(1) || ids.has(3)).toBe(false);
  });

  it('regression: mode sets are not counted as presented or skipped frames', async () => {
    const feed = newFeed();
    const { out } = connector(feed);
    const client = await join(feed);
    out.configure({ frame: makeFrame(1), x: 0, y: 0, width: W, height: H });
    await flush();
    out.configure({ frame: makeFrame(2), x: 0, y: 0, width: W, height: H });
    await flush();
    expect(feed.figures()[0]).toMatchObject({ presented: 0, skipped: 0 });
    feed.ack(client, 1, 1, NaN);
    await flush();
    present(out, makeFrame(3));
    present(out, makeFrame(4));
    feed.ack(client, 1, client.last.seq, NaN);
    await flush();
    // Frame 3 was superseded before it could be sent: one skipped frame.
    expect(feed.figures()[0]).toMatchObject({ presented: 2, skipped: 1 });
  });

  it('regression: an acknowledgement for a frame still being encoded (not yet sent) is not believed', async () => {
    const feed = newFeed({ encoder: new GatedEncoder() });
    const { out } = connector(feed);
    const enc = (feed as unknown as { encoder: GatedEncoder }).encoder;
    const client = await join(feed);
    enc.release();
    await flush();
    present(out, makeFrame(1));
    await flush();
    feed.ack(client, 1, 2, 0); // seq 2 is encoding, not sent: ignored
    enc.release();
    await flush();
    expect(client.frames.map((f) => f.seq)).toEqual([1, 2]);
    expect(sameBytes(client.shows(1)!, rgbaOf(makeFrame(1)))).toBe(true);
    expect(feed.figures()[0]!.painted).toBe(0);
  });
});


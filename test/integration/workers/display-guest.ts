/**
 * A display guest for the displif end-to-end and recovery tests: a domain module (its own
 * worker) that opens its vdispl device with XenFront and draws with the Card, one command at a
 * time as the test sends them over the MessagePort in ctx.args.port. Commands run concurrently
 * (a flip loop keeps going while others are served); each gets one reply:
 *   -> { id, op, ... }        <- { id, ok: true, value } | { id, ok: false, error: { name, message, code, errno } }
 * Buffers, framebuffers and dma-bufs are named by small integers the guest hands out.
 *
 * The pixel pattern (`pattern`) is exported so the test computes the very bytes the guest wrote.
 */
import type { MessagePort } from 'node:worker_threads';
import type { DmaBuf } from '../../../src/dmabuf/dmabuf.js';
import type { Card, DisplayBuffer, Framebuffer } from '../../../src/front/card.js';
import { DisplayError } from '../../../src/front/errors.js';
import { XenFront } from '../../../src/front/xen-front.js';
import type { DomainContext } from '../../../src/hypervisor/index.js';
import { domainPlatform } from '../../../src/xenbus/xen-platform.js';

export interface DisplayGuestArgs {
  readonly port: MessagePort;
}

/** Deterministic bytes for `seed` (xorshift32): no period a pitch or page could hide. */
export function pattern(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = (Math.imul(seed + 1, 0x9e3779b1) ^ 0x7f4a7c15) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export interface ConnectorView {
  readonly index: number;
  readonly width: number;
  readonly height: number;
  readonly uniqueId: string;
  readonly formats: readonly number[];
}

export interface CardView {
  readonly beAlloc: boolean;
  readonly connectors: readonly ConnectorView[];
  readonly connects: number;
}

export interface ErrorView {
  readonly name: string;
  readonly message: string;
  readonly code: string | undefined;
  readonly errno: number | undefined;
}

export interface LoopResult {
  /** Flips that resolved. */
  readonly flips: number;
  /** Why the loop ended (undefined: it was stopped). */
  readonly error: ErrorView | undefined;
}

/** Every command with its arguments and its result. */
export interface GuestCommands {
  /** XenFront.open on device/vdispl/<devid>, then waitCard. */
  open: { args: { devid?: number; timeoutMs?: number; flipTimeoutMs?: number; requestTimeoutMs?: number }; result: CardView };
  /** front.waitCard (a new card after a reconnect). */
  waitCard: { args: { timeoutMs?: number }; result: CardView };
  /** card.createDumb. */
  create: { args: { width: number; height: number; format: number }; result: { buf: number; pitch: number; size: number; pages: number; contiguous: boolean } };
  /** Writes pattern(seed, size) over the whole buffer (buffer_sz bytes). */
  fill: { args: { buf: number; seed: number }; result: undefined };
  /** Writes `data` at byte `offset` of the buffer: plain memory writes, no request. */
  write: { args: { buf: number; offset: number; data: Uint8Array }; result: undefined };
  read: { args: { buf: number; offset: number; length: number }; result: Uint8Array };
  /** card.addFramebuffer. */
  attach: { args: { buf: number; format?: number; width?: number; height?: number }; result: number };
  detach: { args: { fb: number }; result: undefined };
  destroy: { args: { buf: number }; result: undefined };
  setMode: { args: { conn: number; fb: number }; result: undefined };
  disable: { args: { conn: number }; result: undefined };
  flip: { args: { conn: number; fb: number }; result: undefined };
  /**
   * `n` page flips alternating over `fbs`, up to `window` in flight; resolves with the flip
   * numbers in the order their pageFlip promises resolved.
   */
  flips: { args: { conn: number; fbs: number[]; n: number; window: number }; result: { order: number[]; frameDone: number; flipTimeouts: number } };
  /** card.getEdid. */
  edid: { args: { conn: number }; result: Uint8Array };
  /** card.exportBuffer. */
  export: { args: { buf: number }; result: { dmabuf: number; size: number; foreign: boolean } };
  /** card.importBuffer. */
  import: { args: { dmabuf: number; offset?: number }; result: { buf: number; size: number } };
  /** Drops the test's reference on an exported dma-buf. */
  putDmabuf: { args: { dmabuf: number }; result: { released: boolean } };
  /** Starts flipping `fbs` in turn on `conn` until stopped or a flip fails. */
  startLoop: { args: { conn: number; fbs: number[] }; result: undefined };
  /** Resolves once the loop has done `flips` more flips (or ended). */
  loopProgress: { args: { flips: number }; result: number };
  /** Waits for the loop to end by itself (a flip failed). */
  loopResult: { args: Record<string, never>; result: LoopResult };
  stopLoop: { args: Record<string, never>; result: LoopResult };
  state: { args: Record<string, never>; result: { unplugged: boolean; closed: boolean; frontState: number; connects: number; frameDone: number; flips: number } };
  /** Resolves when the current card is unplugged, with the error it was unplugged with. */
  waitUnplug: { args: Record<string, never>; result: ErrorView };
  closeCard: { args: Record<string, never>; result: undefined };
  closeFront: { args: Record<string, never>; result: undefined };
  /** main returns (poweroff) after replying. */
  exit: { args: Record<string, never>; result: undefined };
  /**
   * Starts `n` (default 1) card operations without awaiting them (`what`, not `op`: `op` names
   * the command), calls card.close() in the same tick (not awaited either), then awaits the
   * operations and the close. `error`/`errors`: each operation's error (undefined if it
   * succeeded: its buffer or framebuffer is then named in `values`). `closedAtOnce`: the card
   * counted as closed right after close() was called, before any response could arrive.
   * create: createDumb(width, height, format); attach: addFramebuffer(buf); import:
   * importBuffer(dmabuf, offset). The card's destroyed buffers and removed framebuffers are
   * forgotten afterwards, as closeCard does.
   */
  closeDuring: {
    args: { what: 'create' | 'attach' | 'import'; n?: number; width?: number; height?: number; format?: number; buf?: number; dmabuf?: number; offset?: number };
    result: { error: ErrorView | undefined; errors: (ErrorView | undefined)[]; values: (number | undefined)[]; closedAtOnce: boolean; closeError: ErrorView | undefined };
  };
  /** A dma-buf's reference count and whether it was released (without dropping the test's reference). */
  dmabufState: { args: { dmabuf: number }; result: { refCount: number; released: boolean } };
  /** Opens a second vdispl device of this guest (a side card, e.g. another exporter for PRIME). */
  openSide: { args: { devid: number; timeoutMs?: number }; result: CardView };
  /** createDumb on the side card (the buffer is named like any other: fill, read and destroy work on it). */
  sideCreate: { args: { width: number; height: number; format: number }; result: { buf: number; size: number; pages: number } };
  /** exportBuffer on the side card. */
  sideExport: { args: { buf: number }; result: { dmabuf: number; size: number; foreign: boolean } };
  /** Closes the side card and its device. */
  sideClose: { args: Record<string, never>; result: undefined };
}

export type GuestOp = keyof GuestCommands;
export type GuestRequest = { [K in GuestOp]: { id: number; op: K } & GuestCommands[K]['args'] }[GuestOp];
export type GuestReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: ErrorView };

export function errorView(e: unknown): ErrorView {
  if (e instanceof DisplayError) return { name: e.name, message: e.message, code: e.code, errno: e.errno };
  if (e instanceof Error) {
    const withErrno = e as Error & { errno?: unknown };
    return { name: e.name, message: e.message, code: undefined, errno: typeof withErrno.errno === 'number' ? withErrno.errno : undefined };
  }
  return { name: 'Error', message: String(e), code: undefined, errno: undefined };
}

/** Writes `data` at `offset` of the buffer, through its one view or page by page. */
function writeBuffer(buf: DisplayBuffer, offset: number, data: Uint8Array): void {
  const v = buf.shbuf.view;
  if (v) {
    v.set(data, offset);
    return;
  }
  let done = 0;
  while (done < data.length) {
    const pos = offset + done;
    const page = buf.shbuf.page(Math.floor(pos / 4096));
    const o = pos % 4096;
    const n = Math.min(4096 - o, data.length - done);
    page.set(data.subarray(done, done + n), o);
    done += n;
  }
}

function readBuffer(buf: DisplayBuffer, offset: number, length: number): Uint8Array {
  const v = buf.shbuf.view;
  if (v) return v.slice(offset, offset + length);
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const pos = offset + done;
    const page = buf.shbuf.page(Math.floor(pos / 4096));
    const o = pos % 4096;
    const n = Math.min(4096 - o, length - done);
    out.set(page.subarray(o, o + n), done);
    done += n;
  }
  return out;
}

export default async function main(ctx: DomainContext): Promise<void> {
  const { port } = ctx.args as DisplayGuestArgs;
  const p = domainPlatform(ctx);
  let front: XenFront | undefined;
  let card: Card | undefined;
  let side: { front: XenFront; card: Card } | undefined;
  const bufs = new Map<number, DisplayBuffer>();
  const fbs = new Map<number, Framebuffer>();
  const dmabufs = new Map<number, DmaBuf>();
  let nextName = 1;
  let loop: { stop: boolean; flips: number; done: Promise<LoopResult>; progress: Set<() => void> } | undefined;
  let exitNow: () => void = () => undefined;
  const exited = new Promise<void>((resolve) => (exitNow = resolve));

  const need = <T>(m: Map<number, T>, k: number, what: string): T => {
    const v = m.get(k);
    if (v === undefined) throw new Error(`no ${what} ${k}`);
    return v;
  };
  const theCard = (): Card => {
    if (!card) throw new Error('no card yet');
    return card;
  };
  const view = (c: Card): CardView => ({
    beAlloc: c.beAlloc,
    connectors: c.connectors.map((x) => ({ index: x.index, width: x.width, height: x.height, uniqueId: x.uniqueId, formats: x.formats.map((f) => f.fourcc) })),
    connects: front?.connects ?? 0,
  });
  const name = <T>(m: Map<number, T>, v: T): number => {
    const n = nextName++;
    m.set(n, v);
    return n;
  };

  const handlers: { [K in GuestOp]: (a: GuestCommands[K]['args']) => Promise<GuestCommands[K]['result']> | GuestCommands[K]['result'] } = {
    open: async (a) => {
      front = await XenFront.open(p, `device/vdispl/${a.devid ?? 0}`, {
        log: (t) => ctx.log(`front: ${t}`),
        ...(a.flipTimeoutMs !== undefined ? { flipTimeoutMs: a.flipTimeoutMs } : {}),
        ...(a.requestTimeoutMs !== undefined ? { requestTimeoutMs: a.requestTimeoutMs } : {}),
      });
      card = await front.waitCard({ timeoutMs: a.timeoutMs ?? 10_000 });
      return view(card);
    },
    waitCard: async (a) => {
      if (!front) throw new Error('not open');
      card = await front.waitCard({ timeoutMs: a.timeoutMs ?? 10_000 });
      return view(card);
    },
    create: async (a) => {
      const b = await theCard().createDumb({ width: a.width, height: a.height, format: a.format });
      return { buf: name(bufs, b), pitch: b.pitch, size: b.size, pages: b.shbuf.pages, contiguous: b.shbuf.view !== undefined };
    },
    fill: (a) => {
      const b = need(bufs, a.buf, 'buffer');
      writeBuffer(b, 0, pattern(a.seed, b.size));
      return undefined;
    },
    write: (a) => {
      writeBuffer(need(bufs, a.buf, 'buffer'), a.offset, a.data);
      return undefined;
    },
    read: (a) => readBuffer(need(bufs, a.buf, 'buffer'), a.offset, a.length),
    attach: async (a) => {
      const fb = await theCard().addFramebuffer(need(bufs, a.buf, 'buffer'), {
        ...(a.format !== undefined ? { format: a.format } : {}),
        ...(a.width !== undefined ? { width: a.width } : {}),
        ...(a.height !== undefined ? { height: a.height } : {}),
      });
      return name(fbs, fb);
    },
    detach: async (a) => {
      await need(fbs, a.fb, 'framebuffer').remove();
      fbs.delete(a.fb);
      return undefined;
    },
    destroy: async (a) => {
      await need(bufs, a.buf, 'buffer').destroy();
      bufs.delete(a.buf);
      return undefined;
    },
    setMode: async (a) => {
      await theCard().setMode(a.conn, need(fbs, a.fb, 'framebuffer'));
      return undefined;
    },
    disable: async (a) => {
      await theCard().disable(a.conn);
      return undefined;
    },
    flip: async (a) => {
      await theCard().pageFlip(a.conn, need(fbs, a.fb, 'framebuffer'));
      return undefined;
    },
    flips: async (a) => {
      const c = theCard();
      const list = a.fbs.map((f) => need(fbs, f, 'framebuffer'));
      const order: number[] = [];
      const before = { ...c.stats };
      let issued = 0;
      const lane = async (): Promise<void> => {
        while (issued < a.n) {
          const k = issued++;
          await c.pageFlip(a.conn, list[k % list.length]!);
          order.push(k);
        }
      };
      // `window` lanes, each with one flip in flight: flips are issued in order k = 0, 1, 2, ...
      await Promise.all(Array.from({ length: Math.max(1, a.window) }, lane));
      return { order, frameDone: c.stats.frameDone - before.frameDone, flipTimeouts: c.stats.flipTimeouts - before.flipTimeouts };
    },
    edid: (a) => theCard().getEdid(a.conn),
    export: (a) => {
      const d = theCard().exportBuffer(need(bufs, a.buf, 'buffer'));
      return { dmabuf: name(dmabufs, d), size: d.size, foreign: d.foreign };
    },
    import: async (a) => {
      const b = await theCard().importBuffer(need(dmabufs, a.dmabuf, 'dma-buf'), a.offset !== undefined ? { offset: a.offset } : {});
      return { buf: name(bufs, b), size: b.size };
    },
    putDmabuf: (a) => {
      const d = need(dmabufs, a.dmabuf, 'dma-buf');
      dmabufs.delete(a.dmabuf);
      d.put();
      return { released: d.released };
    },
    startLoop: (a) => {
      if (loop) throw new Error('a loop is running');
      const c = theCard();
      const list = a.fbs.map((f) => need(fbs, f, 'framebuffer'));
      const l = { stop: false, flips: 0, done: Promise.resolve<LoopResult>({ flips: 0, error: undefined }), progress: new Set<() => void>() };
      l.done = (async (): Promise<LoopResult> => {
        let error: ErrorView | undefined;
        try {
          while (!l.stop) {
            await c.pageFlip(a.conn, list[l.flips % list.length]!);
            l.flips++;
            for (const w of l.progress) w();
          }
        } catch (e) {
          error = errorView(e);
        }
        for (const w of l.progress) w();
        return { flips: l.flips, error };
      })();
      loop = l;
      return undefined;
    },
    loopProgress: async (a) => {
      const l = loop;
      if (!l) throw new Error('no loop');
      const target = l.flips + a.flips;
      let finished = false;
      await new Promise<void>((resolve) => {
        const check = (): void => {
          if (l.flips < target && !finished) return;
          l.progress.delete(check);
          resolve();
        };
        l.progress.add(check);
        void l.done.then(() => {
          finished = true;
          check();
        });
      });
      return l.flips;
    },
    loopResult: async () => {
      if (!loop) throw new Error('no loop');
      const r = await loop.done;
      loop = undefined;
      return r;
    },
    stopLoop: async () => {
      if (!loop) throw new Error('no loop');
      loop.stop = true;
      const r = await loop.done;
      loop = undefined;
      return r;
    },
    state: () => {
      const c = theCard();
      return { unplugged: c.unplugged, closed: c.isClosed, frontState: front?.state ?? -1, connects: front?.connects ?? 0, frameDone: c.stats.frameDone, flips: c.stats.flips };
    },
    waitUnplug: () => new Promise<ErrorView>((resolve) => theCard().onUnplug((e) => resolve(errorView(e)))),
    closeCard: async () => {
      await theCard().close();
      bufs.clear();
      fbs.clear();
      return undefined;
    },
    closeFront: async () => {
      await front?.close();
      return undefined;
    },
    exit: () => {
      // After the reply is out.
      setTimeout(exitNow, 10);
      return undefined;
    },
    closeDuring: async (a) => {
      const c = theCard();
      const start = (): Promise<number> => {
        switch (a.what) {
          case 'create': {
            if (a.width === undefined || a.height === undefined || a.format === undefined) throw new Error('create needs width, height and format');
            return c.createDumb({ width: a.width, height: a.height, format: a.format }).then((b) => name(bufs, b));
          }
          case 'attach':
            return c.addFramebuffer(need(bufs, a.buf ?? -1, 'buffer')).then((fb) => name(fbs, fb));
          case 'import':
            return c.importBuffer(need(dmabufs, a.dmabuf ?? -1, 'dma-buf'), a.offset !== undefined ? { offset: a.offset } : {}).then((b) => name(bufs, b));
        }
      };
      // Every request is on the ring before close() runs; nothing is awaited in between.
      const ops = Array.from({ length: a.n ?? 1 }, () =>
        start().then(
          (v) => ({ error: undefined, value: v }),
          (e: unknown) => ({ error: errorView(e), value: undefined }),
        ),
      );
      const closing = c.close().then(
        () => undefined,
        (e: unknown) => errorView(e),
      );
      const closedAtOnce = c.isClosed;
      const results = await Promise.all(ops);
      const closeError = await closing;
      // As closeCard: what the closed card held is gone (what an operation made after close()
      // started is kept, so the test can see it).
      for (const [k, b] of bufs) if (b.isDestroyed) bufs.delete(k);
      for (const [k, fb] of fbs) if (fb.isRemoved || fb.buffer.isDestroyed) fbs.delete(k);
      return { error: results[0]?.error, errors: results.map((r) => r.error), values: results.map((r) => r.value), closedAtOnce, closeError };
    },
    dmabufState: (a) => {
      const d = need(dmabufs, a.dmabuf, 'dma-buf');
      return { refCount: d.refCount, released: d.released };
    },
    openSide: async (a) => {
      if (side) throw new Error('a side card is open');
      const f = await XenFront.open(p, `device/vdispl/${a.devid}`, { log: (t) => ctx.log(`side front: ${t}`) });
      const c = await f.waitCard({ timeoutMs: a.timeoutMs ?? 10_000 });
      side = { front: f, card: c };
      return { ...view(c), connects: f.connects };
    },
    sideCreate: async (a) => {
      if (!side) throw new Error('no side card');
      const b = await side.card.createDumb({ width: a.width, height: a.height, format: a.format });
      return { buf: name(bufs, b), size: b.size, pages: b.shbuf.pages };
    },
    sideExport: (a) => {
      if (!side) throw new Error('no side card');
      const d = side.card.exportBuffer(need(bufs, a.buf, 'buffer'));
      return { dmabuf: name(dmabufs, d), size: d.size, foreign: d.foreign };
    },
    sideClose: async () => {
      if (!side) throw new Error('no side card');
      const s = side;
      side = undefined;
      await s.card.close();
      await s.front.close();
      for (const [k, b] of bufs) if (b.isDestroyed) bufs.delete(k);
      return undefined;
    },
  };

  port.on('message', (req: GuestRequest) => {
    const { id, op } = req;
    const run = handlers[op] as (a: unknown) => unknown;
    void (async () => {
      try {
        const value = await run(req);
        port.postMessage({ id, ok: true, value } satisfies GuestReply);
      } catch (e) {
        port.postMessage({ id, ok: false, error: errorView(e) } satisfies GuestReply);
      }
    })();
  });

  await Promise.race([
    exited,
    new Promise<void>((resolve) => {
      if (ctx.signal.aborted) resolve();
      else ctx.signal.addEventListener('abort', () => resolve(), { once: true });
    }),
  ]);
  port.close();
  p.xenstore.close();
}

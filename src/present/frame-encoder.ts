/**
 * Where frame updates are computed (damage, conversion, encoding), off the thread that runs the
 * backend. What an update is depends on the output: an `UpdateCodec` (the viewer's is in
 * frame-update.ts, VNC's in rfb/rfb-update.ts) turns a frame plus a slot's state (what one client
 * has of one connector) into one message. A `WorkerFrameEncoder` hands each frame to one worker
 * thread zero-copy: a frame in machine memory (a SharedArrayBuffer) is described by its buffer and
 * byte offsets, and a reference to its dma-buf is held until the worker is done with it, so the
 * backend cannot unmap (and the hypervisor cannot reuse) the pages while they are read. A frame
 * that cannot be shared that way (no dma-buf to hold, or not in shared memory) is copied out on
 * the calling thread first. The worker keeps each slot's state; a slot's jobs run in submission
 * order. `InlineFrameEncoder` does the same on the calling thread (tests, and a fallback).
 */
import { pixelRowBytes } from '../abi/fourcc.js';
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import type { Frame } from '../back/presenter.js';
import { copyFramePixels } from '../back/memory-presenter.js';
import { startWorker } from '../hypervisor/worker-bootstrap.js';
import { frameRaster, type Raster } from './tiles.js';

export interface UpdateResult<S> {
  readonly msg: Uint8Array;
  /** The slot's state after this update. */
  readonly state: S;
  /** Rectangles (tiles) in the message, for figures. */
  readonly tiles: number;
}

/**
 * Computes one update of a frame for one slot. `raster` may be the guest's own memory: read it
 * only before returning (or before the returned promise's first await).
 */
export interface UpdateCodec<P, S> {
  update(raster: Raster, state: S | undefined, params: P): UpdateResult<S> | Promise<UpdateResult<S>>;
  /** Lets go of a slot's state (its next frame starts from nothing). */
  dispose?(state: S): void;
}

/** Where a worker finds a codec: the module's URL and the name it is exported as. */
export interface CodecRef {
  readonly module: string;
  readonly name: string;
}

export interface FrameJob<P> {
  /** Whose state: one client's view of one connector. */
  readonly slot: string;
  readonly frame: Frame;
  /** The visible part (the mode), at most the frame's size. */
  readonly width: number;
  readonly height: number;
  readonly params: P;
}

export interface EncodedFrame {
  readonly msg: Uint8Array;
  readonly tiles: number;
  /** Time spent computing it (on whichever thread did), ms. */
  readonly encodeMs: number;
}

export interface FrameEncoder<P> {
  encode(job: FrameJob<P>): Promise<EncodedFrame>;
  /** Drops a slot's state (its next frame is sent whole). */
  forget(slot: string): void;
  close(): Promise<void>;
}

/** Runs a codec's jobs one slot at a time, in order per slot (the worker and the inline encoder). */
export class SlotRunner<P, S> {
  private readonly states = new Map<string, S>();
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(private readonly codec: UpdateCodec<P, S>) {}

  /** Runs `fn` after the slot's earlier jobs. */
  private queue<T>(slot: string, fn: () => T | Promise<T>): Promise<T> {
    const prev = this.chains.get(slot) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    this.chains.set(slot, tail);
    void tail.then(() => {
      if (this.chains.get(slot) === tail) this.chains.delete(slot);
    });
    return next;
  }

  /** Computes an update; `raster()` is called when the job starts. A failed job drops the slot's state. */
  run(slot: string, raster: () => Raster, params: P): Promise<EncodedFrame> {
    return this.queue(slot, async () => {
      const t0 = performance.now();
      try {
        const r = await this.codec.update(raster(), this.states.get(slot), params);
        this.states.set(slot, r.state);
        return { msg: r.msg, tiles: r.tiles, encodeMs: performance.now() - t0 };
      } catch (e) {
        this.drop(slot);
        throw e instanceof Error ? e : new Error(String(e));
      }
    });
  }

  /** Computes an update now; only for codecs that answer synchronously. */
  runNow(slot: string, raster: Raster, params: P): EncodedFrame {
    const t0 = performance.now();
    const r = this.codec.update(raster, this.states.get(slot), params);
    if (r instanceof Promise) throw new Error('this codec is asynchronous');
    this.states.set(slot, r.state);
    return { msg: r.msg, tiles: r.tiles, encodeMs: performance.now() - t0 };
  }

  private drop(slot: string): void {
    const s = this.states.get(slot);
    this.states.delete(slot);
    if (s !== undefined) this.codec.dispose?.(s);
  }

  forget(slot: string): void {
    void this.queue(slot, () => this.drop(slot));
  }

  clear(): void {
    for (const slot of [...this.states.keys()]) this.drop(slot);
  }
}

export class InlineFrameEncoder<P, S> implements FrameEncoder<P> {
  private readonly runner: SlotRunner<P, S>;

  constructor(codec: UpdateCodec<P, S>) {
    this.runner = new SlotRunner(codec);
  }

  encode(job: FrameJob<P>): Promise<EncodedFrame> {
    let raster: Raster;
    try {
      raster = frameRaster(job.frame, job.width, job.height);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    return this.runner.run(job.slot, () => raster, job.params);
  }

  /** Encodes now (synchronous codecs only). */
  encodeNow(job: FrameJob<P>): EncodedFrame {
    return this.runner.runNow(job.slot, frameRaster(job.frame, job.width, job.height), job.params);
  }

  forget(slot: string): void {
    this.runner.forget(slot);
  }

  close(): Promise<void> {
    this.runner.clear();
    return Promise.resolve();
  }
}

/** How the worker reaches a frame's bytes. */
export type FrameSource =
  /** One view: `byteLength` bytes at `byteOffset` of `buffer` (the buffer's byte 0 onwards). */
  | { readonly kind: 'view'; readonly buffer: SharedArrayBuffer; readonly byteOffset: number; readonly byteLength: number }
  /** 4096-byte pages of the buffer, page i at `pages[i]` of `buffer` (the pages the rows touch; others -1). */
  | { readonly kind: 'pages'; readonly buffer: SharedArrayBuffer; readonly pages: Float64Array }
  /** The visible rows, copied out (pitch = bytes per row). */
  | { readonly kind: 'copy'; readonly data: Uint8Array; readonly pitch: number };

export interface EncodeRequest {
  readonly type: 'encode';
  readonly job: number;
  readonly slot: string;
  readonly params: unknown;
  readonly fourcc: number;
  readonly width: number;
  readonly height: number;
  readonly pitch: number;
  readonly offset: number;
  readonly source: FrameSource;
}

export type EncoderRequest = EncodeRequest | { readonly type: 'forget'; readonly slot: string };

export type EncoderReply = { readonly job: number; readonly msg: Uint8Array; readonly tiles: number; readonly encodeMs: number } | { readonly job: number; readonly error: string };

const PAGE = 4096;

/** The frame's bytes as shared memory the worker can read, or undefined when they are not. */
export function shareFrame(frame: Frame, width: number, height: number): FrameSource | undefined {
  const rowBytes = pixelRowBytes(frame.format, width);
  const end = frame.offset + frame.pitch * (height - 1) + rowBytes;
  const v = frame.view;
  if (v) {
    if (!(v.buffer instanceof SharedArrayBuffer)) return undefined;
    return { kind: 'view', buffer: v.buffer, byteOffset: v.byteOffset, byteLength: Math.min(v.byteLength, frame.size) };
  }
  const pages = new Float64Array(Math.ceil(end / PAGE)).fill(-1);
  let buffer: SharedArrayBuffer | undefined;
  for (let y = 0; y < height; y++) {
    const from = Math.floor((frame.offset + y * frame.pitch) / PAGE);
    const to = Math.floor((frame.offset + y * frame.pitch + rowBytes - 1) / PAGE);
    for (let i = from; i <= to; i++) {
      if (pages[i] !== -1) continue;
      const p = frame.page(i);
      if (!(p.buffer instanceof SharedArrayBuffer) || (buffer !== undefined && p.buffer !== buffer)) return undefined;
      buffer = p.buffer;
      pages[i] = p.byteOffset;
    }
  }
  return buffer ? { kind: 'pages', buffer, pages } : undefined;
}

const WORKER = new URL(`./frame-encoder-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

interface Pending {
  readonly resolve: (r: EncodedFrame) => void;
  readonly reject: (e: Error) => void;
  /** Drops the dma-buf reference held for the job. */
  readonly release: () => void;
}

export class WorkerFrameEncoder<P> implements FrameEncoder<P> {
  private worker: Worker | undefined;
  private port: MessagePort | undefined;
  private nextJob = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  /** `codec`: the module (and export) the worker computes updates with. */
  constructor(private readonly codec: CodecRef) {}

  private start(): MessagePort {
    if (this.port) return this.port;
    const { port1, port2 } = new MessageChannel();
    const w = startWorker(WORKER, { workerData: { port: port2, codec: this.codec }, transferList: [port2] }, [WORKER.href, this.codec.module]);
    w.unref();
    port1.unref();
    port1.on('message', (r: EncoderReply) => this.settle(r));
    const fail = (why: string): void => {
      if (this.worker !== w) return;
      this.worker = undefined;
      this.port = undefined;
      port1.close();
      // Shadows died with the worker: the next frame of every slot is sent whole.
      for (const [job, p] of this.pending) {
        this.pending.delete(job);
        p.release();
        p.reject(new Error(`the encoder worker stopped: ${why}`));
      }
    };
    w.on('error', (e) => fail(e.message));
    w.on('exit', (code) => fail(`exit code ${code}`));
    this.worker = w;
    this.port = port1;
    return port1;
  }

  private settle(r: EncoderReply): void {
    const p = this.pending.get(r.job);
    if (!p) return;
    this.pending.delete(r.job);
    p.release();
    if ('error' in r) p.reject(new Error(r.error));
    else p.resolve({ msg: r.msg, tiles: r.tiles, encodeMs: r.encodeMs });
  }

  encode(job: FrameJob<P>): Promise<EncodedFrame> {
    if (this.closed) return Promise.reject(new Error('the encoder is closed'));
    const { frame, width, height } = job;
    const held = frame.dmabuf && !frame.dmabuf.released ? frame.dmabuf.get() : undefined;
    let release = (): void => {
      release = () => undefined;
      held?.put();
    };
    let source: FrameSource | undefined;
    let port: MessagePort;
    let pitch = frame.pitch;
    let offset = frame.offset;
    try {
      source = held ? shareFrame(frame, width, height) : undefined;
      if (!source) {
        // Not shareable safely: copy the visible rows out now.
        release();
        const c = copyFramePixels(frame, width, height);
        source = { kind: 'copy', data: c.data, pitch: c.pitch };
        pitch = c.pitch;
        offset = 0;
      }
      port = this.start();
    } catch (e) {
      release();
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    const id = this.nextJob++;
    const req: EncodeRequest = { type: 'encode', job: id, slot: job.slot, params: job.params, fourcc: frame.format.fourcc, width, height, pitch, offset, source };
    return new Promise<EncodedFrame>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, release: () => release() });
      port.postMessage(req, source.kind === 'copy' ? [source.data.buffer as ArrayBuffer] : []);
    });
  }

  forget(slot: string): void {
    this.port?.postMessage({ type: 'forget', slot } satisfies EncoderRequest);
  }

  /** Jobs in the worker (each holding its frame's dma-buf). */
  get inFlight(): number {
    return this.pending.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = undefined;
    this.port?.close();
    this.port = undefined;
    // The worker stops before the frames it may be reading are let go.
    if (w) await w.terminate();
    for (const [job, p] of this.pending) {
      this.pending.delete(job);
      p.release();
      p.reject(new Error('the encoder is closed'));
    }
  }
}

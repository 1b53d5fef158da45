/**
 * Where the viewer's frame updates are computed (damage, conversion, encoding: frame-update.ts),
 * off the thread that runs the backend. A `WorkerFrameEncoder` hands each frame to one worker
 * thread zero-copy: a frame in machine memory (a SharedArrayBuffer) is described by its buffer and
 * byte offsets, and a reference to its dma-buf is held until the worker is done with it, so the
 * backend cannot unmap (and the hypervisor cannot reuse) the pages while they are read. A frame
 * that cannot be shared that way (no dma-buf to hold, or not in shared memory) is copied out on
 * the calling thread first. The worker keeps each slot's shadow (what one client has of one
 * connector); jobs run in submission order. `InlineFrameEncoder` does the same on the calling
 * thread (tests, and a fallback).
 */
import { pixelRowBytes } from '../abi/fourcc.js';
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import type { Frame } from '../back/presenter.js';
import { copyFramePixels } from '../back/memory-presenter.js';
import { startWorker } from '../hypervisor/worker-bootstrap.js';
import { encodeUpdate, type Shadow, type UpdateHeader } from './frame-update.js';
import { frameRaster } from './tiles.js';

export interface FrameJob {
  /** Whose shadow: one client's view of one connector. */
  readonly slot: string;
  readonly frame: Frame;
  /** The visible part (the mode), at most the frame's size. */
  readonly width: number;
  readonly height: number;
  readonly header: UpdateHeader;
}

export interface EncodedFrame {
  readonly msg: Uint8Array;
  readonly tiles: number;
  /** Time spent computing it (on whichever thread did), ms. */
  readonly encodeMs: number;
}

export interface FrameEncoder {
  encode(job: FrameJob): Promise<EncodedFrame>;
  /** Drops a slot's shadow (its next frame is sent whole). */
  forget(slot: string): void;
  close(): Promise<void>;
}

export class InlineFrameEncoder implements FrameEncoder {
  private readonly shadows = new Map<string, Shadow>();

  encode(job: FrameJob): Promise<EncodedFrame> {
    try {
      return Promise.resolve(this.encodeNow(job));
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  encodeNow(job: FrameJob): EncodedFrame {
    const t0 = performance.now();
    const u = encodeUpdate(frameRaster(job.frame, job.width, job.height), this.shadows.get(job.slot), job.header);
    this.shadows.set(job.slot, u.shadow);
    return { msg: u.msg, tiles: u.tiles, encodeMs: performance.now() - t0 };
  }

  forget(slot: string): void {
    this.shadows.delete(slot);
  }

  close(): Promise<void> {
    this.shadows.clear();
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
  readonly header: UpdateHeader;
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

export class WorkerFrameEncoder implements FrameEncoder {
  private worker: Worker | undefined;
  private port: MessagePort | undefined;
  private nextJob = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  private start(): MessagePort {
    if (this.port) return this.port;
    const { port1, port2 } = new MessageChannel();
    const w = startWorker(WORKER, { workerData: { port: port2 }, transferList: [port2] }, [WORKER.href]);
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
        p.reject(new Error(`the viewer's encoder worker stopped: ${why}`));
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

  encode(job: FrameJob): Promise<EncodedFrame> {
    if (this.closed) return Promise.reject(new Error('the encoder is closed'));
    const { frame, width, height } = job;
    const held = frame.dmabuf && !frame.dmabuf.released ? frame.dmabuf.get() : undefined;
    let release = (): void => {
      release = () => undefined;
      held?.put();
    };
    let source: FrameSource | undefined;
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
    } catch (e) {
      release();
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    const port = this.start();
    const id = this.nextJob++;
    const req: EncodeRequest = { type: 'encode', job: id, slot: job.slot, header: job.header, fourcc: frame.format.fourcc, width, height, pitch, offset, source };
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

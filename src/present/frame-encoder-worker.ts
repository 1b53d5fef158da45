/**
 * An encoder thread (see frame-encoder.ts): loads its codec, reads each frame where it is (shared
 * machine memory) or from the copy it was sent, computes the update against the slot's state
 * and replies with the message, transferred. A slot's requests are handled in order.
 */
import { type MessagePort, workerData } from 'node:worker_threads';
import { pixelFormatByFourcc, pixelRowBytes } from '../abi/fourcc.js';
import type { Frame } from '../back/presenter.js';
import { type CodecRef, type EncoderReply, type EncoderRequest, type EncodeRequest, SlotRunner, type UpdateCodec } from './frame-encoder.js';
import { frameRaster, type Raster } from './tiles.js';

const PAGE = 4096;
const { port, codec } = workerData as { port: MessagePort; codec: CodecRef };
const loaded = import(codec.module).then((m: Record<string, unknown>) => {
  const c = m[codec.name] as UpdateCodec<unknown, unknown> | undefined;
  if (!c || typeof c.update !== 'function') throw new Error(`${codec.module} exports no codec ${codec.name}`);
  return new SlotRunner(c);
});

/** The request's frame as a Raster: in place for one view, rows gathered for pages (frameRaster). */
function rasterOf(r: EncodeRequest): Raster {
  const format = pixelFormatByFourcc(r.fourcc);
  if (!format) throw new Error(`unknown format ${r.fourcc}`);
  const s = r.source;
  if (s.kind === 'copy') return { format, width: r.width, height: r.height, pitch: s.pitch, data: s.data };
  const span = r.pitch * (r.height - 1) + pixelRowBytes(format, r.width);
  let view: Uint8Array | undefined;
  let page: (i: number) => Uint8Array;
  if (s.kind === 'view') {
    view = new Uint8Array(s.buffer, s.byteOffset, s.byteLength);
    page = (i) => view!.subarray(i * PAGE, (i + 1) * PAGE);
  } else {
    const pages = s.pages;
    page = (i) => {
      const base = pages[i];
      if (base === undefined || base < 0) throw new RangeError(`page ${i} not provided`);
      return new Uint8Array(s.buffer, base, PAGE);
    };
  }
  const frame: Frame = { fbCookie: 0n, format, width: r.width, height: r.height, pitch: r.pitch, offset: r.offset, size: r.offset + span, view, page, dmabuf: undefined };
  return frameRaster(frame, r.width, r.height);
}

port.on('message', (r: EncoderRequest) => {
  void loaded.then(
    (runner) => {
      if (r.type === 'forget') {
        runner.forget(r.slot);
        return;
      }
      runner.run(r.slot, () => rasterOf(r), r.params).then(
        (u) => port.postMessage({ job: r.job, msg: u.msg, tiles: u.tiles, encodeMs: u.encodeMs } satisfies EncoderReply, [u.msg.buffer as ArrayBuffer]),
        (e: unknown) => port.postMessage({ job: r.job, error: e instanceof Error ? e.message : String(e) } satisfies EncoderReply),
      );
    },
    (e: unknown) => {
      if (r.type === 'encode') port.postMessage({ job: r.job, error: e instanceof Error ? e.message : String(e) } satisfies EncoderReply);
    },
  );
});

/**
 * The viewer's encoder thread (see frame-encoder.ts): reads each frame where it is (shared
 * machine memory) or from the copy it was sent, computes the update against the slot's shadow
 * and replies with the message, transferred. Requests are handled in order.
 */
import { type MessagePort, workerData } from 'node:worker_threads';
import { pixelFormatByFourcc, pixelRowBytes } from '../abi/fourcc.js';
import type { Frame } from '../back/presenter.js';
import type { EncoderReply, EncoderRequest, EncodeRequest } from './frame-encoder.js';
import { encodeUpdate, type Shadow } from './frame-update.js';
import { frameRaster, type Raster } from './tiles.js';

const PAGE = 4096;
const port = (workerData as { port: MessagePort }).port;
const shadows = new Map<string, Shadow>();

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
  if (r.type === 'forget') {
    shadows.delete(r.slot);
    return;
  }
  let reply: EncoderReply;
  const t0 = performance.now();
  try {
    const u = encodeUpdate(rasterOf(r), shadows.get(r.slot), r.header);
    shadows.set(r.slot, u.shadow);
    reply = { job: r.job, msg: u.msg, tiles: u.tiles, encodeMs: performance.now() - t0 };
  } catch (e) {
    shadows.delete(r.slot);
    reply = { job: r.job, error: e instanceof Error ? e.message : String(e) };
  }
  port.postMessage(reply, 'msg' in reply ? [reply.msg.buffer as ArrayBuffer] : []);
});

/**
 * The viewer's encoder thread (see frame-encoder.ts): reads each frame where it is (shared
 * machine memory) or from the copy it was sent, computes the update against the slot's shadow
 * and replies with the message, transferred. Requests are handled in order.
 */
import { type MessagePort, workerData } from 'node:worker_threads';
import { pixelFormatByFourcc } from '../abi/fourcc.js';
import type { EncoderReply, EncoderRequest, EncodeRequest } from './frame-encoder.js';
import { encodeUpdate, type Shadow } from './frame-update.js';
import type { Raster } from './tiles.js';

const PAGE = 4096;
const port = (workerData as { port: MessagePort }).port;
const shadows = new Map<string, Shadow>();

function rasterOf(r: EncodeRequest): Raster {
  const format = pixelFormatByFourcc(r.fourcc);
  if (!format) throw new Error(`unknown format ${r.fourcc}`);
  const rowBytes = Math.ceil((r.width * format.bpp) / 8);
  const span = r.pitch * (r.height - 1) + rowBytes;
  const s = r.source;
  if (s.kind === 'copy') return { format, width: r.width, height: r.height, pitch: s.pitch, data: s.data };
  if (s.kind === 'view') {
    if (r.offset + span > s.byteLength) throw new RangeError(`the frame (${r.offset + span} bytes) does not fit its buffer (${s.byteLength})`);
    return { format, width: r.width, height: r.height, pitch: r.pitch, data: new Uint8Array(s.buffer, s.byteOffset + r.offset, span) };
  }
  // Pages: gather the rows.
  const data = new Uint8Array(rowBytes * r.height);
  const mem = new Uint8Array(s.buffer);
  for (let y = 0; y < r.height; y++) {
    let at = r.offset + y * r.pitch;
    let done = 0;
    while (done < rowBytes) {
      const base = s.pages[Math.floor(at / PAGE)];
      if (base === undefined || base < 0) throw new RangeError(`page ${Math.floor(at / PAGE)} not provided`);
      const o = at % PAGE;
      const n = Math.min(PAGE - o, rowBytes - done);
      data.set(mem.subarray(base + o, base + o + n), y * rowBytes + done);
      done += n;
      at += n;
    }
  }
  return { format, width: r.width, height: r.height, pitch: rowBytes, data };
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

/**
 * Reads a rectangle of a framebuffer (a Raster in the guest's format) as a client's pixel values
 * (pixel-format.ts says how each format is converted). Runs of equal framebuffer values are
 * converted once.
 */
import type { PixelFormat } from '../../abi/fourcc.js';
import { toRgba } from '../pixels.js';
import { converterFor, type Raster, type Rect, readPixels } from '../tiles.js';
import { passThroughMask, type RfbPixelFormat, rgbaToClient } from './pixel-format.js';

export class ClientPixels {
  private readonly mask: number | undefined;
  private readonly toClient: (rgba: number) => number;
  private readonly convert: ((v: number) => number) | undefined;

  constructor(
    readonly format: PixelFormat,
    readonly pf: RfbPixelFormat,
  ) {
    this.mask = passThroughMask(format, pf);
    this.toClient = rgbaToClient(pf);
    this.convert = converterFor(format);
  }

  /** The client values of `r` of `raster` (which must be in this.format), row by row. */
  read(raster: Raster, r: Rect, out: Uint32Array = new Uint32Array(r.w * r.h)): Uint32Array {
    const n = r.w * r.h;
    if (!this.convert) {
      // YUYV: through RGBA, as the viewer shows it.
      const rgba = toRgba({ bytes: raster.data, offset: 0, pitch: raster.pitch, width: raster.width, height: raster.height, format: raster.format }, r.x, r.y, r.w, r.h) as Uint8Array;
      const px = new Uint32Array(rgba.buffer, rgba.byteOffset, n);
      let prev = -1;
      let prevOut = 0;
      for (let i = 0; i < n; i++) {
        const v = px[i]!;
        if (v !== prev) {
          prev = v;
          prevOut = this.toClient(v);
        }
        out[i] = prevOut;
      }
      return out;
    }
    readPixels(raster, r, out);
    const mask = this.mask;
    if (mask !== undefined) {
      for (let i = 0; i < n; i++) out[i] = (out[i]! & mask) >>> 0;
      return out;
    }
    const convert = this.convert;
    const toClient = this.toClient;
    let prev = -1;
    let prevOut = 0;
    for (let i = 0; i < n; i++) {
      const v = out[i]!;
      if (v !== prev) {
        prev = v;
        prevOut = toClient(convert(v));
      }
      out[i] = prevOut;
    }
    return out;
  }
}

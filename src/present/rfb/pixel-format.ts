/**
 * RFB pixel formats (RFC 6143 7.4): the 16-byte PIXEL_FORMAT, the native format the server
 * announces for a framebuffer format, and the conversion of a framebuffer's packed pixel values
 * to a client's pixel values and bytes.
 *
 * Conversion: a client format whose channels are exactly the framebuffer's (same bits per pixel,
 * shifts and maxima) gets the pixel values as they are, with padding and alpha bits cleared.
 * Otherwise a pixel goes through 8-bit RGB exactly as the viewer and PNG snapshots show it
 * (pixels.ts: narrower channels widened by bit replication, YUYV BT.601), and each channel is
 * scaled to the client's maximum: dropping low bits when the maximum is 2^n - 1 (n <= 8), rounding
 * v * max / 255 otherwise.
 */
import type { PixelFormat } from '../../abi/fourcc.js';

export interface RfbPixelFormat {
  readonly bitsPerPixel: 8 | 16 | 32;
  readonly depth: number;
  readonly bigEndian: boolean;
  readonly trueColour: boolean;
  readonly redMax: number;
  readonly greenMax: number;
  readonly blueMax: number;
  readonly redShift: number;
  readonly greenShift: number;
  readonly blueShift: number;
}

export const PIXEL_FORMAT_BYTES = 16;

/** 32 bits per pixel, depth 24, little-endian, r at 16, g at 8, b at 0: XRGB8888. */
export const RFB_XRGB8888: RfbPixelFormat = { bitsPerPixel: 32, depth: 24, bigEndian: false, trueColour: true, redMax: 255, greenMax: 255, blueMax: 255, redShift: 16, greenShift: 8, blueShift: 0 };

export function encodePixelFormat(pf: RfbPixelFormat, out = new Uint8Array(PIXEL_FORMAT_BYTES), at = 0): Uint8Array {
  const dv = new DataView(out.buffer, out.byteOffset + at, PIXEL_FORMAT_BYTES);
  dv.setUint8(0, pf.bitsPerPixel);
  dv.setUint8(1, pf.depth);
  dv.setUint8(2, pf.bigEndian ? 1 : 0);
  dv.setUint8(3, pf.trueColour ? 1 : 0);
  dv.setUint16(4, pf.redMax);
  dv.setUint16(6, pf.greenMax);
  dv.setUint16(8, pf.blueMax);
  dv.setUint8(10, pf.redShift);
  dv.setUint8(11, pf.greenShift);
  dv.setUint8(12, pf.blueShift);
  for (let i = 13; i < 16; i++) dv.setUint8(i, 0);
  return out;
}

/** Parses 16 bytes; throws RangeError (with the reason) for a format vdispl cannot send. */
export function decodePixelFormat(b: Uint8Array, at = 0): RfbPixelFormat {
  const dv = new DataView(b.buffer, b.byteOffset + at, PIXEL_FORMAT_BYTES);
  const bpp = dv.getUint8(0);
  const pf = {
    bitsPerPixel: bpp as 8 | 16 | 32,
    depth: dv.getUint8(1),
    bigEndian: dv.getUint8(2) !== 0,
    trueColour: dv.getUint8(3) !== 0,
    redMax: dv.getUint16(4),
    greenMax: dv.getUint16(6),
    blueMax: dv.getUint16(8),
    redShift: dv.getUint8(10),
    greenShift: dv.getUint8(11),
    blueShift: dv.getUint8(12),
  };
  checkPixelFormat(pf);
  return pf;
}

const bitsOf = (max: number): number => 32 - Math.clz32(max);

/** Throws RangeError unless vdispl can send pixels in `pf`: true colour, 8/16/32 bpp, channels inside the pixel. */
export function checkPixelFormat(pf: RfbPixelFormat): void {
  const bpp: number = pf.bitsPerPixel;
  if (bpp !== 8 && bpp !== 16 && bpp !== 32) throw new RangeError(`${bpp} bits per pixel (RFB allows 8, 16 and 32)`);
  if (!pf.trueColour) throw new RangeError('a colour-map pixel format (vdispl sends true colour only)');
  for (const [name, max, shift] of [['red', pf.redMax, pf.redShift], ['green', pf.greenMax, pf.greenShift], ['blue', pf.blueMax, pf.blueShift]] as const) {
    if (max === 0) throw new RangeError(`${name} max 0`);
    if (shift + bitsOf(max) > pf.bitsPerPixel) throw new RangeError(`${name} max ${max} at shift ${shift} does not fit in ${pf.bitsPerPixel} bits`);
  }
}

export function describePixelFormat(pf: RfbPixelFormat): string {
  const ch = (max: number, shift: number): string => `${bitsOf(max)}@${shift}`;
  return `${pf.bitsPerPixel}bpp depth ${pf.depth} ${pf.bigEndian ? 'BE' : 'LE'} r${ch(pf.redMax, pf.redShift)} g${ch(pf.greenMax, pf.greenShift)} b${ch(pf.blueMax, pf.blueShift)}`;
}

/**
 * The pixel format the server announces for a framebuffer in `format`: the same channels when
 * they are RGB of at most 8 bits in an 8/16/32-bit pixel (so the pixels go out as they are),
 * else XRGB8888 (24-bit RGB, YUYV, 10-bit channels).
 */
export function nativePixelFormat(format: PixelFormat | undefined): RfbPixelFormat {
  const l = format?.layout;
  if (!format || !l || l.kind !== 'rgb' || (format.bpp !== 8 && format.bpp !== 16 && format.bpp !== 32)) return RFB_XRGB8888;
  if (l.r.bits > 8 || l.g.bits > 8 || l.b.bits > 8) return RFB_XRGB8888;
  return {
    bitsPerPixel: format.bpp,
    depth: l.r.bits + l.g.bits + l.b.bits,
    bigEndian: false,
    trueColour: true,
    redMax: (1 << l.r.bits) - 1,
    greenMax: (1 << l.g.bits) - 1,
    blueMax: (1 << l.b.bits) - 1,
    redShift: l.r.shift,
    greenShift: l.g.shift,
    blueShift: l.b.shift,
  };
}

/** 256-entry table: an 8-bit channel value scaled to `max`, shifted into place. */
function channelTable(max: number, shift: number): Uint32Array {
  const t = new Uint32Array(256);
  const bits = bitsOf(max);
  const exact = max === (1 << bits) - 1 && bits <= 8;
  for (let v = 0; v < 256; v++) t[v] = ((exact ? v >>> (8 - bits) : Math.round((v * max) / 255)) << shift) >>> 0;
  return t;
}

/** Maps 8-bit RGB, packed as RGBA little-endian (byte 0 = R), to client pixel values. */
export function rgbaToClient(pf: RfbPixelFormat): (rgba: number) => number {
  const rt = channelTable(pf.redMax, pf.redShift);
  const gt = channelTable(pf.greenMax, pf.greenShift);
  const bt = channelTable(pf.blueMax, pf.blueShift);
  return (rgba) => (rt[rgba & 0xff]! | gt[(rgba >>> 8) & 0xff]! | bt[(rgba >>> 16) & 0xff]!) >>> 0;
}

/**
 * Whether framebuffer pixel values of `format` are already client values of `pf` (once padding and
 * alpha are masked off): returns the mask, or undefined when they need converting.
 */
export function passThroughMask(format: PixelFormat, pf: RfbPixelFormat): number | undefined {
  const l = format.layout;
  if (l.kind !== 'rgb' || format.bpp !== pf.bitsPerPixel) return undefined;
  const same = (c: { shift: number; bits: number }, max: number, shift: number): boolean => c.shift === shift && max === (1 << c.bits) - 1;
  if (!same(l.r, pf.redMax, pf.redShift) || !same(l.g, pf.greenMax, pf.greenShift) || !same(l.b, pf.blueMax, pf.blueShift)) return undefined;
  return ((pf.redMax << pf.redShift) | (pf.greenMax << pf.greenShift) | (pf.blueMax << pf.blueShift)) >>> 0;
}

/** Bytes of a ZRLE/TRLE CPIXEL: 3 when a 32-bit true-colour pixel of depth <= 24 has all its colour bits in its low or high three bytes, else bpp / 8. */
export function cpixelBytes(pf: RfbPixelFormat): 1 | 2 | 3 | 4 {
  if (pf.bitsPerPixel === 32 && pf.depth <= 24 && pf.trueColour) {
    const mask = ((pf.redMax << pf.redShift) | (pf.greenMax << pf.greenShift) | (pf.blueMax << pf.blueShift)) >>> 0;
    if ((mask & 0xff000000) === 0 || (mask & 0xff) === 0) return 3;
  }
  return (pf.bitsPerPixel / 8) as 1 | 2 | 4;
}

/**
 * Writes client pixel values as bytes: `cpp` bytes each (bpp / 8, or 3 for a CPIXEL), in the
 * format's byte order. A 3-byte CPIXEL is the 4-byte pixel without its always-zero byte (the low
 * byte when the colour bits are in the high three, else the high byte).
 */
export class PixelWriter {
  readonly cpp: 1 | 2 | 3 | 4;
  private readonly highThree: boolean;

  constructor(
    readonly pf: RfbPixelFormat,
    cpixel = false,
  ) {
    this.cpp = cpixel ? cpixelBytes(pf) : ((pf.bitsPerPixel / 8) as 1 | 2 | 4);
    const mask = ((pf.redMax << pf.redShift) | (pf.greenMax << pf.greenShift) | (pf.blueMax << pf.blueShift)) >>> 0;
    this.highThree = (mask & 0xff000000) !== 0;
  }

  /** Writes one value at `o`; returns the next offset. */
  put(out: Uint8Array, o: number, v: number): number {
    const be = this.pf.bigEndian;
    switch (this.cpp) {
      case 1:
        out[o] = v;
        return o + 1;
      case 2:
        if (be) {
          out[o] = v >>> 8;
          out[o + 1] = v;
        } else {
          out[o] = v;
          out[o + 1] = v >>> 8;
        }
        return o + 2;
      case 3: {
        const w = this.highThree ? v >>> 8 : v;
        if (be) {
          out[o] = w >>> 16;
          out[o + 1] = w >>> 8;
          out[o + 2] = w;
        } else {
          out[o] = w;
          out[o + 1] = w >>> 8;
          out[o + 2] = w >>> 16;
        }
        return o + 3;
      }
      case 4:
        if (be) {
          out[o] = v >>> 24;
          out[o + 1] = v >>> 16;
          out[o + 2] = v >>> 8;
          out[o + 3] = v;
        } else {
          out[o] = v;
          out[o + 1] = v >>> 8;
          out[o + 2] = v >>> 16;
          out[o + 3] = v >>> 24;
        }
        return o + 4;
    }
  }

  /** All of `values` as bytes. */
  bytes(values: Uint32Array): Uint8Array {
    const out = new Uint8Array(values.length * this.cpp);
    if (this.cpp === 4 && !this.pf.bigEndian) {
      out.set(new Uint8Array(values.buffer, values.byteOffset, values.length * 4));
      return out;
    }
    let o = 0;
    for (let i = 0; i < values.length; i++) o = this.put(out, o, values[i]!);
    return out;
  }
}

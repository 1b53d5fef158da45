/**
 * DRM fourcc pixel formats (`drm_fourcc.h`) that displif carries in FB_ATTACH's `pixel_format`,
 * with their bits per pixel and channel layout, and the Linux dumb-buffer size rules.
 *
 * Channel positions are bit shifts inside one little-endian pixel word of `bpp` bits, exactly as
 * drm_fourcc.h describes them ("[31:0] x:R:G:B 8:8:8:8 little endian" -> b at 0, g at 8, r at 16).
 */
import { AbiError, type Decoded, fail, ok, U32_MAX } from './bytes.js';

/** fourcc_code(a, b, c, d) = a | b << 8 | c << 16 | d << 24. */
export function fourccCode(code: string): number {
  if (code.length !== 4 || !/^[\x20-\x7e]{4}$/.test(code))
    throw new AbiError('range', `fourcc: ${JSON.stringify(code)} is not four printable characters`);
  return (
    (code.charCodeAt(0) |
      (code.charCodeAt(1) << 8) |
      (code.charCodeAt(2) << 16) |
      (code.charCodeAt(3) << 24)) >>>
    0
  );
}

/** The four characters of a fourcc value, e.g. 0x34325258 -> "XR24". */
export function fourccString(value: number): string {
  return String.fromCharCode(
    value & 0xff,
    (value >>> 8) & 0xff,
    (value >>> 16) & 0xff,
    (value >>> 24) & 0xff,
  );
}

export interface Channel {
  readonly shift: number;
  readonly bits: number;
}

export interface RgbLayout {
  readonly kind: 'rgb';
  readonly r: Channel;
  readonly g: Channel;
  readonly b: Channel;
  /** Present for formats with alpha. */
  readonly a?: Channel;
  /** Present for formats with unused padding bits. */
  readonly x?: Channel;
}

/** Packed YUV 4:2:2: two pixels in one 32-bit word; values are bit shifts of each 8-bit sample. */
export interface Yuv422Layout {
  readonly kind: 'yuv422';
  readonly y0: number;
  readonly u: number;
  readonly y1: number;
  readonly v: number;
}

export interface PixelFormat {
  /** DRM_FORMAT_<name> without the prefix. */
  readonly name: string;
  /** The four-character code, e.g. "XR24". */
  readonly code: string;
  /** The u32 fourcc value carried on the wire. */
  readonly fourcc: number;
  /** Bits per pixel (for YUYV: 16, a pair of pixels per 32 bits). */
  readonly bpp: number;
  readonly alpha: boolean;
  readonly layout: RgbLayout | Yuv422Layout;
  /** Advertised by Linux drm/xen-front (`plane_formats` in xen_drm_front_conn.c). */
  readonly xenFront: boolean;
}

const ch = (shift: number, bits: number): Channel => ({ shift, bits });

function rgb(
  name: string,
  code: string,
  bpp: number,
  channels: { r: Channel; g: Channel; b: Channel; a?: Channel; x?: Channel },
  xenFront = false,
): PixelFormat {
  return {
    name,
    code,
    fourcc: fourccCode(code),
    bpp,
    alpha: channels.a !== undefined,
    layout: { kind: 'rgb', ...channels },
    xenFront,
  };
}

/** Every format vdispl knows, Linux xen-front's nine first. */
export const PIXEL_FORMATS: readonly PixelFormat[] = [
  rgb('RGB565', 'RG16', 16, { r: ch(11, 5), g: ch(5, 6), b: ch(0, 5) }, true),
  rgb('RGB888', 'RG24', 24, { r: ch(16, 8), g: ch(8, 8), b: ch(0, 8) }, true),
  rgb('XRGB8888', 'XR24', 32, { x: ch(24, 8), r: ch(16, 8), g: ch(8, 8), b: ch(0, 8) }, true),
  rgb('ARGB8888', 'AR24', 32, { a: ch(24, 8), r: ch(16, 8), g: ch(8, 8), b: ch(0, 8) }, true),
  rgb('XRGB4444', 'XR12', 16, { x: ch(12, 4), r: ch(8, 4), g: ch(4, 4), b: ch(0, 4) }, true),
  rgb('ARGB4444', 'AR12', 16, { a: ch(12, 4), r: ch(8, 4), g: ch(4, 4), b: ch(0, 4) }, true),
  rgb('XRGB1555', 'XR15', 16, { x: ch(15, 1), r: ch(10, 5), g: ch(5, 5), b: ch(0, 5) }, true),
  rgb('ARGB1555', 'AR15', 16, { a: ch(15, 1), r: ch(10, 5), g: ch(5, 5), b: ch(0, 5) }, true),
  {
    name: 'YUYV',
    code: 'YUYV',
    fourcc: fourccCode('YUYV'),
    bpp: 16,
    alpha: false,
    layout: { kind: 'yuv422', y0: 0, u: 8, y1: 16, v: 24 },
    xenFront: true,
  },
  rgb('BGR565', 'BG16', 16, { b: ch(11, 5), g: ch(5, 6), r: ch(0, 5) }),
  rgb('BGR888', 'BG24', 24, { b: ch(16, 8), g: ch(8, 8), r: ch(0, 8) }),
  rgb('XBGR8888', 'XB24', 32, { x: ch(24, 8), b: ch(16, 8), g: ch(8, 8), r: ch(0, 8) }),
  rgb('RGBX8888', 'RX24', 32, { r: ch(24, 8), g: ch(16, 8), b: ch(8, 8), x: ch(0, 8) }),
  rgb('BGRX8888', 'BX24', 32, { b: ch(24, 8), g: ch(16, 8), r: ch(8, 8), x: ch(0, 8) }),
  rgb('ABGR8888', 'AB24', 32, { a: ch(24, 8), b: ch(16, 8), g: ch(8, 8), r: ch(0, 8) }),
  rgb('RGBA8888', 'RA24', 32, { r: ch(24, 8), g: ch(16, 8), b: ch(8, 8), a: ch(0, 8) }),
  rgb('BGRA8888', 'BA24', 32, { b: ch(24, 8), g: ch(16, 8), r: ch(8, 8), a: ch(0, 8) }),
  rgb('XBGR4444', 'XB12', 16, { x: ch(12, 4), b: ch(8, 4), g: ch(4, 4), r: ch(0, 4) }),
  rgb('ABGR4444', 'AB12', 16, { a: ch(12, 4), b: ch(8, 4), g: ch(4, 4), r: ch(0, 4) }),
  rgb('XBGR1555', 'XB15', 16, { x: ch(15, 1), b: ch(10, 5), g: ch(5, 5), r: ch(0, 5) }),
  rgb('ABGR1555', 'AB15', 16, { a: ch(15, 1), b: ch(10, 5), g: ch(5, 5), r: ch(0, 5) }),
  rgb('XRGB2101010', 'XR30', 32, { x: ch(30, 2), r: ch(20, 10), g: ch(10, 10), b: ch(0, 10) }),
  rgb('ARGB2101010', 'AR30', 32, { a: ch(30, 2), r: ch(20, 10), g: ch(10, 10), b: ch(0, 10) }),
  rgb('XBGR2101010', 'XB30', 32, { x: ch(30, 2), b: ch(20, 10), g: ch(10, 10), r: ch(0, 10) }),
  rgb('ABGR2101010', 'AB30', 32, { a: ch(30, 2), b: ch(20, 10), g: ch(10, 10), r: ch(0, 10) }),
];

const BY_FOURCC = new Map(PIXEL_FORMATS.map((p) => [p.fourcc, p]));
const BY_NAME = new Map(PIXEL_FORMATS.map((p) => [p.name, p]));

export const XEN_FRONT_FORMATS: readonly PixelFormat[] = PIXEL_FORMATS.filter((p) => p.xenFront);

export function pixelFormatByFourcc(fourcc: number): PixelFormat | undefined {
  return BY_FOURCC.get(fourcc >>> 0);
}

/** Looks up "XRGB8888" or "DRM_FORMAT_XRGB8888" (case-insensitive). */
export function pixelFormatByName(name: string): PixelFormat | undefined {
  return BY_NAME.get(name.toUpperCase().replace(/^DRM_FORMAT_/, ''));
}

export const DRM_FORMAT_RGB565 = fourccCode('RG16');
export const DRM_FORMAT_RGB888 = fourccCode('RG24');
export const DRM_FORMAT_XRGB8888 = fourccCode('XR24');
export const DRM_FORMAT_ARGB8888 = fourccCode('AR24');
export const DRM_FORMAT_XRGB4444 = fourccCode('XR12');
export const DRM_FORMAT_ARGB4444 = fourccCode('AR12');
export const DRM_FORMAT_XRGB1555 = fourccCode('XR15');
export const DRM_FORMAT_ARGB1555 = fourccCode('AR15');
export const DRM_FORMAT_YUYV = fourccCode('YUYV');

export interface DumbLayout {
  /** Bytes per row: ceil(width * bpp / 8), no alignment (xen_drm_front_dumb_create). */
  readonly pitch: number;
  /** pitch * height: the DBUF_CREATE buffer_sz (not rounded to pages). */
  readonly size: number;
}

/** Bytes of pixel data in a row of `width` pixels: ceil(width * bpp / 8) (the Linux dumb pitch). */
export function pixelRowBytes(format: Pick<PixelFormat, 'bpp'>, width: number): number {
  return Math.ceil((width * format.bpp) / 8);
}

/**
 * The size rules of a Linux dumb buffer on xen-front: the DRM core's checks
 * (drm_mode_create_dumb: non-zero sizes, cpp * width and stride * height within u32, a size
 * that still fits when page-aligned), then the driver's pitch = ceil(width * bpp / 8) and
 * size = pitch * height. Every overflow is an error, never a wrapped value.
 */
export function dumbLayout(width: number, height: number, bpp: number): Decoded<DumbLayout> {
  for (const [n, v] of [
    ['width', width],
    ['height', height],
    ['bpp', bpp],
  ] as const) {
    if (!Number.isInteger(v) || v <= 0 || v > U32_MAX)
      return fail('range', `dumb buffer: ${n} ${v} must be 1..2^32-1`);
  }
  const cpp = Math.ceil(bpp / 8);
  if (cpp * width > U32_MAX)
    return fail('range', `dumb buffer: ${width} pixels of ${cpp} bytes overflow a u32 stride`);
  if (cpp * width * height > U32_MAX) {
    return fail('range', `dumb buffer: ${width}x${height}x${bpp} overflows a u32 size`);
  }
  const pitch = Math.ceil((width * bpp) / 8);
  const size = pitch * height;
  // PAGE_ALIGN(size) must not wrap to 0: size <= 2^32 - 4096.
  if (size > U32_MAX - 4095) return fail('range', `dumb buffer: size ${size} does not fit when page-aligned`);
  return ok({ pitch, size });
}

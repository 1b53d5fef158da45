/**
 * The EDID the backend returns for XENDISPL_OP_GET_EDID: pure bytes, no IO.
 *
 * One EDID 1.4 base block modelled on what displ_be writes (`common/Edid.cpp`): vendor "XEN",
 * product code "VM", serial 0x20200505, week 1 of 2020, digital input with 8 bits per colour over
 * DisplayPort, gamma 2.2, sRGB colour space and primaries, no established or standard timings
 * (standard timing slots hold the "unused" 0x0101), one detailed timing descriptor (DTD) for the
 * mode, a display range limits descriptor when the timings fit its fields, a monitor name
 * descriptor. Unlike displ_be there is no image size anywhere (displ_be leaves the base block's
 * screen size at 0 but puts a 100 DPI size in the DTD, which edid-decode rejects: "The DTD max
 * image size is ..., but the display size is not specified anywhere").
 *
 * The timing uses CVT reduced blanking (v1) figures rather than displ_be's percentages:
 * horizontal blanking 160 pixels (front porch 48, sync 32, back porch 80), vertical front porch 3
 * lines, sync 4–10 lines by aspect ratio, back porch at least 6 lines, vertical blanking at least
 * 460 µs; hsync positive, vsync negative. The pixel clock is a multiple of 10 kHz (the DTD unit),
 * so the refresh rate is rarely exact: the horizontal back porch is widened by up to 255 pixels
 * when that brings the rate within 0.01 Hz of the requested one (else the closest is kept).
 * edid-decode reads a DTD pixel clock under 10 MHz as invalid data, so tiny modes (or very low
 * refresh rates) get padded blanking: horizontal first (up to 3840 pixels), then vertical, until
 * the clock reaches 10 MHz.
 *
 * A DTD holds at most 4095 active pixels/lines and a 655.35 MHz pixel clock. A mode beyond that
 * (4096..8192 wide or high, or a big mode at a high refresh rate) is described exactly by a
 * DisplayID 1.3 extension block (product type "standalone display device": product
 * identification, display parameters, display interface, and a type I detailed timing marked
 * preferred, with 10 kHz clock units in 24 bits and 16-bit active fields); the base block's DTD
 * then holds a fallback: the mode scaled down by the smallest integer factor that fits. Byte 126
 * counts the extension. {@link parseEdidPreferredMode} prefers the DisplayID timing.
 */
import { XENDISPL_EDID_BLOCK_SIZE } from '../abi/displif-constants.js';

export interface EdidOptions {
  /** Active pixels per line, integer 1..8192. */
  readonly width: number;
  /** Active lines, integer 1..8192. */
  readonly height: number;
  /** Vertical refresh rate in Hz, 1..240 (need not be an integer); default 60. */
  readonly refreshHz?: number;
  /** Monitor name: 1..13 printable ASCII characters, not ending with a space; default 'pv-display'. */
  readonly name?: string;
  /** Serial number, u32; default 0x20200505. */
  readonly serial?: number;
}

export const EDID_MAX_DIMENSION = 8192;
export const EDID_MIN_REFRESH_HZ = 1;
export const EDID_MAX_REFRESH_HZ = 240;
export const EDID_DEFAULT_NAME = 'pv-display';
export const EDID_DEFAULT_SERIAL = 0x20200505;
const EDID_NAME_MAX = 13;

const HEADER = [0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00] as const;
/** PNP manufacturer ID, and the product code as stored (u16 little-endian 0x4d56 reads "VM"). */
const VENDOR = 'XEN';
const PRODUCT_CODE = Uint8Array.of(0x56, 0x4d);
const MFG_WEEK = 1;
const MFG_YEAR = 2020;
/** Gamma 2.2 as stored by EDID and DisplayID: (gamma - 1) * 100. */
const GAMMA_BYTE = 120;
/** Descriptor tags (bytes 0..2 zero, byte 3 the tag). */
const TAG_NAME = 0xfc;
const TAG_RANGE_LIMITS = 0xfd;
const TAG_DUMMY = 0x10;
/** Extension block tag of a DisplayID section. */
const EXT_TAG_DISPLAYID = 0x70;
const DISPLAYID_VERSION_1_3 = 0x13;
const DISPLAYID_PRODUCT_STANDALONE_DISPLAY = 3;
const DISPLAYID_PRODUCT_ID = 0x00;
const DISPLAYID_PARAMETERS = 0x01;
const DISPLAYID_PARAMETERS_SIZE = 12;
const DISPLAYID_INTERFACE = 0x0f;
const DISPLAYID_INTERFACE_SIZE = 10;
const DISPLAYID_TYPE_I_TIMING = 0x03;
const DISPLAYID_TYPE_VII_TIMING = 0x22;
const DISPLAYID_TIMING_SIZE = 20;

/** The limits of an 18-byte detailed timing descriptor. */
const DTD_MAX_ACTIVE = 0xfff;
const DTD_MAX_CLOCK_10KHZ = 0xffff;

/** CVT reduced blanking v1 figures. */
const RB_H_FRONT = 48;
const RB_H_SYNC = 32;
const RB_H_BLANK = 160;
const RB_V_FRONT = 3;
const RB_MIN_V_BACK = 6;
const RB_MIN_VBLANK_US = 460;
/** Up to this many extra back-porch pixels are tried to bring the refresh rate closer. */
const MAX_EXTRA_H_BACK = 255;
const REFRESH_TOLERANCE_HZ = 0.01;
/** edid-decode rejects a DTD pixel clock under 10 MHz as invalid data. */
const MIN_CLOCK_10KHZ = 1000;
/** Widest horizontal blanking used to reach that clock (the DTD field holds 4095, less the tuning). */
const MAX_PADDED_H_BLANK = 0xfff - MAX_EXTRA_H_BACK;

/** A timing in the form both descriptors use (blanking = front porch + sync + back porch). */
interface Timing {
  readonly hActive: number;
  readonly hBlank: number;
  readonly hFront: number;
  readonly hSync: number;
  readonly vActive: number;
  readonly vBlank: number;
  readonly vFront: number;
  readonly vSync: number;
  /** Pixel clock in units of 10 kHz. */
  readonly clock10kHz: number;
}

function checkDimension(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 1 || v > EDID_MAX_DIMENSION) {
    throw new RangeError(`EDID ${what} must be an integer from 1 to ${EDID_MAX_DIMENSION}, got ${String(v)}`);
  }
}

interface Identity {
  readonly name: string;
  readonly serial: number;
}

function checkOptions(opts: EdidOptions): Identity & { readonly refresh: number } {
  checkDimension('width', opts.width);
  checkDimension('height', opts.height);
  const refresh = opts.refreshHz ?? 60;
  if (!Number.isFinite(refresh) || refresh < EDID_MIN_REFRESH_HZ || refresh > EDID_MAX_REFRESH_HZ) {
    throw new RangeError(
      `EDID refresh rate must be from ${EDID_MIN_REFRESH_HZ} to ${EDID_MAX_REFRESH_HZ} Hz, got ${String(refresh)}`,
    );
  }
  const name = opts.name ?? EDID_DEFAULT_NAME;
  // Trailing spaces would be indistinguishable from the padding (edid-decode fails them).
  if (name.length < 1 || name.length > EDID_NAME_MAX || !/^[\x20-\x7e]*[\x21-\x7e]$/.test(name)) {
    throw new RangeError(
      `EDID monitor name must be 1 to ${EDID_NAME_MAX} printable ASCII characters, not ending with a space, ` +
        `got ${JSON.stringify(name)}`,
    );
  }
  const serial = opts.serial ?? EDID_DEFAULT_SERIAL;
  if (!Number.isInteger(serial) || serial < 0 || serial > 0xffffffff) {
    throw new RangeError(`EDID serial must be an integer from 0 to 0xffffffff, got ${String(serial)}`);
  }
  return { refresh, name, serial };
}

/** CVT vertical sync width by aspect ratio (4:3, 16:9, 16:10, 5:4, 15:9; anything else 10). */
function cvtVSync(w: number, h: number): number {
  if (w * 3 === h * 4) return 4;
  if (w * 9 === h * 16) return 5;
  if (w * 10 === h * 16) return 6;
  if (w * 4 === h * 5 || w * 9 === h * 15) return 7;
  return 10;
}

/** The reduced-blanking timing of width x height at about `refresh` Hz. */
function computeTiming(width: number, height: number, refresh: number): Timing {
  const vSync = cvtVSync(width, height);
  // CVT-RB: the line period estimated from the frame period minus the minimum blanking time,
  // then enough lines to cover that minimum time, and never fewer than front + sync + 6.
  const hPeriodUs = (1e6 / refresh - RB_MIN_VBLANK_US) / height;
  let vBlank = Math.max(Math.floor(RB_MIN_VBLANK_US / hPeriodUs) + 1, RB_V_FRONT + vSync + RB_MIN_V_BACK);
  let hBlank = RB_H_BLANK;
  // A pixel clock under 10 MHz is read as garbage by EDID parsers: small modes get wider
  // horizontal blanking, then (past MAX_PADDED_H_BLANK) more vertical blanking.
  const minPixels = Math.ceil((MIN_CLOCK_10KHZ * 10_000) / refresh);
  if ((width + hBlank) * (height + vBlank) < minPixels) {
    hBlank = Math.min(MAX_PADDED_H_BLANK, Math.max(hBlank, Math.ceil(minPixels / (height + vBlank)) - width));
    vBlank = Math.max(vBlank, Math.ceil(minPixels / (width + hBlank)) - height);
  }
  const vTotal = height + vBlank;
  let best: { hBlank: number; clock: number; err: number } | undefined;
  for (let extra = 0; extra <= MAX_EXTRA_H_BACK; extra++) {
    const pixels = (width + hBlank + extra) * vTotal;
    const clock = Math.max(MIN_CLOCK_10KHZ, Math.round((pixels * refresh) / 10_000));
    const err = Math.abs((clock * 10_000) / pixels - refresh);
    if (best === undefined || err < best.err) best = { hBlank: hBlank + extra, clock, err };
    if (err <= REFRESH_TOLERANCE_HZ) break;
  }
  // The loop body runs at least once.
  const chosen = best as { hBlank: number; clock: number };
  return {
    hActive: width,
    hBlank: chosen.hBlank,
    hFront: RB_H_FRONT,
    hSync: RB_H_SYNC,
    vActive: height,
    vBlank,
    vFront: RB_V_FRONT,
    vSync,
    clock10kHz: chosen.clock,
  };
}

function fitsDtd(t: Timing): boolean {
  return t.hActive <= DTD_MAX_ACTIVE && t.vActive <= DTD_MAX_ACTIVE && t.clock10kHz <= DTD_MAX_CLOCK_10KHZ;
}

function timingTotals(t: Timing): { hTotal: number; vTotal: number; hz: number; hFreqHz: number } {
  const hTotal = t.hActive + t.hBlank;
  const vTotal = t.vActive + t.vBlank;
  const clockHz = t.clock10kHz * 10_000;
  return { hTotal, vTotal, hz: clockHz / (hTotal * vTotal), hFreqHz: clockHz / hTotal };
}

function writeDtd(b: Uint8Array, o: number, t: Timing): void {
  b[o + 0] = t.clock10kHz & 0xff;
  b[o + 1] = t.clock10kHz >> 8;
  b[o + 2] = t.hActive & 0xff;
  b[o + 3] = t.hBlank & 0xff;
  b[o + 4] = ((t.hActive >> 8) << 4) | (t.hBlank >> 8);
  b[o + 5] = t.vActive & 0xff;
  b[o + 6] = t.vBlank & 0xff;
  b[o + 7] = ((t.vActive >> 8) << 4) | (t.vBlank >> 8);
  b[o + 8] = t.hFront & 0xff;
  b[o + 9] = t.hSync & 0xff;
  b[o + 10] = ((t.vFront & 0xf) << 4) | (t.vSync & 0xf);
  b[o + 11] = ((t.hFront >> 8) << 6) | ((t.hSync >> 8) << 4) | ((t.vFront >> 4) << 2) | (t.vSync >> 4);
  b[o + 12] = 0; // no image size (as in the base block)
  b[o + 13] = 0;
  b[o + 14] = 0;
  b[o + 15] = 0; // no borders
  b[o + 16] = 0;
  // Non-interlaced, no stereo, digital separate sync, vsync negative, hsync positive.
  b[o + 17] = 0x18 | 0x02;
}

/** An ASCII display descriptor (name), text terminated by LF and padded with spaces. */
function writeTextDescriptor(b: Uint8Array, o: number, tag: number, text: string): void {
  b[o + 3] = tag;
  const bytes = new Array<number>(13).fill(0x20);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  if (text.length < 13) bytes[text.length] = 0x0a;
  b.set(bytes, o + 5);
}

/**
 * A display range limits descriptor covering the timings, or false when a limit does not fit
 * its fields (vertical up to 510 Hz, horizontal up to 510 kHz, pixel clock up to 2550 MHz).
 */
function writeRangeLimits(b: Uint8Array, o: number, timings: readonly Timing[]): boolean {
  let vMin = Infinity;
  let vMax = 0;
  let hMin = Infinity;
  let hMax = 0;
  let clkMax = 0;
  for (const t of timings) {
    const { hz, hFreqHz } = timingTotals(t);
    vMin = Math.min(vMin, Math.max(1, Math.floor(hz)));
    vMax = Math.max(vMax, Math.ceil(hz));
    hMin = Math.min(hMin, Math.max(1, Math.floor(hFreqHz / 1000)));
    hMax = Math.max(hMax, Math.ceil(hFreqHz / 1000));
    clkMax = Math.max(clkMax, Math.ceil(t.clock10kHz / 1000));
  }
  if (vMax > 510 || hMax > 510 || clkMax > 255) return false;
  // Offsets (EDID 1.4): +255 on a maximum (and on the minimum) when the value needs it.
  let flags = 0;
  if (vMin > 255) flags |= 0x03;
  else if (vMax > 255) flags |= 0x02;
  if (hMin > 255) flags |= 0x0c;
  else if (hMax > 255) flags |= 0x08;
  b[o + 3] = TAG_RANGE_LIMITS;
  b[o + 4] = flags;
  b[o + 5] = vMin > 255 ? vMin - 255 : vMin;
  b[o + 6] = vMax > 255 ? vMax - 255 : vMax;
  b[o + 7] = hMin > 255 ? hMin - 255 : hMin;
  b[o + 8] = hMax > 255 ? hMax - 255 : hMax;
  b[o + 9] = clkMax;
  b[o + 10] = 0x01; // range limits only, no timing formula
  b[o + 11] = 0x0a;
  b.fill(0x20, o + 12, o + 18);
  return true;
}

/** Sets the last byte of a 128-byte block so that the block sums to 0 mod 256. */
function sealBlock(b: Uint8Array, o: number): void {
  let sum = 0;
  for (let i = o; i < o + XENDISPL_EDID_BLOCK_SIZE - 1; i++) sum += b[i] ?? 0;
  b[o + XENDISPL_EDID_BLOCK_SIZE - 1] = (256 - (sum & 0xff)) & 0xff;
}

/** DisplayID aspect ratio code of a type I timing (8 = undefined, computed from the active area). */
function displayIdAspect(w: number, h: number): number {
  const ratios: readonly (readonly [number, number])[] = [
    [1, 1],
    [5, 4],
    [4, 3],
    [15, 9],
    [16, 9],
    [16, 10],
    [64, 27],
    [256, 135],
  ];
  const i = ratios.findIndex(([a, c]) => w * c === h * a);
  return i < 0 ? 8 : i;
}

function writeLe16(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >> 8) & 0xff;
}

function writeLe32(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = (v >>> 24) & 0xff;
}

function ascii(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

/**
 * An EDID extension block holding a DisplayID 1.3 section for a standalone display: the product
 * identification data block (required first) repeating the base block's identity, the display
 * parameters (native pixels, no image size, gamma 2.2, 8 bpc), the display interface (DisplayPort,
 * RGB 8 bpc), and a type I detailed timing data block with the one preferred timing. edid-decode
 * requires the first three of a display product.
 */
function writeDisplayIdBlock(b: Uint8Array, o: number, t: Timing, id: Identity): void {
  const productIdLen = 12 + id.name.length;
  const payload =
    3 + productIdLen + 3 + DISPLAYID_PARAMETERS_SIZE + 3 + DISPLAYID_INTERFACE_SIZE + 3 + DISPLAYID_TIMING_SIZE;
  b[o + 0] = EXT_TAG_DISPLAYID;
  // Section header: version, payload bytes, product type, extension count.
  const s = o + 1;
  b[s + 0] = DISPLAYID_VERSION_1_3;
  b[s + 1] = payload;
  b[s + 2] = DISPLAYID_PRODUCT_STANDALONE_DISPLAY;
  b[s + 3] = 0;
  // Product identification: vendor ID (3 ASCII), product code (u16 LE), serial (u32 LE), week,
  // year - 2000, product name length and characters.
  const p = s + 4;
  b[p + 0] = DISPLAYID_PRODUCT_ID;
  b[p + 1] = 0;
  b[p + 2] = productIdLen;
  b.set(ascii(VENDOR), p + 3);
  b.set(PRODUCT_CODE, p + 6);
  writeLe32(b, p + 8, id.serial);
  b[p + 12] = MFG_WEEK;
  b[p + 13] = MFG_YEAR - 2000;
  b[p + 14] = id.name.length;
  b.set(ascii(id.name), p + 15);
  // Display parameters: image size (0.1 mm units; 0 = unknown), native pixels, feature flags,
  // gamma, aspect ratio (long side / short side, as value/100 + 1), native/overall bpc - 1.
  const q = p + 3 + productIdLen;
  b[q + 0] = DISPLAYID_PARAMETERS;
  b[q + 1] = 0;
  b[q + 2] = DISPLAYID_PARAMETERS_SIZE;
  writeLe16(b, q + 3, 0);
  writeLe16(b, q + 5, 0);
  writeLe16(b, q + 7, t.hActive);
  writeLe16(b, q + 9, t.vActive);
  b[q + 11] = 0;
  b[q + 12] = GAMMA_BYTE;
  const long = Math.max(t.hActive, t.vActive);
  const short = Math.min(t.hActive, t.vActive);
  b[q + 13] = Math.min(255, Math.round((100 * long) / short) - 100);
  b[q + 14] = 0x77; // 8 bpc native and overall
  // Display interface: DisplayPort, 1 link, version unspecified, RGB at 8 bpc only, no content
  // protection, no spread spectrum.
  const f = q + 3 + DISPLAYID_PARAMETERS_SIZE;
  b[f + 0] = DISPLAYID_INTERFACE;
  b[f + 1] = 0;
  b[f + 2] = DISPLAYID_INTERFACE_SIZE;
  b[f + 3] = 0xa1;
  b[f + 5] = 0x02;
  // Type I detailed timing data block, revision 0, one 20-byte descriptor.
  const d = f + 3 + DISPLAYID_INTERFACE_SIZE;
  b[d + 0] = DISPLAYID_TYPE_I_TIMING;
  b[d + 1] = 0;
  b[d + 2] = DISPLAYID_TIMING_SIZE;
  const x = d + 3;
  const clk = t.clock10kHz - 1;
  b[x + 0] = clk & 0xff;
  b[x + 1] = (clk >> 8) & 0xff;
  b[x + 2] = (clk >> 16) & 0xff;
  b[x + 3] = 0x80 | displayIdAspect(t.hActive, t.vActive); // preferred, progressive, mono
  writeLe16(b, x + 4, t.hActive - 1);
  writeLe16(b, x + 6, t.hBlank - 1);
  writeLe16(b, x + 8, (t.hFront - 1) | 0x8000); // hsync positive
  writeLe16(b, x + 10, t.hSync - 1);
  writeLe16(b, x + 12, t.vActive - 1);
  writeLe16(b, x + 14, t.vBlank - 1);
  writeLe16(b, x + 16, t.vFront - 1); // vsync negative
  writeLe16(b, x + 18, t.vSync - 1);
  // Section checksum: version byte through checksum byte sum to 0 mod 256.
  const end = s + 4 + payload;
  let sum = 0;
  for (let i = s; i < end; i++) sum += b[i] ?? 0;
  b[end] = (256 - (sum & 0xff)) & 0xff;
  sealBlock(b, o);
}

/** The largest mode that fits a DTD: the mode scaled down by the smallest integer factor. */
function fallbackTiming(width: number, height: number, refresh: number): Timing {
  for (let k = 2; ; k++) {
    const t = computeTiming(Math.max(1, Math.floor(width / k)), Math.max(1, Math.floor(height / k)), refresh);
    if (fitsDtd(t)) return t;
  }
}

/**
 * Builds the EDID for one preferred mode of exactly `width` x `height` at `refreshHz`: 128 bytes,
 * or 256 when the mode needs a DisplayID extension block (see the module comment).
 * Throws RangeError on a bad option.
 */
export function buildEdid(opts: EdidOptions): Uint8Array {
  const id = checkOptions(opts);
  const { refresh, name, serial } = id;
  const exact = computeTiming(opts.width, opts.height, refresh);
  const inBase = fitsDtd(exact);
  const baseTiming = inBase ? exact : fallbackTiming(opts.width, opts.height, refresh);
  const extensions = inBase ? 0 : 1;
  const b = new Uint8Array(XENDISPL_EDID_BLOCK_SIZE * (1 + extensions));

  b.set(HEADER, 0);
  // Manufacturer: three 5-bit letters ('A' = 1), big-endian.
  const mfg = [...VENDOR].reduce((acc, c) => (acc << 5) | (c.charCodeAt(0) - 0x40), 0);
  b[8] = mfg >> 8;
  b[9] = mfg & 0xff;
  b.set(PRODUCT_CODE, 10);
  writeLe32(b, 12, serial);
  b[16] = MFG_WEEK;
  b[17] = MFG_YEAR - 1990;
  b[18] = 1; // EDID 1.4
  b[19] = 4;
  // Digital input, 8 bits per primary colour, DisplayPort.
  b[20] = 0x80 | (0b010 << 4) | 0x05;
  // No screen size (unknown or variable): 0 cm x 0 cm.
  b[21] = 0;
  b[22] = 0;
  b[23] = GAMMA_BYTE;
  // Features: no DPMS, RGB 4:4:4, sRGB default colour space, preferred timing is native.
  b[24] = 0x04 | 0x02;
  writeChromaticity(b);
  // Established timings (35..37): none. Standard timings (38..53): all unused.
  b.fill(0x01, 38, 54);
  writeDtd(b, 54, baseTiming);
  const timings = inBase ? [exact] : [baseTiming, exact];
  if (!writeRangeLimits(b, 72, timings)) b[72 + 3] = TAG_DUMMY;
  writeTextDescriptor(b, 90, TAG_NAME, name);
  b[108 + 3] = TAG_DUMMY;
  b[126] = extensions;
  sealBlock(b, 0);
  if (!inBase) writeDisplayIdBlock(b, XENDISPL_EDID_BLOCK_SIZE, exact, id);
  return b;
}

/** sRGB (ITU-R BT.709) primaries and D65 white point, as 10-bit binary fractions. */
function writeChromaticity(b: Uint8Array): void {
  const q = (v: number): number => Math.round(v * 1024);
  const [rx, ry, gx, gy, bx, by, wx, wy] = [0.64, 0.33, 0.3, 0.6, 0.15, 0.06, 0.3127, 0.329].map(q) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  b[25] = ((rx & 3) << 6) | ((ry & 3) << 4) | ((gx & 3) << 2) | (gy & 3);
  b[26] = ((bx & 3) << 6) | ((by & 3) << 4) | ((wx & 3) << 2) | (wy & 3);
  b[27] = rx >> 2;
  b[28] = ry >> 2;
  b[29] = gx >> 2;
  b[30] = gy >> 2;
  b[31] = bx >> 2;
  b[32] = by >> 2;
  b[33] = wx >> 2;
  b[34] = wy >> 2;
}

/** True when `block` is one 128-byte EDID block whose bytes sum to 0 mod 256. */
export function edidChecksumOk(block: Uint8Array): boolean {
  if (block.length !== XENDISPL_EDID_BLOCK_SIZE) return false;
  let sum = 0;
  for (const v of block) sum += v;
  return (sum & 0xff) === 0;
}

/**
 * The preferred mode's active area: the preferred (else first) type I or type VII timing of a
 * DisplayID extension block when there is one, otherwise the first detailed timing descriptor of
 * the base block. Undefined when the data is not an EDID (short, wrong header, bad base block
 * checksum) or describes no timing. Extension blocks that are missing, truncated or fail their
 * checksum (block or DisplayID section) are ignored.
 */
export function parseEdidPreferredMode(edid: Uint8Array): { width: number; height: number } | undefined {
  const B = XENDISPL_EDID_BLOCK_SIZE;
  if (edid.length < B) return undefined;
  for (let i = 0; i < HEADER.length; i++) if (edid[i] !== HEADER[i]) return undefined;
  if (!edidChecksumOk(edid.subarray(0, B))) return undefined;
  const count = edid[126] ?? 0;
  for (let e = 1; e <= count && (e + 1) * B <= edid.length; e++) {
    const block = edid.subarray(e * B, (e + 1) * B);
    if (block[0] !== EXT_TAG_DISPLAYID || !edidChecksumOk(block)) continue;
    const mode = parseDisplayIdSection(block);
    if (mode) return mode;
  }
  for (let o = 54; o < 126; o += 18) {
    const clock = (edid[o] ?? 0) | ((edid[o + 1] ?? 0) << 8);
    if (clock === 0) continue; // a display descriptor, not a timing
    const width = (edid[o + 2] ?? 0) | (((edid[o + 4] ?? 0) >> 4) << 8);
    const height = (edid[o + 5] ?? 0) | (((edid[o + 7] ?? 0) >> 4) << 8);
    if (width === 0 || height === 0) return undefined;
    return { width, height };
  }
  return undefined;
}

/**
 * The preferred (else first) type I / type VII timing in the DisplayID section of an extension
 * block; undefined when there is none or the section's own checksum is wrong.
 */
function parseDisplayIdSection(block: Uint8Array): { width: number; height: number } | undefined {
  const le16 = (o: number): number => (block[o] ?? 0) | ((block[o + 1] ?? 0) << 8);
  const sectionLen = block[2] ?? 0;
  const end = 5 + sectionLen;
  if (end >= block.length - 1) return undefined;
  let sum = 0;
  for (let i = 1; i <= end; i++) sum += block[i] ?? 0;
  if ((sum & 0xff) !== 0) return undefined;
  let first: { width: number; height: number } | undefined;
  let o = 5;
  while (o + 3 <= end) {
    const tag = block[o] ?? 0;
    const len = block[o + 2] ?? 0;
    if (tag === 0 && len === 0) break; // padding
    const data = o + 3;
    if (data + len > end) break;
    if (tag === DISPLAYID_TYPE_I_TIMING || tag === DISPLAYID_TYPE_VII_TIMING) {
      for (let x = data; x + DISPLAYID_TIMING_SIZE <= data + len; x += DISPLAYID_TIMING_SIZE) {
        const mode = { width: le16(x + 4) + 1, height: le16(x + 12) + 1 };
        if (((block[x + 3] ?? 0) & 0x80) !== 0) return mode;
        first ??= mode;
      }
    }
    o = data + len;
  }
  return first;
}

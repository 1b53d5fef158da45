/**
 * Byte helpers shared by every ABI codec: the decode result type, the error type, bounds-checked
 * little-endian access and hex conversion. Pure: no IO.
 *
 * Xen's shared structures are little-endian on every architecture Xen supports (x86, Arm). The
 * codecs use DataView with explicit little-endian accesses; the ring code, which reads shared
 * indices with Atomics on a Uint32Array, relies on the host being little-endian and checks it.
 */

export type AbiErrorCode =
  | 'short' // fewer bytes than the structure needs
  | 'range' // a field value outside what the C type can hold
  | 'malformed' // bytes or text that do not form a valid value
  | 'too-large'; // a length beyond a protocol limit

/** A decoding or encoding problem. Decoders return it; encoders throw it. */
export class AbiError extends Error {
  readonly code: AbiErrorCode;
  constructor(code: AbiErrorCode, message: string) {
    super(message);
    this.name = 'AbiError';
    this.code = code;
  }
}

export type Decoded<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: AbiError };

export function ok<T>(value: T): Decoded<T> {
  return { ok: true, value };
}

export function fail<T>(code: AbiErrorCode, message: string): Decoded<T> {
  return { ok: false, error: new AbiError(code, message) };
}

export const U8_MAX = 0xff;
export const U16_MAX = 0xffff;
export const U32_MAX = 0xffff_ffff;
export const U64_MAX = 0xffff_ffff_ffff_ffffn;
export const S32_MIN = -0x8000_0000;
export const S32_MAX = 0x7fff_ffff;

export const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

const VIEWS = new WeakMap<ArrayBufferLike, DataView>();

/**
 * A DataView over the whole buffer behind `bytes`, cached per buffer (constructing a DataView
 * costs more than decoding a packet). Address fields at `bytes.byteOffset + offset`, and check
 * bounds against `bytes` first: the view itself reaches the whole buffer.
 */
export function bufferView(bytes: Uint8Array): DataView {
  let v = VIEWS.get(bytes.buffer);
  if (v === undefined) {
    v = new DataView(bytes.buffer);
    VIEWS.set(bytes.buffer, v);
  }
  return v;
}

/** The 'short' error of a decoder given fewer than `length` bytes. */
export function short<T>(bytes: Uint8Array, length: number, what: string): Decoded<T> {
  return fail('short', `${what}: need ${length} bytes, got ${bytes.byteLength}`);
}

/**
 * Checks that `length` bytes fit in `out` at `offset` and returns their absolute offset in the
 * buffer behind `out` (for use with bufferView); throws AbiError 'short' otherwise.
 */
export function outBase(out: Uint8Array, offset: number, length: number, what: string): number {
  if (!Number.isInteger(offset) || offset < 0 || offset + length > out.byteLength) {
    throw new AbiError(
      'short',
      `${what}: need ${length} bytes at offset ${offset}, buffer has ${out.byteLength}`,
    );
  }
  return out.byteOffset + offset;
}

function checkInt(value: number, min: number, max: number, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new AbiError('range', `${field}: ${String(value)} is not an integer in [${min}, ${max}]`);
  }
  return value;
}

export const checkU8 = (v: number, field: string): number => checkInt(v, 0, U8_MAX, field);
export const checkU16 = (v: number, field: string): number => checkInt(v, 0, U16_MAX, field);
export const checkU32 = (v: number, field: string): number => checkInt(v, 0, U32_MAX, field);
export const checkS32 = (v: number, field: string): number => checkInt(v, S32_MIN, S32_MAX, field);

export function checkU64(value: bigint, field: string): bigint {
  if (typeof value !== 'bigint' || value < 0n || value > U64_MAX) {
    throw new AbiError('range', `${field}: ${String(value)} is not a u64`);
  }
  return value;
}

const HEX = '0123456789abcdef';

export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    s += HEX[b >> 4]! + HEX[b & 15]!;
  }
  return s;
}

/** Parses hex text; whitespace is ignored. Odd length or a non-hex character is an error. */
export function fromHex(text: string): Decoded<Uint8Array> {
  const clean = text.replace(/\s+/g, '');
  if (clean.length % 2 !== 0) return fail('malformed', `hex: odd number of digits (${clean.length})`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = hexDigit(clean.charCodeAt(2 * i));
    const lo = hexDigit(clean.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) {
      const bad = hi < 0 ? clean[2 * i] : clean[2 * i + 1];
      return fail(
        'malformed',
        `hex: invalid character ${JSON.stringify(bad)} at digit ${hi < 0 ? 2 * i : 2 * i + 1}`,
      );
    }
    out[i] = (hi << 4) | lo;
  }
  return ok(out);
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * DES (FIPS 46-3), single-length, one 8-byte block at a time, and the two places VNC uses it:
 * VNC authentication (RFB security type 2: the server's 16-byte challenge encrypted as two
 * DES-ECB blocks under a key made from the password) and the `vncpasswd` file format (the
 * password encrypted under a fixed key), as TigerVNC, RealVNC and vncsnapshot write it.
 *
 * Our own DES because Node 20 links OpenSSL 3, where DES lives in the "legacy" provider that Node
 * does not load: createCipheriv('des-ecb') throws "unsupported". The cipher is written from the
 * standard's tables (PC-1, PC-2, the shift schedule, IP and its inverse, E, the S-boxes, P), which
 * are kept below exactly as printed there (bit 1 = the most significant bit of the first byte);
 * at module load they are turned into byte-indexed tables for IP/IP⁻¹ and combined S-box+P
 * tables, so a block is 32-bit integer arithmetic only. The key schedule (once per DesKey) works
 * bit by bit.
 *
 * The VNC quirk: VNC's DES is Outerbridge's d3des with its `bytebit` table reversed, so every key
 * byte is read least significant bit first. In FIPS terms the key is each byte bit-reversed (and
 * the bit that is ignored is each byte's most significant, not the parity bit). Both VNC
 * authentication and the vncpasswd obfuscation go through that same d3des `deskey`, so both
 * reverse their key's bits here: vncpasswd's fixed key {23,82,107,6,35,78,88,7} is, in FIPS
 * terms, e8 4a d6 60 c4 72 1a e0 (the real `vncpasswd -f` agrees: see
 * test/interop/vncpasswd.test.ts). The data bits are never reversed.
 *
 * Passwords given as strings are encoded as UTF-8 (what a UTF-8 terminal hands vncpasswd and the
 * viewers); as with the C tools, which keep them in C strings, a password ends at its first NUL,
 * and only its first 8 bytes count.
 */
import { timingSafeEqual } from 'node:crypto';

// ---- FIPS 46-3 tables (1-based bit numbers; bit 1 is the most significant) ----

/** Initial permutation IP. */
const IP: readonly number[] = [
  58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4,
  62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
  57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3,
  61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
];

/** Inverse initial permutation IP⁻¹ (the final permutation). */
const FP: readonly number[] = [
  40, 8, 48, 16, 56, 24, 64, 32, 39, 7, 47, 15, 55, 23, 63, 31,
  38, 6, 46, 14, 54, 22, 62, 30, 37, 5, 45, 13, 53, 21, 61, 29,
  36, 4, 44, 12, 52, 20, 60, 28, 35, 3, 43, 11, 51, 19, 59, 27,
  34, 2, 42, 10, 50, 18, 58, 26, 33, 1, 41, 9, 49, 17, 57, 25,
];

/** Expansion E: 32 bits of R to 48. */
const E: readonly number[] = [
  32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9,
  8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17,
  16, 17, 18, 19, 20, 21, 20, 21, 22, 23, 24, 25,
  24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1,
];

/** Permutation P of the S-boxes' 32 output bits. */
const P: readonly number[] = [
  16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10,
  2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25,
];

/** S-boxes S1..S8: 4 rows of 16; row = bits 1 and 6 of the 6-bit input, column = bits 2..5. */
const S: readonly (readonly number[])[] = [
  [
    14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7,
    0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8,
    4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0,
    15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13,
  ],
  [
    15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10,
    3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5,
    0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15,
    13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9,
  ],
  [
    10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8,
    13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1,
    13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7,
    1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12,
  ],
  [
    7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15,
    13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9,
    10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4,
    3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14,
  ],
  [
    2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9,
    14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6,
    4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14,
    11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3,
  ],
  [
    12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11,
    10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8,
    9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6,
    4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13,
  ],
  [
    4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1,
    13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6,
    1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2,
    6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12,
  ],
  [
    13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7,
    1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2,
    7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8,
    2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11,
  ],
];

/** Permuted choice 1: the 56 key bits (parity bits 8, 16, ..., 64 left out) into C (first 28) and D. */
const PC1: readonly number[] = [
  57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18,
  10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36,
  63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22,
  14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
];

/** Permuted choice 2: 48 of the 56 bits of CD into a round's subkey. */
const PC2: readonly number[] = [
  14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10,
  23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2,
  41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48,
  44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
];

/** Left shifts of C and D before each of the 16 rounds. */
const SHIFTS: readonly number[] = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];

// ---- tables derived at load ----

function at(table: readonly number[], i: number): number {
  const v = table[i];
  if (v === undefined) throw new RangeError(`DES table index ${i} out of range`);
  return v;
}

/**
 * A 64-bit to 64-bit permutation (IP or IP⁻¹) as byte tables: for input byte b with value v,
 * `hi[b * 256 + v]` and `lo[b * 256 + v]` are the output's two 32-bit halves that byte alone
 * produces; the permutation of a block is the XOR over its 8 bytes.
 */
function byteTables(table: readonly number[]): { hi: Int32Array; lo: Int32Array } {
  const hi = new Int32Array(8 * 256);
  const lo = new Int32Array(8 * 256);
  for (let out = 0; out < 64; out++) {
    const src = at(table, out) - 1; // 0-based input bit, 0 = MSB of byte 0
    const byte = src >>> 3;
    const mask = 0x80 >>> (src & 7);
    const outBit = out < 32 ? 1 << (31 - out) : 1 << (63 - out);
    const dst = out < 32 ? hi : lo;
    for (let v = 0; v < 256; v++) {
      if (v & mask) dst[byte * 256 + v]! |= outBit;
    }
  }
  return { hi, lo };
}

const IP_T = byteTables(IP);
const FP_T = byteTables(FP);

/**
 * S-box i and P together: SP[i * 64 + x] is P applied to S-box i's 4-bit output for the 6-bit
 * input x (placed at bits 4i+1..4i+4), so f(R, K) is the XOR of 8 lookups.
 */
const SP = (() => {
  const sp = new Int32Array(8 * 64);
  for (let i = 0; i < 8; i++) {
    const box = S[i]!;
    for (let x = 0; x < 64; x++) {
      const row = ((x >>> 4) & 2) | (x & 1);
      const col = (x >>> 1) & 15;
      const s = at(box, row * 16 + col) << (28 - 4 * i);
      let out = 0;
      for (let j = 0; j < 32; j++) {
        if ((s >>> (32 - at(P, j))) & 1) out |= 1 << (31 - j);
      }
      sp[i * 64 + x] = out;
    }
  }
  return sp;
})();

// The round function takes E's 6-bit groups by rotating R: group i is bits 4i..4i+5 of R
// (1-based, cyclic: bit 0 is bit 32, bit 33 is bit 1). Check E really is that.
for (let i = 0; i < 48; i++) {
  const group = Math.floor(i / 6);
  const want = ((4 * group + (i % 6) + 31) % 32) + 1;
  if (at(E, i) !== want) throw new Error(`DES: E[${i}] is ${at(E, i)}, the round function assumes ${want}`);
}

// ---- the cipher ----

const BLOCK = 8;

function checkLength(what: string, bytes: Uint8Array, n: number): void {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`);
  if (bytes.length !== n) throw new RangeError(`${what} must be ${n} bytes, got ${bytes.length}`);
}

/**
 * The 16 subkeys of one key, as 8 6-bit groups per round: `[round * 8 + group]`. Bits 8, 16, ...,
 * 64 of the key (each byte's least significant, the parity bits) are not used.
 */
function keySchedule(key: Uint8Array): Uint8Array {
  const bit = (n: number): number => ((key[(n - 1) >>> 3]! >>> (7 - ((n - 1) & 7))) & 1); // n 1-based
  let c = 0;
  let d = 0;
  for (let i = 0; i < 28; i++) c = (c << 1) | bit(at(PC1, i));
  for (let i = 28; i < 56; i++) d = (d << 1) | bit(at(PC1, i));
  const sub = new Uint8Array(16 * 8);
  for (let round = 0; round < 16; round++) {
    const s = at(SHIFTS, round);
    c = ((c << s) | (c >>> (28 - s))) & 0xfffffff;
    d = ((d << s) | (d >>> (28 - s))) & 0xfffffff;
    for (let j = 0; j < 48; j++) {
      const n = at(PC2, j); // 1-based bit of CD
      const b = n <= 28 ? (c >>> (28 - n)) & 1 : (d >>> (56 - n)) & 1;
      sub[round * 8 + (j / 6 | 0)]! |= b << (5 - (j % 6));
    }
  }
  return sub;
}

/** One block, `sub` in the order the rounds use it. */
function cryptBlock(sub: Uint8Array, input: Uint8Array, inOff: number, out: Uint8Array, outOff: number): void {
  let l = 0;
  let r = 0;
  for (let b = 0; b < 8; b++) {
    const i = b * 256 + input[inOff + b]!;
    l |= IP_T.hi[i]!;
    r |= IP_T.lo[i]!;
  }
  for (let k = 0; k < 128; k += 8) {
    const f =
      SP[(((r >>> 27) | (r << 5)) & 63) ^ sub[k]!]! ^
      SP[64 + (((r >>> 23) & 63) ^ sub[k + 1]!)]! ^
      SP[128 + (((r >>> 19) & 63) ^ sub[k + 2]!)]! ^
      SP[192 + (((r >>> 15) & 63) ^ sub[k + 3]!)]! ^
      SP[256 + (((r >>> 11) & 63) ^ sub[k + 4]!)]! ^
      SP[320 + (((r >>> 7) & 63) ^ sub[k + 5]!)]! ^
      SP[384 + (((r >>> 3) & 63) ^ sub[k + 6]!)]! ^
      SP[448 + ((((r << 1) | (r >>> 31)) & 63) ^ sub[k + 7]!)]!;
    const t = l ^ f;
    l = r;
    r = t;
  }
  // The pre-output is R16 L16; IP⁻¹ of it, byte by byte.
  let hi = 0;
  let lo = 0;
  for (let b = 0; b < 4; b++) {
    const i = b * 256 + ((r >>> (24 - 8 * b)) & 255);
    hi |= FP_T.hi[i]!;
    lo |= FP_T.lo[i]!;
    const j = (b + 4) * 256 + ((l >>> (24 - 8 * b)) & 255);
    hi |= FP_T.hi[j]!;
    lo |= FP_T.lo[j]!;
  }
  out[outOff] = hi >>> 24;
  out[outOff + 1] = hi >>> 16;
  out[outOff + 2] = hi >>> 8;
  out[outOff + 3] = hi;
  out[outOff + 4] = lo >>> 24;
  out[outOff + 5] = lo >>> 16;
  out[outOff + 6] = lo >>> 8;
  out[outOff + 7] = lo;
}

/** A DES key with its schedule computed once: encrypt and decrypt any number of blocks with it. */
export class DesKey {
  readonly #enc: Uint8Array;
  readonly #dec: Uint8Array;

  /** `key`: 8 bytes, FIPS bit order; each byte's least significant (parity) bit is ignored. */
  constructor(key: Uint8Array) {
    checkLength('DES key', key, 8);
    this.#enc = keySchedule(key);
    this.#dec = new Uint8Array(128);
    for (let round = 0; round < 16; round++) this.#dec.set(this.#enc.subarray((15 - round) * 8, (16 - round) * 8), round * 8);
  }

  /** Encrypts one 8-byte block into a new array. */
  encryptBlock(block: Uint8Array): Uint8Array {
    checkLength('DES block', block, BLOCK);
    const out = new Uint8Array(BLOCK);
    cryptBlock(this.#enc, block, 0, out, 0);
    return out;
  }

  /** Decrypts one 8-byte block into a new array. */
  decryptBlock(block: Uint8Array): Uint8Array {
    checkLength('DES block', block, BLOCK);
    const out = new Uint8Array(BLOCK);
    cryptBlock(this.#dec, block, 0, out, 0);
    return out;
  }

  /** ECB: each 8-byte block of `data` encrypted on its own; the length must be a multiple of 8. */
  encryptEcb(data: Uint8Array): Uint8Array {
    return this.#ecb(this.#enc, data);
  }

  /** ECB decryption; the length must be a multiple of 8. */
  decryptEcb(data: Uint8Array): Uint8Array {
    return this.#ecb(this.#dec, data);
  }

  #ecb(sub: Uint8Array, data: Uint8Array): Uint8Array {
    if (!(data instanceof Uint8Array)) throw new TypeError('DES ECB data must be a Uint8Array');
    if (data.length % BLOCK !== 0) throw new RangeError(`DES ECB data must be a multiple of 8 bytes, got ${data.length}`);
    const out = new Uint8Array(data.length);
    for (let o = 0; o < data.length; o += BLOCK) cryptBlock(sub, data, o, out, o);
    return out;
  }
}

/** Encrypts one 8-byte block with an 8-byte key (a DesKey saves the schedule for more blocks). */
export function desEncryptBlock(key: Uint8Array, block: Uint8Array): Uint8Array {
  return new DesKey(key).encryptBlock(block);
}

/** Decrypts one 8-byte block with an 8-byte key. */
export function desDecryptBlock(key: Uint8Array, block: Uint8Array): Uint8Array {
  return new DesKey(key).decryptBlock(block);
}

// ---- VNC ----

/** The RFB VNC-authentication challenge and response size. */
export const VNC_AUTH_CHALLENGE_SIZE = 16;

/** vncpasswd's fixed key as written in the C sources (d3des order, before bit reversal). */
const VNC_OBFUSCATION_KEY: readonly number[] = [23, 82, 107, 6, 35, 78, 88, 7];

function reverseBits(b: number): number {
  b = ((b & 0xf0) >>> 4) | ((b & 0x0f) << 4);
  b = ((b & 0xcc) >>> 2) | ((b & 0x33) << 2);
  return ((b & 0xaa) >>> 1) | ((b & 0x55) << 1);
}

/** A d3des key (as VNC's C code holds it) in FIPS bit order: each byte bit-reversed. */
function d3desKey(bytes: ArrayLike<number>): Uint8Array {
  const key = new Uint8Array(8);
  for (let i = 0; i < 8; i++) key[i] = reverseBits(bytes[i]!);
  return key;
}

/** The password as VNC's C tools see it: UTF-8, up to the first NUL, first 8 bytes, zero-padded to 8. */
function passwordBlock(password: string | Uint8Array): Uint8Array {
  const bytes = typeof password === 'string' ? new TextEncoder().encode(password) : password;
  if (!(bytes instanceof Uint8Array)) throw new TypeError('a VNC password must be a string or a Uint8Array');
  const block = new Uint8Array(8);
  for (let i = 0; i < 8 && i < bytes.length && bytes[i] !== 0; i++) block[i] = bytes[i]!;
  return block;
}

/**
 * The DES key (FIPS bit order) of VNC authentication for a password: its UTF-8 bytes up to the
 * first NUL, truncated to 8 and zero-padded to 8, each byte bit-reversed (bit 0 <-> bit 7, ...).
 */
export function vncPasswordKey(password: string | Uint8Array): Uint8Array {
  return d3desKey(passwordBlock(password));
}

/** The 16-byte VNC-authentication response: the challenge as two DES-ECB blocks under vncPasswordKey(password). */
export function vncAuthResponse(password: string | Uint8Array, challenge: Uint8Array): Uint8Array {
  checkLength('VNC auth challenge', challenge, VNC_AUTH_CHALLENGE_SIZE);
  return new DesKey(vncPasswordKey(password)).encryptEcb(challenge);
}

/**
 * Whether a client's `response` to `challenge` proves it knows `password`, compared in constant
 * time. A response of the wrong length is false; a challenge of the wrong length (ours) throws.
 */
export function vncAuthCheck(password: string | Uint8Array, challenge: Uint8Array, response: Uint8Array): boolean {
  const expected = vncAuthResponse(password, challenge);
  if (!(response instanceof Uint8Array) || response.length !== expected.length) return false;
  return timingSafeEqual(expected, response);
}

/**
 * A password as the 8 bytes of a `vncpasswd` file (`vncpasswd -f`, `-passwd file`): the password
 * block (as for vncPasswordKey, but not bit-reversed) DES-encrypted under the fixed key.
 */
export function obfuscateVncPassword(password: string | Uint8Array): Uint8Array {
  return new DesKey(d3desKey(VNC_OBFUSCATION_KEY)).encryptBlock(passwordBlock(password));
}

/**
 * The password in 8 bytes of a `vncpasswd` file: decrypted, up to the first NUL, decoded as UTF-8
 * (a multi-byte character cut by the 8-byte limit becomes U+FFFD). A TigerVNC file of 16 bytes
 * holds the full-access password then the view-only one: pass each 8 bytes separately.
 */
export function deobfuscateVncPassword(bytes: Uint8Array): string {
  checkLength('an obfuscated VNC password', bytes, 8);
  const plain = new DesKey(d3desKey(VNC_OBFUSCATION_KEY)).decryptBlock(bytes);
  const end = plain.indexOf(0);
  return new TextDecoder().decode(end < 0 ? plain : plain.subarray(0, end));
}

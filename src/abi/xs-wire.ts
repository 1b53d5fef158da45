/**
 * The XenStore wire protocol (`xen/include/public/io/xs_wire.h`): the 16-byte `xsd_sockmsg`
 * header, message types, the error-name table in `xsd_errors` order, payload helpers, an
 * incremental stream parser, and the layout of `struct xenstore_domain_interface` (the ring page
 * a guest shares with xenstored).
 */
import { AbiError, checkU32, type Decoded, fail, ok } from './bytes.js';
import { StructCodec } from './codec.js';
import type { FieldSpec } from './fields.js';

// Message types, in enum xsd_sockmsg_type order.
export const XS_CONTROL = 0;
export const XS_DEBUG = XS_CONTROL;
export const XS_DIRECTORY = 1;
export const XS_READ = 2;
export const XS_GET_PERMS = 3;
export const XS_WATCH = 4;
export const XS_UNWATCH = 5;
export const XS_TRANSACTION_START = 6;
export const XS_TRANSACTION_END = 7;
export const XS_INTRODUCE = 8;
export const XS_RELEASE = 9;
export const XS_GET_DOMAIN_PATH = 10;
export const XS_WRITE = 11;
export const XS_MKDIR = 12;
export const XS_RM = 13;
export const XS_SET_PERMS = 14;
export const XS_WATCH_EVENT = 15;
export const XS_ERROR = 16;
export const XS_IS_DOMAIN_INTRODUCED = 17;
export const XS_RESUME = 18;
export const XS_SET_TARGET = 19;
// 20 was XS_RESTRICT; it has been removed and is invalid.
export const XS_RESET_WATCHES = 21;
export const XS_DIRECTORY_PART = 22;
/** Number of valid types in the Xen 4.17 header this project is verified against. */
export const XS_TYPE_COUNT = 23;
/** Added after Xen 4.17 (4.18+ headers); listed so they can be named and refused with ENOSYS. */
export const XS_GET_FEATURE = 23;
export const XS_SET_FEATURE = 24;
export const XS_GET_QUOTA = 25;
export const XS_SET_QUOTA = 26;
/** Guaranteed to remain an invalid type. */
export const XS_INVALID = 0xffff;

export const XS_TYPE_NAMES: Readonly<Record<number, string>> = {
  [XS_CONTROL]: 'XS_CONTROL',
  [XS_DIRECTORY]: 'XS_DIRECTORY',
  [XS_READ]: 'XS_READ',
  [XS_GET_PERMS]: 'XS_GET_PERMS',
  [XS_WATCH]: 'XS_WATCH',
  [XS_UNWATCH]: 'XS_UNWATCH',
  [XS_TRANSACTION_START]: 'XS_TRANSACTION_START',
  [XS_TRANSACTION_END]: 'XS_TRANSACTION_END',
  [XS_INTRODUCE]: 'XS_INTRODUCE',
  [XS_RELEASE]: 'XS_RELEASE',
  [XS_GET_DOMAIN_PATH]: 'XS_GET_DOMAIN_PATH',
  [XS_WRITE]: 'XS_WRITE',
  [XS_MKDIR]: 'XS_MKDIR',
  [XS_RM]: 'XS_RM',
  [XS_SET_PERMS]: 'XS_SET_PERMS',
  [XS_WATCH_EVENT]: 'XS_WATCH_EVENT',
  [XS_ERROR]: 'XS_ERROR',
  [XS_IS_DOMAIN_INTRODUCED]: 'XS_IS_DOMAIN_INTRODUCED',
  [XS_RESUME]: 'XS_RESUME',
  [XS_SET_TARGET]: 'XS_SET_TARGET',
  [XS_RESET_WATCHES]: 'XS_RESET_WATCHES',
  [XS_DIRECTORY_PART]: 'XS_DIRECTORY_PART',
  [XS_GET_FEATURE]: 'XS_GET_FEATURE',
  [XS_SET_FEATURE]: 'XS_SET_FEATURE',
  [XS_GET_QUOTA]: 'XS_GET_QUOTA',
  [XS_SET_QUOTA]: 'XS_SET_QUOTA',
  [XS_INVALID]: 'XS_INVALID',
};

/** Index of the path and the token in a watch event's payload (enum xs_watch_type). */
export const XS_WATCH_PATH = 0;
export const XS_WATCH_TOKEN = 1;

export const XS_WRITE_NONE = 'NONE';
export const XS_WRITE_CREATE = 'CREATE';
export const XS_WRITE_CREATE_EXCL = 'CREATE|EXCL';

/**
 * `xsd_errors[]` in order (new errors are only ever appended). XenStore sends errors as these
 * names, NUL-terminated, in an XS_ERROR reply.
 */
export const XSD_ERRORS = [
  'EINVAL',
  'EACCES',
  'EEXIST',
  'EISDIR',
  'ENOENT',
  'ENOMEM',
  'ENOSPC',
  'EIO',
  'ENOTEMPTY',
  'ENOSYS',
  'EROFS',
  'EBUSY',
  'EAGAIN',
  'EISCONN',
  'E2BIG',
  'EPERM',
] as const;
export type XsErrorName = (typeof XSD_ERRORS)[number];

export function isXsErrorName(s: string): s is XsErrorName {
  return (XSD_ERRORS as readonly string[]).includes(s);
}

// Limits.
export const XENSTORE_PAYLOAD_MAX = 4096;
export const XENSTORE_ABS_PATH_MAX = 3072;
export const XENSTORE_REL_PATH_MAX = 2048;

// ---------------------------------------------------------------------------------------------
// Header and messages

export const XSD_SOCKMSG_SIZE = 16;
export const XSD_SOCKMSG_FIELDS: readonly FieldSpec[] = [
  { name: 'type', offset: 0, type: 'u32' },
  { name: 'req_id', offset: 4, type: 'u32' },
  { name: 'tx_id', offset: 8, type: 'u32' },
  { name: 'len', offset: 12, type: 'u32' },
];

export interface XsHeader {
  readonly type: number;
  readonly req_id: number;
  readonly tx_id: number;
  readonly len: number;
}

export interface XsMessage {
  readonly type: number;
  readonly req_id: number;
  readonly tx_id: number;
  readonly payload: Uint8Array;
}

export const XSD_SOCKMSG_CODEC = new StructCodec<XsHeader>('xsd_sockmsg', XSD_SOCKMSG_SIZE, XSD_SOCKMSG_FIELDS);

export function decodeXsHeader(bytes: Uint8Array): Decoded<XsHeader> {
  return XSD_SOCKMSG_CODEC.decode(bytes);
}

export function encodeXsHeader(h: XsHeader, out?: Uint8Array, offset = 0): Uint8Array {
  return XSD_SOCKMSG_CODEC.encode(h, out, offset);
}

function tooLarge(len: number, max: number): AbiError {
  return new AbiError('too-large', `xsd_sockmsg: payload length ${len} exceeds XENSTORE_PAYLOAD_MAX ${max}`);
}

/**
 * Decodes one message at the start of `bytes` (header + `len` payload bytes); `size` is how many
 * bytes it used. A payload longer than `maxPayload` (default 4096) is an error, as for xenstored.
 */
export function decodeXsMessage(
  bytes: Uint8Array,
  maxPayload = XENSTORE_PAYLOAD_MAX,
): Decoded<{ message: XsMessage; size: number }> {
  const h = decodeXsHeader(bytes);
  if (!h.ok) return h;
  const { type, req_id, tx_id, len } = h.value;
  if (len > maxPayload) return { ok: false, error: tooLarge(len, maxPayload) };
  if (bytes.length < XSD_SOCKMSG_SIZE + len) {
    return fail(
      'short',
      `xsd_sockmsg: payload of ${len} bytes announced, ${bytes.length - XSD_SOCKMSG_SIZE} present`,
    );
  }
  const payload = bytes.slice(XSD_SOCKMSG_SIZE, XSD_SOCKMSG_SIZE + len);
  return ok({ message: { type, req_id, tx_id, payload }, size: XSD_SOCKMSG_SIZE + len });
}

/** Header + payload in one buffer; `len` is the payload's length. */
export function encodeXsMessage(m: XsMessage, maxPayload = XENSTORE_PAYLOAD_MAX): Uint8Array {
  if (m.payload.length > maxPayload) {
    throw tooLarge(m.payload.length, maxPayload);
  }
  const out = new Uint8Array(XSD_SOCKMSG_SIZE + m.payload.length);
  encodeXsHeader({ type: m.type, req_id: m.req_id, tx_id: m.tx_id, len: m.payload.length }, out);
  out.set(m.payload, XSD_SOCKMSG_SIZE);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Payload helpers

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/**
 * Builds a payload: each string NUL-terminated, then `value` raw (no terminator), as XS_WRITE
 * (`path\0value`) and every string-list request (`path\0`, `wpath\0token\0`) are laid out.
 */
export function xsPayload(strings: readonly string[], value?: Uint8Array | string): Uint8Array {
  const parts = strings.map((s) => utf8.encode(s));
  const tail = typeof value === 'string' ? utf8.encode(value) : (value ?? new Uint8Array(0));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length + 1, 0) + tail.length);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length + 1; // the NUL is already 0
  }
  out.set(tail, o);
  return out;
}

/** Splits at every NUL: `a\0` -> [a, ''], `a\0b` -> [a, b], empty -> ['']. */
export function splitAtNul(payload: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i < payload.length; i++) {
    if (payload[i] === 0) {
      out.push(payload.subarray(start, i));
      start = i + 1;
    }
  }
  out.push(payload.subarray(start));
  return out;
}

/**
 * The strings of a NUL-terminated list (`a\0b\0` -> [a, b]), as XS_DIRECTORY and XS_GET_PERMS
 * replies carry them. Bytes after the last NUL, if any, form a last element.
 */
export function xsStringList(payload: Uint8Array): string[] {
  const parts = splitAtNul(payload);
  if (parts.length > 0 && parts[parts.length - 1]!.length === 0) parts.pop();
  return parts.map((p) => utf8Decoder.decode(p));
}

/** The `"<ERRNAME>\0"` payload of an XS_ERROR reply, or undefined if it is not one. */
export function xsErrorName(payload: Uint8Array): XsErrorName | undefined {
  const name = utf8Decoder.decode(splitAtNul(payload)[0]);
  return isXsErrorName(name) ? name : undefined;
}

// ---------------------------------------------------------------------------------------------
// Stream parser

/** What one push produced: the messages it completed and, once the stream is broken, the error. */
export interface XsParseResult {
  readonly messages: XsMessage[];
  readonly error?: AbiError;
}

/**
 * Reassembles messages from a byte stream (a socket or the ring page): packets split across
 * chunks, several packets in one chunk. Memory is bounded by one maximal message. A header that
 * announces more than `maxPayload` bytes is a protocol error: the messages completed before it
 * are still delivered with the error, the parser stops, and every later push returns the same
 * error (the connection must be closed, as xenstored does).
 */
export class XsStreamParser {
  readonly maxPayload: number;
  private readonly buf: Uint8Array;
  private have = 0;
  private need = XSD_SOCKMSG_SIZE;
  private header: XsHeader | undefined;
  private error: AbiError | undefined;

  constructor(maxPayload = XENSTORE_PAYLOAD_MAX) {
    checkU32(maxPayload, 'maxPayload');
    this.maxPayload = maxPayload;
    this.buf = new Uint8Array(XSD_SOCKMSG_SIZE + maxPayload);
  }

  /** Bytes buffered towards an incomplete message. */
  get pending(): number {
    return this.have;
  }

  get failed(): AbiError | undefined {
    return this.error;
  }

  push(chunk: Uint8Array): XsParseResult {
    const messages: XsMessage[] = [];
    if (this.error) return { messages, error: this.error };
    let pos = 0;
    while (pos < chunk.length) {
      const take = Math.min(this.need - this.have, chunk.length - pos);
      this.buf.set(chunk.subarray(pos, pos + take), this.have);
      this.have += take;
      pos += take;
      if (this.have < this.need) break;
      if (this.header === undefined) {
        const h = decodeXsHeader(this.buf);
        if (!h.ok || h.value.len > this.maxPayload) {
          this.error = h.ok ? tooLarge(h.value.len, this.maxPayload) : h.error;
          return { messages, error: this.error };
        }
        this.header = h.value;
        this.need = XSD_SOCKMSG_SIZE + h.value.len;
      }
      if (this.have === this.need) {
        const { type, req_id, tx_id } = this.header;
        messages.push({ type, req_id, tx_id, payload: this.buf.slice(XSD_SOCKMSG_SIZE, this.need) });
        this.header = undefined;
        this.have = 0;
        this.need = XSD_SOCKMSG_SIZE;
      }
    }
    return { messages };
  }
}

// ---------------------------------------------------------------------------------------------
// struct xenstore_domain_interface (the guest's xenstore ring page)

export const XENSTORE_RING_SIZE = 1024;
export const XS_IFACE_REQ_OFFSET = 0;
export const XS_IFACE_RSP_OFFSET = 1024;
export const XS_IFACE_FIELDS: readonly FieldSpec[] = [
  { name: 'req_cons', offset: 2048, type: 'u32' },
  { name: 'req_prod', offset: 2052, type: 'u32' },
  { name: 'rsp_cons', offset: 2056, type: 'u32' },
  { name: 'rsp_prod', offset: 2060, type: 'u32' },
  { name: 'server_features', offset: 2064, type: 'u32' },
  { name: 'connection', offset: 2068, type: 'u32' },
  { name: 'error', offset: 2072, type: 'u32' },
];
/** sizeof(struct xenstore_domain_interface) in the Xen 4.17 header (4.18+ append evtchn_port). */
export const XS_IFACE_SIZE = 2076;

export function maskXenstoreIdx(idx: number): number {
  return idx & (XENSTORE_RING_SIZE - 1);
}

export const XENSTORE_SERVER_FEATURE_RECONNECTION = 1;
export const XENSTORE_SERVER_FEATURE_ERROR = 2;
/** Xen 4.18+: watch depth; 4.19+: DOMID_ANY. Not in the 4.17 header. */
export const XENSTORE_SERVER_FEATURE_WATCHDEPTH = 4;
export const XENSTORE_SERVER_FEATURE_DOMID_ANY = 8;

export const XENSTORE_CONNECTED = 0;
export const XENSTORE_RECONNECT = 1;

export const XENSTORE_ERROR_NONE = 0;
export const XENSTORE_ERROR_COMM = 1;
export const XENSTORE_ERROR_RINGIDX = 2;
export const XENSTORE_ERROR_PROTO = 3;

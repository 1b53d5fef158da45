/**
 * The JSON form of every ABI structure, as `vdispl abi decode|encode` prints and reads it and as
 * the C-generated conformance fixtures record it: keys are the C field names of the Xen headers,
 * an operation's payload fields sit at the top level, u64 values are decimal strings, reserved
 * bytes are omitted when zero and reported as `"reserved_nonzero": true` otherwise.
 */
import { AbiError, type Decoded, fail, fromHex, ok, toHex, U64_MAX } from './bytes.js';
import { XENDISPL_PACKET_SIZE } from './displif-constants.js';
import {
  type DisplEvt,
  type DisplReq,
  type DisplResp,
  decodeEventPageHeader,
  decodeEvt,
  decodeReq,
  decodeResp,
  EVENT_PAGE_HEADER_FIELDS,
  EVT_HEADER_FIELDS,
  EVT_PAYLOADS,
  encodeEventPageHeader,
  encodeEvt,
  encodeReq,
  encodeResp,
  REQ_HEADER_FIELDS,
  REQ_PAYLOADS,
  RESP_HEADER_FIELDS,
  RESP_PAYLOADS,
  XENDISPL_OP_UNION_SIZE,
} from './displif-packets.js';
import type { FieldSpec } from './fields.js';
import {
  decodeGrantEntry,
  encodeGrantEntry,
  GRANT_ENTRY_V1_FIELDS,
  GRANT_ENTRY_V1_SIZE,
} from './grant-table.js';
import {
  decodePageDirectory,
  encodePageDirectory,
  PGDIR_GREFS_PER_PAGE,
  XEN_PAGE_SIZE,
} from './page-directory.js';
import {
  decodeSringHeader,
  encodeSringHeader,
  SRING_HEADER_FIELDS,
  SRING_HEADER_SIZE,
} from './ring-layout.js';
import {
  decodeXsHeader,
  decodeXsMessage,
  encodeXsMessage,
  splitAtNul,
  XENSTORE_PAYLOAD_MAX,
  XSD_SOCKMSG_FIELDS,
  XSD_SOCKMSG_SIZE,
} from './xs-wire.js';

export type JsonValue = number | string | boolean | JsonValue[] | { [k: string]: JsonValue };
export type JsonObject = { [k: string]: JsonValue };

export const ABI_KIND_NAMES = [
  'req',
  'resp',
  'evt',
  'evtpage',
  'sring',
  'gntentry',
  'xsmsg',
  'pgdir',
] as const;
export type AbiKindName = (typeof ABI_KIND_NAMES)[number];

export interface AbiKind {
  readonly name: AbiKindName;
  readonly description: string;
  /** Size of the packet at the start of `bytes` (xsmsg reads it from the header). */
  packetSize(bytes: Uint8Array): Decoded<number>;
  decode(bytes: Uint8Array): Decoded<JsonObject>;
  /** Throws AbiError on a missing/unknown key or a value out of range. */
  encode(json: unknown): Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// Values

function toJsonValue(v: unknown): JsonValue {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return toHex(v);
  return v as JsonValue;
}

/** Plain object with C-named keys -> JSON: drops the `unknown` marker and a false reserved flag. */
function toJsonObject(decoded: object): JsonObject {
  const out: JsonObject = {};
  let reserved = false;
  for (const [k, v] of Object.entries(decoded)) {
    if (k === 'unknown') continue;
    if (k === 'reserved_nonzero') {
      reserved = v === true;
      continue;
    }
    out[k] = toJsonValue(v);
  }
  if (reserved) out.reserved_nonzero = true;
  return out;
}

function expectObject(json: unknown, kind: string): Record<string, unknown> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new AbiError('malformed', `expected a JSON object for ${kind}`);
  }
  return json as Record<string, unknown>;
}

function checkKeys(obj: Record<string, unknown>, allowed: readonly string[], kind: string): void {
  for (const k of Object.keys(obj)) {
    if (k !== 'reserved_nonzero' && !allowed.includes(k)) {
      throw new AbiError(
        'malformed',
        `unknown key ${JSON.stringify(k)} (${kind} has: ${allowed.join(', ')})`,
      );
    }
  }
}

function requireKeys(obj: Record<string, unknown>, required: readonly string[], kind: string): void {
  for (const k of required) {
    if (!(k in obj))
      throw new AbiError(
        'malformed',
        `missing key ${JSON.stringify(k)} (${kind} needs: ${required.join(', ')})`,
      );
  }
}

/** JSON value -> typed value for one field: numbers for u8..s32, decimal string (or safe integer) for u64. */
function fieldValue(f: FieldSpec, v: unknown): number | bigint {
  if (f.type !== 'u64') {
    if (typeof v !== 'number')
      throw new AbiError('range', `${f.name}: expected a number, got ${JSON.stringify(v)}`);
    return v;
  }
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === 'string' && /^[0-9]{1,20}$/.test(v)) {
    const b = BigInt(v);
    if (b <= U64_MAX) return b;
  }
  throw new AbiError('range', `${f.name}: ${JSON.stringify(v)} is not a u64 (give a decimal string)`);
}

function fieldsFromJson(
  obj: Record<string, unknown>,
  fields: readonly FieldSpec[],
  into: Record<string, unknown>,
): void {
  for (const f of fields) {
    if (f.name in obj) into[f.name] = fieldValue(f, obj[f.name]);
    else into[f.name] = f.type === 'u64' ? 0n : 0;
  }
}

function opBytes(v: unknown): Uint8Array {
  const h = typeof v === 'string' ? fromHex(v) : undefined;
  if (!h?.ok || h.value.length !== XENDISPL_OP_UNION_SIZE) {
    throw new AbiError(
      'range',
      `op: expected ${XENDISPL_OP_UNION_SIZE} bytes as ${2 * XENDISPL_OP_UNION_SIZE} hex digits`,
    );
  }
  return h.value;
}

const names = (fields: readonly FieldSpec[]): string[] => fields.map((f) => f.name);

const fixed = (size: number) => (): Decoded<number> => ok(size);

function mapDecoded<T extends object>(d: Decoded<T>): Decoded<JsonObject> {
  return d.ok ? ok(toJsonObject(d.value)) : d;
}

// ---------------------------------------------------------------------------------------------
// displif packets

function payloadKind<P>(
  name: AbiKindName,
  description: string,
  header: readonly FieldSpec[],
  payloads: Readonly<Record<number, { fields: readonly FieldSpec[] }>>,
  discriminant: string,
  hasOpUnion: boolean,
  decode: (b: Uint8Array) => Decoded<object>,
  encode: (p: P) => Uint8Array,
): AbiKind {
  return {
    name,
    description,
    packetSize: fixed(XENDISPL_PACKET_SIZE),
    decode: (b) => mapDecoded(decode(b)),
    encode(json) {
      const obj = expectObject(json, name);
      requireKeys(obj, names(header), name);
      const out: Record<string, unknown> = {};
      fieldsFromJson(obj, header, out);
      const layout = payloads[out[discriminant] as number];
      const extra = layout ? layout.fields : [];
      const allowed = [...names(header), ...names(extra)];
      if (layout) fieldsFromJson(obj, extra, out);
      else if (hasOpUnion) {
        allowed.push('op');
        out.unknown = true;
        out.op = 'op' in obj ? opBytes(obj.op) : new Uint8Array(XENDISPL_OP_UNION_SIZE);
      }
      checkKeys(obj, allowed, name);
      return encode(out as P);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Registry

const xsmsgFieldsNoLen = XSD_SOCKMSG_FIELDS.filter((f) => f.name !== 'len');

/** Payload bytes <-> JSON strings, one code point per byte (latin1), split at every NUL. */
function payloadToJson(payload: Uint8Array): string[] {
  return splitAtNul(payload).map((p) => String.fromCharCode(...p));
}

function payloadFromJson(v: unknown): Uint8Array {
  if (!Array.isArray(v) || v.length === 0 || !v.every((s) => typeof s === 'string')) {
    throw new AbiError(
      'malformed',
      'payload: expected a non-empty array of strings (the payload split at NUL)',
    );
  }
  const joined = (v).join('\0');
  const out = new Uint8Array(joined.length);
  for (let i = 0; i < joined.length; i++) {
    const c = joined.charCodeAt(i);
    if (c > 0xff)
      throw new AbiError(
        'range',
        `payload: character U+${c.toString(16).padStart(4, '0')} is not a byte (0-255)`,
      );
    out[i] = c;
  }
  return out;
}

export const ABI_KINDS: Readonly<Record<AbiKindName, AbiKind>> = {
  req: payloadKind<DisplReq>(
    'req',
    'struct xendispl_req (64 bytes)',
    REQ_HEADER_FIELDS,
    REQ_PAYLOADS,
    'operation',
    true,
    decodeReq,
    (p) => encodeReq(p),
  ),
  resp: payloadKind<DisplResp>(
    'resp',
    'struct xendispl_resp (64 bytes)',
    RESP_HEADER_FIELDS,
    RESP_PAYLOADS,
    'operation',
    false,
    decodeResp,
    (p) => encodeResp(p),
  ),
  evt: payloadKind<DisplEvt>(
    'evt',
    'struct xendispl_evt (64 bytes)',
    EVT_HEADER_FIELDS,
    EVT_PAYLOADS,
    'type',
    true,
    decodeEvt,
    (p) => encodeEvt(p),
  ),
  evtpage: simpleKind(
    'evtpage',
    'struct xendispl_event_page header (64 bytes)',
    XENDISPL_PACKET_SIZE,
    EVENT_PAGE_HEADER_FIELDS,
    decodeEventPageHeader,
    (o) => encodeEventPageHeader(o as never),
  ),
  sring: simpleKind(
    'sring',
    'shared ring header, struct xen_displif_sring (64 bytes)',
    SRING_HEADER_SIZE,
    SRING_HEADER_FIELDS,
    decodeSringHeader,
    (o) => encodeSringHeader(o as never),
  ),
  gntentry: simpleKind(
    'gntentry',
    'struct grant_entry_v1 (8 bytes)',
    GRANT_ENTRY_V1_SIZE,
    GRANT_ENTRY_V1_FIELDS,
    decodeGrantEntry,
    (o) => encodeGrantEntry(o as never),
  ),
  xsmsg: {
    name: 'xsmsg',
    description: 'struct xsd_sockmsg (16 bytes) + len payload bytes',
    packetSize(bytes) {
      const h = decodeXsHeader(bytes);
      if (!h.ok) return h;
      if (h.value.len > XENSTORE_PAYLOAD_MAX) {
        return fail(
          'too-large',
          `xsmsg: payload length ${h.value.len} exceeds XENSTORE_PAYLOAD_MAX ${XENSTORE_PAYLOAD_MAX}`,
        );
      }
      return ok(XSD_SOCKMSG_SIZE + h.value.len);
    },
    decode(bytes) {
      const d = decodeXsMessage(bytes);
      if (!d.ok) return d;
      const m = d.value.message;
      return ok({
        type: m.type,
        req_id: m.req_id,
        tx_id: m.tx_id,
        len: m.payload.length,
        payload: payloadToJson(m.payload),
      });
    },
    encode(json) {
      const obj = expectObject(json, 'xsmsg');
      checkKeys(obj, [...names(XSD_SOCKMSG_FIELDS), 'payload'], 'xsmsg');
      requireKeys(obj, ['type', 'payload'], 'xsmsg');
      const h: Record<string, unknown> = {};
      fieldsFromJson(obj, xsmsgFieldsNoLen, h);
      const payload = payloadFromJson(obj.payload);
      if ('len' in obj && obj.len !== payload.length) {
        throw new AbiError(
          'range',
          `len: ${JSON.stringify(obj.len)} does not match the payload's ${payload.length} bytes`,
        );
      }
      return encodeXsMessage({
        type: h.type as number,
        req_id: h.req_id as number,
        tx_id: h.tx_id as number,
        payload,
      });
    },
  },
  pgdir: {
    name: 'pgdir',
    description: 'struct xendispl_page_directory (one 4096-byte page)',
    packetSize: fixed(XEN_PAGE_SIZE),
    decode(bytes) {
      const d = decodePageDirectory(bytes);
      if (!d.ok) return d;
      return ok({ gref_dir_next_page: d.value.gref_dir_next_page, gref: Array.from(d.value.gref) });
    },
    encode(json) {
      const obj = expectObject(json, 'pgdir');
      checkKeys(obj, ['gref_dir_next_page', 'gref'], 'pgdir');
      const gref = 'gref' in obj ? obj.gref : [];
      if (!Array.isArray(gref) || gref.length > PGDIR_GREFS_PER_PAGE) {
        throw new AbiError(
          'range',
          `gref: expected an array of at most ${PGDIR_GREFS_PER_PAGE} grant references`,
        );
      }
      const next = 'gref_dir_next_page' in obj ? obj.gref_dir_next_page : 0;
      if (typeof next !== 'number') throw new AbiError('range', 'gref_dir_next_page: expected a number');
      if (!gref.every((g) => typeof g === 'number'))
        throw new AbiError('range', 'gref: every entry must be a number');
      return encodePageDirectory({ gref_dir_next_page: next, gref: gref });
    },
  },
};

function simpleKind(
  name: AbiKindName,
  description: string,
  size: number,
  fields: readonly FieldSpec[],
  decode: (b: Uint8Array) => Decoded<object>,
  encode: (o: Record<string, unknown>) => Uint8Array,
): AbiKind {
  return {
    name,
    description,
    packetSize: fixed(size),
    decode: (b) => mapDecoded(decode(b)),
    encode(json) {
      const obj = expectObject(json, name);
      checkKeys(obj, names(fields), name);
      const out: Record<string, unknown> = {};
      fieldsFromJson(obj, fields, out);
      return encode(out);
    },
  };
}

export function isAbiKindName(s: string): s is AbiKindName {
  return (ABI_KIND_NAMES as readonly string[]).includes(s);
}

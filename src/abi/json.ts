/**
 * The JSON form of every ABI structure, as `vdispl abi decode|encode` prints and reads it and as
 * the C-generated conformance fixtures record it: keys are the C field names of the Xen headers,
 * an operation's payload fields sit at the top level, u64 values are decimal strings, reserved
 * bytes are omitted when zero and reported as `"reserved_nonzero": true` otherwise.
 */
import { AbiError, type Decoded, fail, fromHex, ok, toHex, U64_MAX } from './bytes.js';
import type { StructCodec, TaggedCodec } from './codec.js';
import { EVENT_PAGE_HEADER_CODEC, EVT_CODEC, REQ_CODEC, RESP_CODEC } from './displif-packets.js';
import type { FieldSpec } from './fields.js';
import { GRANT_ENTRY_V1_CODEC } from './grant-table.js';
import { decodePageDirectory, encodePageDirectory, PGDIR_GREFS_PER_PAGE, XEN_PAGE_SIZE } from './page-directory.js';
import { SRING_HEADER_CODEC } from './ring-layout.js';
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

export const ABI_KIND_NAMES = ['req', 'resp', 'evt', 'evtpage', 'sring', 'gntentry', 'xsmsg', 'pgdir'] as const;
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

export function isAbiKindName(s: string): s is AbiKindName {
  return (ABI_KIND_NAMES as readonly string[]).includes(s);
}

// ---------------------------------------------------------------------------------------------
// Decoded objects -> JSON

function toJsonValue(v: unknown): JsonValue {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return toHex(v);
  return v as JsonValue;
}

/** Drops the `unknown` marker and a false reserved flag (which goes last when true). */
function toJsonObject(decoded: object): JsonObject {
  const out: JsonObject = {};
  let reserved = false;
  for (const [k, v] of Object.entries(decoded)) {
    if (k === 'unknown') continue;
    if (k === 'reserved_nonzero') reserved = v === true;
    else out[k] = toJsonValue(v);
  }
  if (reserved) out.reserved_nonzero = true;
  return out;
}

function mapDecoded(d: Decoded<object>): Decoded<JsonObject> {
  return d.ok ? ok(toJsonObject(d.value)) : d;
}

// ---------------------------------------------------------------------------------------------
// JSON -> typed values

function expectObject(json: unknown, kind: string): Record<string, unknown> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new AbiError('malformed', `expected a JSON object for ${kind}`);
  }
  return json as Record<string, unknown>;
}

/** Rejects keys outside `allowed` (`reserved_nonzero` is accepted and ignored, so decode output re-encodes). */
function checkKeys(obj: Record<string, unknown>, allowed: readonly string[], kind: string): void {
  for (const k of Object.keys(obj)) {
    if (k !== 'reserved_nonzero' && !allowed.includes(k)) {
      throw new AbiError('malformed', `unknown key ${JSON.stringify(k)} (${kind} has: ${allowed.join(', ')})`);
    }
  }
}

function requireKeys(obj: Record<string, unknown>, required: readonly string[], kind: string): void {
  for (const k of required) {
    if (!(k in obj)) throw new AbiError('malformed', `missing key ${JSON.stringify(k)} (${kind} needs: ${required.join(', ')})`);
  }
}

/** One field: a number for u8..s32 (range-checked by the encoder), a decimal string or safe integer for u64. */
function fieldValue(f: FieldSpec, v: unknown): number | bigint {
  if (f.type !== 'u64') {
    if (typeof v !== 'number') throw new AbiError('range', `${f.name}: expected a number, got ${JSON.stringify(v)}`);
    return v;
  }
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === 'string' && /^[0-9]{1,20}$/.test(v)) {
    const b = BigInt(v);
    if (b <= U64_MAX) return b;
  }
  throw new AbiError('range', `${f.name}: ${JSON.stringify(v)} is not a u64 (give a decimal string)`);
}

/** Copies the fields present in `obj` into `into`; absent fields are written as zero by the encoder. */
function fieldsFromJson(obj: Record<string, unknown>, fields: readonly FieldSpec[], into: Record<string, unknown>): void {
  for (const f of fields) {
    if (f.name in obj) into[f.name] = fieldValue(f, obj[f.name]);
  }
}

const names = (fields: readonly FieldSpec[]): string[] => fields.map((f) => f.name);

const fixed = (size: number) => (): Decoded<number> => ok(size);

// ---------------------------------------------------------------------------------------------
// Kinds built from codecs

function taggedKind<T extends object>(name: AbiKindName, description: string, codec: TaggedCodec<T>): AbiKind {
  const header = names(codec.header);
  return {
    name,
    description,
    packetSize: fixed(codec.size),
    decode: (b) => mapDecoded(codec.decode(b)),
    encode(json) {
      const obj = expectObject(json, name);
      requireKeys(obj, header, name);
      const value: Record<string, unknown> = {};
      fieldsFromJson(obj, codec.header, value);
      const layout = codec.payloads[value[codec.tag] as number];
      const allowed = [...header];
      if (layout) {
        allowed.push(...names(layout.fields));
        fieldsFromJson(obj, layout.fields, value);
      } else if (codec.opaque) {
        const { key, size } = codec.opaque;
        allowed.push(key);
        if (key in obj) {
          const h = typeof obj[key] === 'string' ? fromHex(obj[key]) : undefined;
          if (!h?.ok || h.value.length !== size) {
            throw new AbiError('range', `${key}: expected ${size} bytes as ${2 * size} hex digits`);
          }
          value[key] = h.value;
        }
      }
      checkKeys(obj, allowed, name);
      return codec.encode(value as T);
    },
  };
}

function structKind<T extends object>(name: AbiKindName, description: string, codec: StructCodec<T>): AbiKind {
  return {
    name,
    description,
    packetSize: fixed(codec.size),
    decode: (b) => mapDecoded(codec.decode(b)),
    encode(json) {
      const obj = expectObject(json, name);
      checkKeys(obj, names(codec.fields), name);
      const value: Record<string, unknown> = {};
      fieldsFromJson(obj, codec.fields, value);
      return codec.encode(value as T);
    },
  };
}

/** Payload bytes -> JSON strings, one code point per byte (latin1), split at every NUL. */
function payloadToJson(payload: Uint8Array): string[] {
  return splitAtNul(payload).map((p) => String.fromCharCode(...p));
}

function payloadFromJson(v: unknown): Uint8Array {
  if (!Array.isArray(v) || v.length === 0 || !v.every((s) => typeof s === 'string')) {
    throw new AbiError('malformed', 'payload: expected a non-empty array of strings (the payload split at NUL)');
  }
  const joined = v.join('\0');
  const out = new Uint8Array(joined.length);
  for (let i = 0; i < joined.length; i++) {
    const c = joined.charCodeAt(i);
    if (c > 0xff) {
      throw new AbiError('range', `payload: character U+${c.toString(16).padStart(4, '0')} is not a byte (0-255)`);
    }
    out[i] = c;
  }
  return out;
}

const xsmsgKind: AbiKind = {
  name: 'xsmsg',
  description: 'struct xsd_sockmsg (16 bytes) + len payload bytes',
  packetSize(bytes) {
    const h = decodeXsHeader(bytes);
    if (!h.ok) return h;
    if (h.value.len > XENSTORE_PAYLOAD_MAX) {
      return fail('too-large', `xsmsg: payload length ${h.value.len} exceeds XENSTORE_PAYLOAD_MAX ${XENSTORE_PAYLOAD_MAX}`);
    }
    return ok(XSD_SOCKMSG_SIZE + h.value.len);
  },
  decode(bytes) {
    const d = decodeXsMessage(bytes);
    if (!d.ok) return d;
    const m = d.value.message;
    return ok({ type: m.type, req_id: m.req_id, tx_id: m.tx_id, len: m.payload.length, payload: payloadToJson(m.payload) });
  },
  encode(json) {
    const obj = expectObject(json, 'xsmsg');
    checkKeys(obj, [...names(XSD_SOCKMSG_FIELDS), 'payload'], 'xsmsg');
    requireKeys(obj, ['type', 'payload'], 'xsmsg');
    const h: Record<string, unknown> = {};
    fieldsFromJson(obj, XSD_SOCKMSG_FIELDS, h);
    const payload = payloadFromJson(obj.payload);
    if ('len' in obj && obj.len !== payload.length) {
      throw new AbiError('range', `len: ${JSON.stringify(obj.len)} does not match the payload's ${payload.length} bytes`);
    }
    const field = (k: string): number => (h[k] ?? 0) as number;
    return encodeXsMessage({ type: field('type'), req_id: field('req_id'), tx_id: field('tx_id'), payload });
  },
};

const pgdirKind: AbiKind = {
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
    if (!Array.isArray(gref) || gref.length > PGDIR_GREFS_PER_PAGE || !gref.every((g) => typeof g === 'number')) {
      throw new AbiError('range', `gref: expected an array of at most ${PGDIR_GREFS_PER_PAGE} numbers`);
    }
    const next = 'gref_dir_next_page' in obj ? obj.gref_dir_next_page : 0;
    if (typeof next !== 'number') throw new AbiError('range', 'gref_dir_next_page: expected a number');
    return encodePageDirectory({ gref_dir_next_page: next, gref: gref });
  },
};

export const ABI_KINDS: Readonly<Record<AbiKindName, AbiKind>> = {
  req: taggedKind('req', 'struct xendispl_req (64 bytes)', REQ_CODEC),
  resp: taggedKind('resp', 'struct xendispl_resp (64 bytes)', RESP_CODEC),
  evt: taggedKind('evt', 'struct xendispl_evt (64 bytes)', EVT_CODEC),
  evtpage: structKind('evtpage', 'struct xendispl_event_page header (64 bytes)', EVENT_PAGE_HEADER_CODEC),
  sring: structKind('sring', 'shared ring header, struct xen_displif_sring (64 bytes)', SRING_HEADER_CODEC),
  gntentry: structKind('gntentry', 'struct grant_entry_v1 (8 bytes)', GRANT_ENTRY_V1_CODEC),
  xsmsg: xsmsgKind,
  pgdir: pgdirKind,
};

/**
 * displif v2 packets: `struct xendispl_req`, `struct xendispl_resp`, `struct xendispl_evt`
 * (64 bytes each) and the event page header `struct xendispl_event_page`.
 *
 * Objects use the C member names, so a decoded packet prints as the header would name it.
 * Cookies are u64 and therefore bigint. Encoders always write all 64 bytes, reserved bytes = 0.
 * Decoders never throw: a short buffer is an error result; non-zero reserved bytes are accepted
 * (Linux reuses dirty ring slots without clearing them) and reported as `reserved_nonzero`;
 * an operation or event type this protocol does not define decodes to an "unknown" packet that
 * carries the 56 raw union bytes.
 */
import { AbiError, bufferView, type Decoded, ok, outBase, short } from './bytes.js';
import {
  XENDISPL_EVT_PG_FLIP,
  XENDISPL_OP_DBUF_CREATE,
  XENDISPL_OP_DBUF_DESTROY,
  XENDISPL_OP_FB_ATTACH,
  XENDISPL_OP_FB_DETACH,
  XENDISPL_OP_GET_EDID,
  XENDISPL_OP_PG_FLIP,
  XENDISPL_OP_SET_CONFIG,
  XENDISPL_PACKET_SIZE,
} from './displif-constants.js';
import { type FieldSpec, readFields, reservedNonZero, reservedRanges, writeFields } from './fields.js';

const SIZE = XENDISPL_PACKET_SIZE;
/** Offset of the `op` union in requests, responses and events. */
export const XENDISPL_OP_UNION_OFFSET = 8;
export const XENDISPL_OP_UNION_SIZE = SIZE - XENDISPL_OP_UNION_OFFSET;

// ---------------------------------------------------------------------------------------------
// Types

export interface DbufCreateReq {
  readonly operation: typeof XENDISPL_OP_DBUF_CREATE;
  readonly id: number;
  readonly dbuf_cookie: bigint;
  readonly width: number;
  readonly height: number;
  readonly bpp: number;
  readonly buffer_sz: number;
  readonly flags: number;
  readonly gref_directory: number;
  readonly data_ofs: number;
}
export interface DbufDestroyReq {
  readonly operation: typeof XENDISPL_OP_DBUF_DESTROY;
  readonly id: number;
  readonly dbuf_cookie: bigint;
}
export interface FbAttachReq {
  readonly operation: typeof XENDISPL_OP_FB_ATTACH;
  readonly id: number;
  readonly dbuf_cookie: bigint;
  readonly fb_cookie: bigint;
  readonly width: number;
  readonly height: number;
  readonly pixel_format: number;
}
export interface FbDetachReq {
  readonly operation: typeof XENDISPL_OP_FB_DETACH;
  readonly id: number;
  readonly fb_cookie: bigint;
}
export interface SetConfigReq {
  readonly operation: typeof XENDISPL_OP_SET_CONFIG;
  readonly id: number;
  readonly fb_cookie: bigint;
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
  readonly bpp: number;
}
export interface PgFlipReq {
  readonly operation: typeof XENDISPL_OP_PG_FLIP;
  readonly id: number;
  readonly fb_cookie: bigint;
}
export interface GetEdidReq {
  readonly operation: typeof XENDISPL_OP_GET_EDID;
  readonly id: number;
  readonly buffer_sz: number;
  readonly gref_directory: number;
}
/** A request whose operation displif does not define; `op` holds the 56 raw union bytes. */
export interface UnknownReq {
  readonly unknown: true;
  readonly operation: number;
  readonly id: number;
  readonly op: Uint8Array;
}
export type KnownReq =
  | DbufCreateReq
  | DbufDestroyReq
  | FbAttachReq
  | FbDetachReq
  | SetConfigReq
  | PgFlipReq
  | GetEdidReq;
export type DisplReq = KnownReq | UnknownReq;

export interface DisplResp {
  readonly id: number;
  readonly operation: number;
  /** 0 on success, a negative Xen errno on failure. */
  readonly status: number;
  /** Only for GET_EDID responses. */
  readonly edid_sz?: number;
}

export interface PgFlipEvt {
  readonly type: typeof XENDISPL_EVT_PG_FLIP;
  readonly id: number;
  readonly fb_cookie: bigint;
}
export interface UnknownEvt {
  readonly unknown: true;
  readonly type: number;
  readonly id: number;
  readonly op: Uint8Array;
}
export type DisplEvt = PgFlipEvt | UnknownEvt;

export interface EventPageHeader {
  readonly in_cons: number;
  readonly in_prod: number;
}

/** Added by every decoder: whether a byte the header calls reserved was non-zero. */
export interface ReservedFlag {
  readonly reserved_nonzero: boolean;
}

export function isKnownReq(req: DisplReq): req is KnownReq {
  return !('unknown' in req);
}

// ---------------------------------------------------------------------------------------------
// Layouts (absolute offsets inside the 64-byte packet; checked against gcc's offsetof)

export interface PayloadLayout {
  /** C struct name of the union member's type, e.g. `xendispl_dbuf_create_req`. */
  readonly struct: string;
  /** Union member name, e.g. `dbuf_create`. */
  readonly member: string;
  /** sizeof the payload struct (padding included). */
  readonly size: number;
  readonly fields: readonly FieldSpec[];
}

const f = (name: string, offset: number, type: FieldSpec['type']): FieldSpec => ({ name, offset, type });

export const REQ_HEADER_FIELDS: readonly FieldSpec[] = [f('id', 0, 'u16'), f('operation', 2, 'u8')];

export const REQ_PAYLOADS: Readonly<Record<number, PayloadLayout>> = {
  [XENDISPL_OP_DBUF_CREATE]: {
    struct: 'xendispl_dbuf_create_req',
    member: 'dbuf_create',
    size: 40,
    fields: [
      f('dbuf_cookie', 8, 'u64'),
      f('width', 16, 'u32'),
      f('height', 20, 'u32'),
      f('bpp', 24, 'u32'),
      f('buffer_sz', 28, 'u32'),
      f('flags', 32, 'u32'),
      f('gref_directory', 36, 'u32'),
      f('data_ofs', 40, 'u32'),
    ],
  },
  [XENDISPL_OP_DBUF_DESTROY]: {
    struct: 'xendispl_dbuf_destroy_req',
    member: 'dbuf_destroy',
    size: 8,
    fields: [f('dbuf_cookie', 8, 'u64')],
  },
  [XENDISPL_OP_FB_ATTACH]: {
    struct: 'xendispl_fb_attach_req',
    member: 'fb_attach',
    size: 32,
    fields: [
      f('dbuf_cookie', 8, 'u64'),
      f('fb_cookie', 16, 'u64'),
      f('width', 24, 'u32'),
      f('height', 28, 'u32'),
      f('pixel_format', 32, 'u32'),
    ],
  },
  [XENDISPL_OP_FB_DETACH]: {
    struct: 'xendispl_fb_detach_req',
    member: 'fb_detach',
    size: 8,
    fields: [f('fb_cookie', 8, 'u64')],
  },
  [XENDISPL_OP_SET_CONFIG]: {
    struct: 'xendispl_set_config_req',
    member: 'set_config',
    size: 32,
    fields: [
      f('fb_cookie', 8, 'u64'),
      f('x', 16, 'u32'),
      f('y', 20, 'u32'),
      f('width', 24, 'u32'),
      f('height', 28, 'u32'),
      f('bpp', 32, 'u32'),
    ],
  },
  [XENDISPL_OP_PG_FLIP]: {
    struct: 'xendispl_page_flip_req',
    member: 'pg_flip',
    size: 8,
    fields: [f('fb_cookie', 8, 'u64')],
  },
  [XENDISPL_OP_GET_EDID]: {
    struct: 'xendispl_get_edid_req',
    member: 'get_edid',
    size: 8,
    fields: [f('buffer_sz', 8, 'u32'), f('gref_directory', 12, 'u32')],
  },
};

export const RESP_HEADER_FIELDS: readonly FieldSpec[] = [
  f('id', 0, 'u16'),
  f('operation', 2, 'u8'),
  f('status', 4, 's32'),
];
export const RESP_PAYLOADS: Readonly<Record<number, PayloadLayout>> = {
  [XENDISPL_OP_GET_EDID]: {
    struct: 'xendispl_get_edid_resp',
    member: 'get_edid',
    size: 4,
    fields: [f('edid_sz', 8, 'u32')],
  },
};

export const EVT_HEADER_FIELDS: readonly FieldSpec[] = [f('id', 0, 'u16'), f('type', 2, 'u8')];
export const EVT_PAYLOADS: Readonly<Record<number, PayloadLayout>> = {
  [XENDISPL_EVT_PG_FLIP]: {
    struct: 'xendispl_pg_flip_evt',
    member: 'pg_flip',
    size: 8,
    fields: [f('fb_cookie', 8, 'u64')],
  },
};

export const EVENT_PAGE_HEADER_FIELDS: readonly FieldSpec[] = [
  f('in_cons', 0, 'u32'),
  f('in_prod', 4, 'u32'),
];

// Reserved byte ranges, computed once per layout.
type Ranges = readonly (readonly [number, number])[];
const reqReserved = new Map<number, Ranges>();
const respReserved = new Map<number, Ranges>();
const evtReserved = new Map<number, Ranges>();
/** For packets without a known payload: header fields + the whole union (carried as `op`). */
const UNION_FIELD: readonly FieldSpec[] = Array.from({ length: XENDISPL_OP_UNION_SIZE / 8 }, (_, i) =>
  f(`op${i}`, XENDISPL_OP_UNION_OFFSET + 8 * i, 'u64'),
);
const REQ_UNKNOWN_RESERVED = reservedRanges(SIZE, REQ_HEADER_FIELDS, UNION_FIELD);
const RESP_PLAIN_RESERVED = reservedRanges(SIZE, RESP_HEADER_FIELDS);
const EVT_UNKNOWN_RESERVED = reservedRanges(SIZE, EVT_HEADER_FIELDS, UNION_FIELD);
const EVENT_PAGE_RESERVED = reservedRanges(SIZE, EVENT_PAGE_HEADER_FIELDS);
for (const [op, l] of Object.entries(REQ_PAYLOADS)) {
  reqReserved.set(Number(op), reservedRanges(SIZE, REQ_HEADER_FIELDS, l.fields));
}
for (const [op, l] of Object.entries(RESP_PAYLOADS)) {
  respReserved.set(Number(op), reservedRanges(SIZE, RESP_HEADER_FIELDS, l.fields));
}
for (const [t, l] of Object.entries(EVT_PAYLOADS)) {
  evtReserved.set(Number(t), reservedRanges(SIZE, EVT_HEADER_FIELDS, l.fields));
}

function unionBytes(bytes: Uint8Array): Uint8Array {
  return bytes.slice(XENDISPL_OP_UNION_OFFSET, SIZE);
}

function writeUnion(bytes: Uint8Array, offset: number, op: Uint8Array | undefined): void {
  if (op === undefined) return;
  if (!(op instanceof Uint8Array) || op.length !== XENDISPL_OP_UNION_SIZE) {
    throw new AbiError('range', `op: must be exactly ${XENDISPL_OP_UNION_SIZE} bytes`);
  }
  bytes.set(op, offset + XENDISPL_OP_UNION_OFFSET);
}

/** The output buffer, its view and the packet's absolute base, the 64 bytes zero-filled. */
function zeroed(
  out: Uint8Array | undefined,
  offset: number,
  what: string,
): { bytes: Uint8Array; view: DataView; base: number } {
  const bytes = out ?? new Uint8Array(SIZE);
  const base = outBase(bytes, offset, SIZE, what);
  bytes.fill(0, offset, offset + SIZE);
  return { bytes, view: bufferView(bytes), base };
}

// ---------------------------------------------------------------------------------------------
// Requests

export function decodeReq(bytes: Uint8Array): Decoded<DisplReq & ReservedFlag> {
  if (bytes.byteLength < SIZE) return short(bytes, SIZE, 'xendispl_req');
  const view = bufferView(bytes);
  const base = bytes.byteOffset;
  const out: Record<string, unknown> = {};
  readFields(view, base, REQ_HEADER_FIELDS, out);
  const operation = out.operation as number;
  const layout = REQ_PAYLOADS[operation];
  if (layout) {
    readFields(view, base, layout.fields, out);
    out.reserved_nonzero = reservedNonZero(bytes, reqReserved.get(operation)!);
  } else {
    out.unknown = true;
    out.op = unionBytes(bytes);
    out.reserved_nonzero = reservedNonZero(bytes, REQ_UNKNOWN_RESERVED);
  }
  return ok(out as unknown as DisplReq & ReservedFlag);
}

/** Writes all 64 bytes of a request (reserved = 0) into `out` at `offset`; returns `out`. */
export function encodeReq(req: DisplReq, out?: Uint8Array, offset = 0): Uint8Array {
  const { bytes, view, base } = zeroed(out, offset, 'xendispl_req');
  const src = req as unknown as Record<string, unknown>;
  writeFields(view, base, REQ_HEADER_FIELDS, src);
  const layout = REQ_PAYLOADS[req.operation];
  if (layout) writeFields(view, base, layout.fields, src);
  else writeUnion(bytes, offset, (req as UnknownReq).op);
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// Responses

export function decodeResp(bytes: Uint8Array): Decoded<DisplResp & ReservedFlag> {
  if (bytes.byteLength < SIZE) return short(bytes, SIZE, 'xendispl_resp');
  const view = bufferView(bytes);
  const base = bytes.byteOffset;
  const out: Record<string, unknown> = {};
  readFields(view, base, RESP_HEADER_FIELDS, out);
  const operation = out.operation as number;
  const layout = RESP_PAYLOADS[operation];
  if (layout) readFields(view, base, layout.fields, out);
  out.reserved_nonzero = reservedNonZero(bytes, respReserved.get(operation) ?? RESP_PLAIN_RESERVED);
  return ok(out as unknown as DisplResp & ReservedFlag);
}

/** Writes all 64 bytes of a response (the real backend zero-initialises it too). */
export function encodeResp(resp: DisplResp, out?: Uint8Array, offset = 0): Uint8Array {
  const { bytes, view, base } = zeroed(out, offset, 'xendispl_resp');
  const src = resp as unknown as Record<string, unknown>;
  writeFields(view, base, RESP_HEADER_FIELDS, src);
  const layout = RESP_PAYLOADS[resp.operation];
  if (layout) writeFields(view, base, layout.fields, src);
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// Events

export function decodeEvt(bytes: Uint8Array): Decoded<DisplEvt & ReservedFlag> {
  if (bytes.byteLength < SIZE) return short(bytes, SIZE, 'xendispl_evt');
  const view = bufferView(bytes);
  const base = bytes.byteOffset;
  const out: Record<string, unknown> = {};
  readFields(view, base, EVT_HEADER_FIELDS, out);
  const type = out.type as number;
  const layout = EVT_PAYLOADS[type];
  if (layout) {
    readFields(view, base, layout.fields, out);
    out.reserved_nonzero = reservedNonZero(bytes, evtReserved.get(type)!);
  } else {
    out.unknown = true;
    out.op = unionBytes(bytes);
    out.reserved_nonzero = reservedNonZero(bytes, EVT_UNKNOWN_RESERVED);
  }
  return ok(out as unknown as DisplEvt & ReservedFlag);
}

export function encodeEvt(evt: DisplEvt, out?: Uint8Array, offset = 0): Uint8Array {
  const { bytes, view, base } = zeroed(out, offset, 'xendispl_evt');
  const src = evt as unknown as Record<string, unknown>;
  writeFields(view, base, EVT_HEADER_FIELDS, src);
  const layout = EVT_PAYLOADS[evt.type];
  if (layout) writeFields(view, base, layout.fields, src);
  else writeUnion(bytes, offset, (evt as UnknownEvt).op);
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// Event page header (a snapshot of the 64-byte header; live access is in ring/event-page.ts)

export function decodeEventPageHeader(bytes: Uint8Array): Decoded<EventPageHeader & ReservedFlag> {
  if (bytes.byteLength < SIZE) return short(bytes, SIZE, 'xendispl_event_page');
  const out: Record<string, unknown> = {};
  readFields(bufferView(bytes), bytes.byteOffset, EVENT_PAGE_HEADER_FIELDS, out);
  out.reserved_nonzero = reservedNonZero(bytes, EVENT_PAGE_RESERVED);
  return ok(out as unknown as EventPageHeader & ReservedFlag);
}

export function encodeEventPageHeader(h: EventPageHeader, out?: Uint8Array, offset = 0): Uint8Array {
  const { bytes, view, base } = zeroed(out, offset, 'xendispl_event_page');
  writeFields(view, base, EVENT_PAGE_HEADER_FIELDS, h as unknown as Record<string, unknown>);
  return bytes;
}

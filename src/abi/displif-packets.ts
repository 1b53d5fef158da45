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
import type { Decoded } from './bytes.js';
import { type PayloadLayout, type ReservedFlag, StructCodec, TaggedCodec } from './codec.js';
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
import type { FieldSpec } from './fields.js';

export type { PayloadLayout, ReservedFlag } from './codec.js';

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

export function isKnownReq(req: DisplReq): req is KnownReq {
  return !('unknown' in req);
}

// ---------------------------------------------------------------------------------------------
// Layouts (absolute offsets inside the 64-byte packet; checked against gcc's offsetof)

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

// ---------------------------------------------------------------------------------------------
// Codecs

const OPAQUE_UNION = { key: 'op', offset: XENDISPL_OP_UNION_OFFSET, size: XENDISPL_OP_UNION_SIZE } as const;

export const REQ_CODEC = new TaggedCodec<DisplReq>(
  'xendispl_req',
  SIZE,
  REQ_HEADER_FIELDS,
  'operation',
  REQ_PAYLOADS,
  OPAQUE_UNION,
);
export const RESP_CODEC = new TaggedCodec<DisplResp>('xendispl_resp', SIZE, RESP_HEADER_FIELDS, 'operation', RESP_PAYLOADS);
export const EVT_CODEC = new TaggedCodec<DisplEvt>('xendispl_evt', SIZE, EVT_HEADER_FIELDS, 'type', EVT_PAYLOADS, OPAQUE_UNION);
/** A snapshot of the 64-byte event page header; live access is in ring/event-page.ts. */
export const EVENT_PAGE_HEADER_CODEC = new StructCodec<EventPageHeader>('xendispl_event_page', SIZE, EVENT_PAGE_HEADER_FIELDS);

export function decodeReq(bytes: Uint8Array): Decoded<DisplReq & ReservedFlag> {
  return REQ_CODEC.decode(bytes);
}

/** Writes all 64 bytes of a request (reserved = 0) into `out` at `offset`; returns `out`. */
export function encodeReq(req: DisplReq, out?: Uint8Array, offset = 0): Uint8Array {
  return REQ_CODEC.encode(req, out, offset);
}

export function decodeResp(bytes: Uint8Array): Decoded<DisplResp & ReservedFlag> {
  return RESP_CODEC.decode(bytes);
}

/** Writes all 64 bytes of a response (the real backend zero-initialises it too). */
export function encodeResp(resp: DisplResp, out?: Uint8Array, offset = 0): Uint8Array {
  return RESP_CODEC.encode(resp, out, offset);
}

export function decodeEvt(bytes: Uint8Array): Decoded<DisplEvt & ReservedFlag> {
  return EVT_CODEC.decode(bytes);
}

export function encodeEvt(evt: DisplEvt, out?: Uint8Array, offset = 0): Uint8Array {
  return EVT_CODEC.encode(evt, out, offset);
}

export function decodeEventPageHeader(bytes: Uint8Array): Decoded<EventPageHeader & ReservedFlag> {
  return EVENT_PAGE_HEADER_CODEC.decode(bytes) as Decoded<EventPageHeader & ReservedFlag>;
}

export function encodeEventPageHeader(h: EventPageHeader, out?: Uint8Array, offset = 0): Uint8Array {
  return EVENT_PAGE_HEADER_CODEC.encode(h, out, offset);
}

/**
 * Constants of Xen's para-virtual display protocol, `xen/include/public/io/displif.h`
 * (protocol version 2). Values are checked against the real header by the conformance fixtures.
 */

export const XENDISPL_PROTOCOL_VERSION = '2';
export const XENDISPL_PROTOCOL_VERSION_INT = 2;

/** XenBus device type. */
export const XENDISPL_DRIVER_NAME = 'vdispl';
export const XENDISPL_LIST_SEPARATOR = ',';
export const XENDISPL_RESOLUTION_SEPARATOR = 'x';

/** Request operations. Codes 0x00..0x0f are reserved and must not be used. */
export const XENDISPL_OP_DBUF_CREATE = 0x10;
export const XENDISPL_OP_DBUF_DESTROY = 0x11;
export const XENDISPL_OP_FB_ATTACH = 0x12;
export const XENDISPL_OP_FB_DETACH = 0x13;
export const XENDISPL_OP_SET_CONFIG = 0x14;
export const XENDISPL_OP_PG_FLIP = 0x15;
/** Protocol v2 and later; optional for backends. */
export const XENDISPL_OP_GET_EDID = 0x16;

/** Event types (back to front, on the event page). */
export const XENDISPL_EVT_PG_FLIP = 0x00;

/** DBUF_CREATE flag: the backend allocates the buffer. The only defined flag. */
export const XENDISPL_DBUF_FLG_REQ_ALLOC = 1 << 0;

export const XENDISPL_FIELD_BE_VERSIONS = 'versions';
export const XENDISPL_FIELD_FE_VERSION = 'version';
export const XENDISPL_FIELD_REQ_RING_REF = 'req-ring-ref';
export const XENDISPL_FIELD_REQ_CHANNEL = 'req-event-channel';
export const XENDISPL_FIELD_EVT_RING_REF = 'evt-ring-ref';
export const XENDISPL_FIELD_EVT_CHANNEL = 'evt-event-channel';
export const XENDISPL_FIELD_RESOLUTION = 'resolution';
export const XENDISPL_FIELD_BE_ALLOC = 'be-alloc';
export const XENDISPL_FIELD_UNIQUE_ID = 'unique-id';

export const XENDISPL_EDID_BLOCK_SIZE = 128;
export const XENDISPL_EDID_BLOCK_COUNT = 256;
export const XENDISPL_EDID_MAX_SIZE = XENDISPL_EDID_BLOCK_SIZE * XENDISPL_EDID_BLOCK_COUNT;

/** Every request, response and event is exactly this many bytes. */
export const XENDISPL_PACKET_SIZE = 64;

/** The event page: a 64-byte header (in_cons, in_prod) followed by 63 event slots. */
export const XENDISPL_EVENT_PAGE_SIZE = 4096;
export const XENDISPL_IN_RING_OFFS = 64;
export const XENDISPL_IN_RING_SIZE = XENDISPL_EVENT_PAGE_SIZE - XENDISPL_IN_RING_OFFS;
/** 63: not a power of two, so event slots are indexed modulo 63. */
export const XENDISPL_IN_RING_LEN = XENDISPL_IN_RING_SIZE / XENDISPL_PACKET_SIZE;

/** Byte offset of event index `idx` (u32, free-running) inside the event page. */
export function xendisplInRingRef(idx: number): number {
  return XENDISPL_IN_RING_OFFS + XENDISPL_PACKET_SIZE * ((idx >>> 0) % XENDISPL_IN_RING_LEN);
}

export const DISPLIF_OPERATION_NAMES: Readonly<Record<number, string>> = {
  [XENDISPL_OP_DBUF_CREATE]: 'DBUF_CREATE',
  [XENDISPL_OP_DBUF_DESTROY]: 'DBUF_DESTROY',
  [XENDISPL_OP_FB_ATTACH]: 'FB_ATTACH',
  [XENDISPL_OP_FB_DETACH]: 'FB_DETACH',
  [XENDISPL_OP_SET_CONFIG]: 'SET_CONFIG',
  [XENDISPL_OP_PG_FLIP]: 'PG_FLIP',
  [XENDISPL_OP_GET_EDID]: 'GET_EDID',
};

/**
 * A connector's `resolution` node, "<width>x<height>" in decimal, each 1..max; undefined for
 * anything else (Linux parses "%d" "x" "%d"; vdispl is strict).
 */
export function parseResolution(text: string | undefined, max: number): { width: number; height: number } | undefined {
  const m = text !== undefined ? /^(\d{1,5})x(\d{1,5})$/.exec(text) : null;
  if (!m) return undefined;
  const width = Number(m[1]);
  const height = Number(m[2]);
  if (width < 1 || height < 1 || width > max || height > max) return undefined;
  return { width, height };
}

/** The `be-alloc` node: any non-zero unsigned number means backend-allocated buffers (as Linux reads it). */
export function parseBeAlloc(text: string | undefined): boolean {
  return text !== undefined && /^\d+$/.test(text) && Number(text) !== 0;
}

/**
 * The shared ring page of `xen/include/public/io/ring.h` (`DEFINE_RING_TYPES`): a 64-byte header
 * (req_prod, req_event, rsp_prod, rsp_event, a 4-byte pvt union, 44 pad bytes) followed by a
 * power-of-two number of entries. Layout and size arithmetic only; the live ring with its
 * macros is in `ring/shared-ring.ts`.
 */
import { AbiError, type Decoded } from './bytes.js';
import { type ReservedFlag, StructCodec } from './codec.js';
import type { FieldSpec } from './fields.js';

/** `typedef unsigned int RING_IDX`: free-running u32 indices. */
export type RingIdx = number;

export const SRING_HEADER_SIZE = 64;
export const SRING_REQ_PROD = 0;
export const SRING_REQ_EVENT = 4;
export const SRING_RSP_PROD = 8;
export const SRING_RSP_EVENT = 12;
export const SRING_PVT = 16;
export const SRING_PAD = 20;

export const SRING_HEADER_FIELDS: readonly FieldSpec[] = [
  { name: 'req_prod', offset: SRING_REQ_PROD, type: 'u32' },
  { name: 'req_event', offset: SRING_REQ_EVENT, type: 'u32' },
  { name: 'rsp_prod', offset: SRING_RSP_PROD, type: 'u32' },
  { name: 'rsp_event', offset: SRING_RSP_EVENT, type: 'u32' },
];

export interface SringHeader {
  readonly req_prod: RingIdx;
  readonly req_event: RingIdx;
  readonly rsp_prod: RingIdx;
  readonly rsp_event: RingIdx;
}

/** `__RD32`: rounds a 32-bit unsigned value down to a power of two (0 stays 0). */
export function roundDownPow2(x: number): number {
  const v = x >>> 0;
  return v === 0 ? 0 : 2 ** Math.floor(Math.log2(v));
}

/**
 * `__RING_SIZE` / `__CONST_RING_SIZE`: entries of `entrySize` bytes that fit after the 64-byte
 * header in `pageSize` bytes, rounded down to a power of two. 32 for displif on a 4 KiB page.
 */
export function ringSize(entrySize: number, pageSize = 4096): number {
  if (!Number.isInteger(entrySize) || entrySize <= 0) throw new AbiError('range', `entry size ${entrySize}`);
  if (!Number.isInteger(pageSize) || pageSize <= SRING_HEADER_SIZE)
    throw new AbiError('range', `page size ${pageSize}`);
  return roundDownPow2(Math.floor((pageSize - SRING_HEADER_SIZE) / entrySize));
}

/** A snapshot of the 64-byte header; `reserved_nonzero` covers pvt and __pad. */
export const SRING_HEADER_CODEC = new StructCodec<SringHeader>('sring', SRING_HEADER_SIZE, SRING_HEADER_FIELDS);

export function decodeSringHeader(bytes: Uint8Array): Decoded<SringHeader & ReservedFlag> {
  return SRING_HEADER_CODEC.decode(bytes) as Decoded<SringHeader & ReservedFlag>;
}

export function encodeSringHeader(h: SringHeader, out?: Uint8Array, offset = 0): Uint8Array {
  return SRING_HEADER_CODEC.encode(h, out, offset);
}

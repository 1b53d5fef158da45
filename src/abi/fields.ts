/**
 * Table-driven little-endian field access for fixed C layouts. Each ABI structure is described
 * once as a list of fields (name = the C member name, offset, C type); decoders, encoders, the
 * reserved-byte check and the layout conformance test all use that one description.
 */
import { AbiError, checkS32, checkU8, checkU16, checkU32, checkU64 } from './bytes.js';

export type FieldType = 'u8' | 'u16' | 'u32' | 's32' | 'u64';

export interface FieldSpec {
  readonly name: string;
  /** Absolute byte offset inside the packet or page. */
  readonly offset: number;
  readonly type: FieldType;
}

export const FIELD_SIZE: Readonly<Record<FieldType, number>> = { u8: 1, u16: 2, u32: 4, s32: 4, u64: 8 };

export function readField(view: DataView, f: FieldSpec): number | bigint {
  switch (f.type) {
    case 'u8':
      return view.getUint8(f.offset);
    case 'u16':
      return view.getUint16(f.offset, true);
    case 'u32':
      return view.getUint32(f.offset, true);
    case 's32':
      return view.getInt32(f.offset, true);
    case 'u64':
      return view.getBigUint64(f.offset, true);
  }
}

/** Writes one field after checking that the value fits its C type (throws AbiError 'range'). */
export function writeField(view: DataView, f: FieldSpec, value: unknown): void {
  if (f.type === 'u64') {
    view.setBigUint64(f.offset, checkU64(value as bigint, f.name), true);
    return;
  }
  if (typeof value !== 'number') {
    throw new AbiError('range', `${f.name}: expected a number, got ${typeof value}`);
  }
  switch (f.type) {
    case 'u8':
      view.setUint8(f.offset, checkU8(value, f.name));
      return;
    case 'u16':
      view.setUint16(f.offset, checkU16(value, f.name), true);
      return;
    case 'u32':
      view.setUint32(f.offset, checkU32(value, f.name), true);
      return;
    case 's32':
      view.setInt32(f.offset, checkS32(value, f.name), true);
      return;
  }
}

/** Reads every field into a plain object keyed by C member name. */
export function readFields(
  view: DataView,
  fields: readonly FieldSpec[],
  into: Record<string, unknown>,
): void {
  for (const f of fields) into[f.name] = readField(view, f);
}

/** Writes every field from `src`; a missing field is written as zero. */
export function writeFields(
  view: DataView,
  fields: readonly FieldSpec[],
  src: Readonly<Record<string, unknown>>,
): void {
  for (const f of fields) {
    const v = src[f.name];
    writeField(view, f, v === undefined ? (f.type === 'u64' ? 0n : 0) : v);
  }
}

/**
 * A byte mask of the bytes covered by named fields in [0, size): every other byte is reserved
 * (explicit `reserved` arrays and compiler padding alike).
 */
export function coverage(size: number, ...fieldLists: readonly (readonly FieldSpec[])[]): Uint8Array {
  const mask = new Uint8Array(size);
  for (const list of fieldLists) {
    for (const f of list) mask.fill(1, f.offset, f.offset + FIELD_SIZE[f.type]);
  }
  return mask;
}

/** True if any byte not covered by `mask` is non-zero, within [from, to). */
export function reservedNonZero(view: DataView, mask: Uint8Array, from = 0, to = mask.length): boolean {
  for (let i = from; i < to; i++) {
    if (mask[i] === 0 && view.getUint8(i) !== 0) return true;
  }
  return false;
}

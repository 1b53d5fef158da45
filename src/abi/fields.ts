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

/** Reads field `f` of the structure that starts at byte `base` of `view`. */
export function readField(view: DataView, base: number, f: FieldSpec): number | bigint {
  const o = base + f.offset;
  switch (f.type) {
    case 'u8':
      return view.getUint8(o);
    case 'u16':
      return view.getUint16(o, true);
    case 'u32':
      return view.getUint32(o, true);
    case 's32':
      return view.getInt32(o, true);
    case 'u64':
      return view.getBigUint64(o, true);
  }
}

/** Writes one field after checking that the value fits its C type (throws AbiError 'range'). */
export function writeField(view: DataView, base: number, f: FieldSpec, value: unknown): void {
  const o = base + f.offset;
  if (f.type === 'u64') {
    view.setBigUint64(o, checkU64(value as bigint, f.name), true);
    return;
  }
  if (typeof value !== 'number') {
    throw new AbiError('range', `${f.name}: expected a number, got ${typeof value}`);
  }
  switch (f.type) {
    case 'u8':
      view.setUint8(o, checkU8(value, f.name));
      return;
    case 'u16':
      view.setUint16(o, checkU16(value, f.name), true);
      return;
    case 'u32':
      view.setUint32(o, checkU32(value, f.name), true);
      return;
    case 's32':
      view.setInt32(o, checkS32(value, f.name), true);
      return;
  }
}

/** Reads every field into a plain object keyed by C member name. */
export function readFields(
  view: DataView,
  base: number,
  fields: readonly FieldSpec[],
  into: Record<string, unknown>,
): void {
  for (const f of fields) into[f.name] = readField(view, base, f);
}

/** Writes every field from `src`; a missing field is written as zero. */
export function writeFields(
  view: DataView,
  base: number,
  fields: readonly FieldSpec[],
  src: Readonly<Record<string, unknown>>,
): void {
  for (const f of fields) {
    const v = src[f.name];
    writeField(view, base, f, v === undefined ? (f.type === 'u64' ? 0n : 0) : v);
  }
}

/**
 * The reserved byte ranges [from, to) of a structure of `size` bytes: every byte not covered by
 * a named field (explicit `reserved` arrays and compiler padding alike).
 */
export function reservedRanges(
  size: number,
  ...fieldLists: readonly (readonly FieldSpec[])[]
): [number, number][] {
  const covered = new Uint8Array(size);
  for (const list of fieldLists) {
    for (const f of list) covered.fill(1, f.offset, f.offset + FIELD_SIZE[f.type]);
  }
  const ranges: [number, number][] = [];
  for (let i = 0; i < size; i++) {
    if (covered[i]) continue;
    const from = i;
    while (i < size && !covered[i]) i++;
    ranges.push([from, i]);
  }
  return ranges;
}

/** True if any byte in the reserved `ranges` of `bytes` is non-zero. */
export function reservedNonZero(bytes: Uint8Array, ranges: readonly (readonly [number, number])[]): boolean {
  for (const [from, to] of ranges) {
    for (let i = from; i < to; i++) {
      if (bytes[i] !== 0) return true;
    }
  }
  return false;
}

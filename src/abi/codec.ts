/**
 * Generic codecs over field tables: a fixed structure (`StructCodec`), and a packet whose
 * payload depends on a tag in its header (`TaggedCodec`: displif requests by `operation`,
 * events by `type`, responses by `operation`). Every concrete ABI codec is one of these built
 * from its layout, so decoding, encoding, the reserved-byte check and the JSON form all read
 * the same description.
 *
 * Decoders never throw and read only the structure's bytes. Encoders build the whole structure
 * (reserved bytes = 0) in a scratch buffer and copy it to the destination in one step, so a value
 * out of range (AbiError) leaves the destination untouched.
 */
import { AbiError, bufferView, type Decoded, ok, outBase, short } from './bytes.js';
import { type FieldSpec, readFields, reservedNonZero, reservedRanges, writeFields } from './fields.js';

type Ranges = readonly (readonly [number, number])[];

/** Added by decoders of structures with reserved bytes: whether any of them was non-zero. */
export interface ReservedFlag {
  readonly reserved_nonzero: boolean;
}

/** A fixed structure of `size` bytes. `reserved_nonzero` is reported if it has reserved bytes. */
export class StructCodec<T extends object> {
  readonly reserved: Ranges;
  private readonly scratch: Uint8Array;

  constructor(
    readonly name: string,
    readonly size: number,
    readonly fields: readonly FieldSpec[],
  ) {
    this.reserved = reservedRanges(size, fields);
    this.scratch = new Uint8Array(size);
  }

  decode(bytes: Uint8Array): Decoded<T & Partial<ReservedFlag>> {
    if (bytes.byteLength < this.size) return short(bytes, this.size, this.name);
    const out: Record<string, unknown> = {};
    readFields(bufferView(bytes), bytes.byteOffset, this.fields, out);
    if (this.reserved.length > 0) out.reserved_nonzero = reservedNonZero(bytes, this.reserved);
    return ok(out as T & Partial<ReservedFlag>);
  }

  /** Writes all `size` bytes of `value` into `out` at `offset` (a new buffer if none); returns the buffer. */
  encode(value: T, out?: Uint8Array, offset = 0): Uint8Array {
    if (out) outBase(out, offset, this.size, this.name);
    this.scratch.fill(0);
    writeFields(bufferView(this.scratch), this.scratch.byteOffset, this.fields, value as Record<string, unknown>);
    return place(this.scratch, out, offset);
  }
}

/** Copies a finished structure to `out` at `offset`, or returns a copy of it. */
function place(scratch: Uint8Array, out: Uint8Array | undefined, offset: number): Uint8Array {
  if (!out) return scratch.slice();
  out.set(scratch, offset);
  return out;
}

/** The payload of one tag value: a member of the C union. */
export interface PayloadLayout {
  /** C struct name of the union member's type, e.g. `xendispl_dbuf_create_req`. */
  readonly struct: string;
  /** Union member name, e.g. `dbuf_create`. */
  readonly member: string;
  /** sizeof the payload struct (padding included). */
  readonly size: number;
  /** Fields at absolute offsets inside the packet. */
  readonly fields: readonly FieldSpec[];
}

/** Where a packet with an unknown tag keeps its raw union bytes, and under which key. */
export interface OpaqueUnion {
  readonly key: string;
  readonly offset: number;
  readonly size: number;
}

/**
 * A packet of `size` bytes: header fields, a tag among them, and a payload chosen by the tag.
 * With an `opaque` union, a tag that has no payload layout decodes to `{ unknown: true, <key>:
 * raw union bytes }` and those bytes are not reserved; without one, they are reserved.
 */
export class TaggedCodec<T extends object> {
  readonly reservedByTag = new Map<number, Ranges>();
  readonly reservedUnknown: Ranges;
  private readonly scratch: Uint8Array;

  constructor(
    readonly name: string,
    readonly size: number,
    readonly header: readonly FieldSpec[],
    readonly tag: string,
    readonly payloads: Readonly<Record<number, PayloadLayout>>,
    readonly opaque?: OpaqueUnion,
  ) {
    for (const [t, l] of Object.entries(payloads)) {
      this.reservedByTag.set(Number(t), reservedRanges(size, header, l.fields));
    }
    const opaqueCover: FieldSpec[] = [];
    if (opaque) {
      for (let o = opaque.offset; o < opaque.offset + opaque.size; o++) opaqueCover.push({ name: '', offset: o, type: 'u8' });
    }
    this.reservedUnknown = reservedRanges(size, header, opaqueCover);
    this.scratch = new Uint8Array(size);
  }

  decode(bytes: Uint8Array): Decoded<T & ReservedFlag> {
    if (bytes.byteLength < this.size) return short(bytes, this.size, this.name);
    const view = bufferView(bytes);
    const base = bytes.byteOffset;
    const out: Record<string, unknown> = {};
    readFields(view, base, this.header, out);
    const tag = out[this.tag] as number;
    const layout = this.payloads[tag];
    if (layout) {
      readFields(view, base, layout.fields, out);
      out.reserved_nonzero = reservedNonZero(bytes, this.reservedByTag.get(tag)!);
    } else {
      if (this.opaque) {
        out.unknown = true;
        out[this.opaque.key] = bytes.slice(this.opaque.offset, this.opaque.offset + this.opaque.size);
      }
      out.reserved_nonzero = reservedNonZero(bytes, this.reservedUnknown);
    }
    return ok(out as T & ReservedFlag);
  }

  /** Writes all `size` bytes (reserved = 0) into `out` at `offset` (a new buffer if none). */
  encode(value: T, out?: Uint8Array, offset = 0): Uint8Array {
    if (out) outBase(out, offset, this.size, this.name);
    const src = value as Record<string, unknown>;
    const s = this.scratch;
    s.fill(0);
    const view = bufferView(s);
    writeFields(view, s.byteOffset, this.header, src);
    const layout = this.payloads[src[this.tag] as number];
    if (layout) writeFields(view, s.byteOffset, layout.fields, src);
    else if (this.opaque) {
      const raw = this.opaqueBytes(src[this.opaque.key]);
      if (raw) s.set(raw, this.opaque.offset);
    }
    return place(s, out, offset);
  }

  private opaqueBytes(v: unknown): Uint8Array | undefined {
    if (v === undefined) return undefined;
    if (!(v instanceof Uint8Array) || v.length !== this.opaque!.size) {
      throw new AbiError('range', `${this.opaque!.key}: must be exactly ${this.opaque!.size} bytes`);
    }
    return v;
  }
}

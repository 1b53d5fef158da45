/**
 * The byte rings of `struct xenstore_domain_interface`: a guest writes requests into `req`
 * (1024 bytes) and reads replies and watch events from `rsp` (1024 bytes); byte x of each stream
 * lives at x mod 1024 and the u32 indices run freely (docs/misc/xenstore-ring.txt). The guest
 * produces req and consumes rsp; xenstored does the opposite.
 *
 * Indices are accessed with Atomics. A producer/consumer pair whose distance exceeds the ring
 * size is corrupt (XENSTORE_ERROR_RINGIDX): reads and writes then report an error instead of
 * touching memory.
 */
import { type Decoded, fail, ok } from '../abi/bytes.js';
import type { RingIdx } from '../abi/ring-layout.js';
import { XENSTORE_RING_SIZE, XS_IFACE_FIELDS, XS_IFACE_RSP_OFFSET, XS_IFACE_SIZE } from '../abi/xs-wire.js';
import { sharedPage } from './shared-page.js';
import { idxSub } from './shared-ring.js';

const WORD = Object.fromEntries(XS_IFACE_FIELDS.map((f) => [f.name, f.offset / 4])) as Record<string, number>;

export type XsRingField =
  | 'req_cons'
  | 'req_prod'
  | 'rsp_cons'
  | 'rsp_prod'
  | 'server_features'
  | 'connection'
  | 'error';

/** Which stream: requests (guest -> xenstored) or responses (xenstored -> guest). */
export type XsStream = 'req' | 'rsp';

export class XsRingPage {
  readonly page: Uint8Array;
  private readonly words: Uint32Array;

  constructor(view: Uint8Array, offset = 0) {
    ({ page: this.page, words: this.words } = sharedPage(view, offset, XS_IFACE_SIZE, XS_IFACE_SIZE / 4, 'xenstore ring'));
  }

  get(field: XsRingField): number {
    return Atomics.load(this.words, WORD[field]!);
  }

  set(field: XsRingField, value: number): void {
    Atomics.store(this.words, WORD[field]!, value >>> 0);
  }

  private indices(stream: XsStream): Decoded<{ cons: RingIdx; prod: RingIdx }> {
    const cons = this.get(stream === 'req' ? 'req_cons' : 'rsp_cons');
    const prod = this.get(stream === 'req' ? 'req_prod' : 'rsp_prod');
    if (idxSub(prod, cons) > XENSTORE_RING_SIZE) {
      return fail(
        'malformed',
        `xenstore ring: ${stream}_prod ${prod} is ${idxSub(prod, cons)} bytes past ${stream}_cons ${cons}`,
      );
    }
    return ok({ cons, prod });
  }

  /** Bytes waiting to be read from `stream`. */
  readable(stream: XsStream): Decoded<number> {
    const i = this.indices(stream);
    return i.ok ? ok(idxSub(i.value.prod, i.value.cons)) : i;
  }

  /** Bytes that can be written to `stream` now. */
  writable(stream: XsStream): Decoded<number> {
    const i = this.indices(stream);
    return i.ok ? ok(XENSTORE_RING_SIZE - idxSub(i.value.prod, i.value.cons)) : i;
  }

  /**
   * Writes as much of `data` as fits into `stream` and publishes the producer index. Returns the
   * number of bytes written (0 when the ring is full).
   */
  write(stream: XsStream, data: Uint8Array): Decoded<number> {
    const i = this.indices(stream);
    if (!i.ok) return i;
    const { cons, prod } = i.value;
    const n = Math.min(data.length, XENSTORE_RING_SIZE - idxSub(prod, cons));
    const base = stream === 'req' ? 0 : XS_IFACE_RSP_OFFSET;
    for (let k = 0; k < n; ) {
      const at = (prod + k) & (XENSTORE_RING_SIZE - 1);
      const run = Math.min(n - k, XENSTORE_RING_SIZE - at);
      this.page.set(data.subarray(k, k + run), base + at);
      k += run;
    }
    if (n > 0) this.set(stream === 'req' ? 'req_prod' : 'rsp_prod', prod + n);
    return ok(n);
  }

  /** Reads up to `dst.length` bytes from `stream` into `dst` and publishes the consumer index. */
  read(stream: XsStream, dst: Uint8Array): Decoded<number> {
    const i = this.indices(stream);
    if (!i.ok) return i;
    const { cons, prod } = i.value;
    const n = Math.min(dst.length, idxSub(prod, cons));
    const base = stream === 'req' ? 0 : XS_IFACE_RSP_OFFSET;
    for (let k = 0; k < n; ) {
      const at = (cons + k) & (XENSTORE_RING_SIZE - 1);
      const run = Math.min(n - k, XENSTORE_RING_SIZE - at);
      dst.set(this.page.subarray(base + at, base + at + run), k);
      k += run;
    }
    if (n > 0) this.set(stream === 'req' ? 'req_cons' : 'rsp_cons', cons + n);
    return ok(n);
  }
}

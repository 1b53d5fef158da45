/**
 * A byte stream over the xenstore ring page (`struct xenstore_domain_interface`) and an event
 * channel, usable from either end: the guest produces `req` and consumes `rsp`, xenstored the
 * reverse. Output that does not fit waits in a queue until the peer consumes; input is read only
 * while `canRead()` allows (xenstored's outstanding-request limit). The peer is notified only
 * when it may be asleep waiting, as Linux's xb_write/xb_read decide: after producing into a ring
 * the peer had drained, and after consuming from a ring the peer had filled (each side publishes
 * its index before re-reading the other's, so one of them always sees the other's update). A
 * corrupt index pair stops the stream with an error.
 */
import { XENSTORE_RING_SIZE } from '../abi/xs-wire.js';
import { idxSub } from '../ring/shared-ring.js';
import type { XsStream } from '../ring/xs-ring.js';
import { XsRingPage } from '../ring/xs-ring.js';

export interface RingStreamOptions {
  readonly page: Uint8Array;
  readonly produce: XsStream;
  readonly notify: () => void;
  readonly onData: (chunk: Uint8Array) => void;
  readonly onError: (message: string) => void;
  readonly canRead?: () => boolean;
}

export class RingStream {
  readonly ring: XsRingPage;
  private readonly consume: XsStream;
  private readonly queue: Uint8Array[] = [];
  private readonly scratch = new Uint8Array(1024);
  private failed = false;

  private readonly prodField: 'req_prod' | 'rsp_prod';
  private readonly peerConsField: 'req_cons' | 'rsp_cons';
  private readonly consField: 'req_cons' | 'rsp_cons';
  private readonly peerProdField: 'req_prod' | 'rsp_prod';

  constructor(private readonly opts: RingStreamOptions) {
    this.ring = new XsRingPage(opts.page);
    this.consume = opts.produce === 'req' ? 'rsp' : 'req';
    this.prodField = `${opts.produce}_prod`;
    this.peerConsField = `${opts.produce}_cons`;
    this.consField = `${this.consume}_cons`;
    this.peerProdField = `${this.consume}_prod`;
  }

  /** Messages (write calls) not yet fully in the ring. */
  get queuedMessages(): number {
    return this.queue.length;
  }

  get broken(): boolean {
    return this.failed;
  }

  write(bytes: Uint8Array): void {
    if (this.failed) return;
    this.queue.push(bytes);
    if (this.flush()) this.opts.notify();
  }

  /** Reads once into the scratch buffer; -1 on a broken ring. Sets `wake` if the peer may wait for room. */
  private readOnce(): number {
    const before = this.ring.get(this.consField);
    const r = this.ring.read(this.consume, this.scratch);
    if (!r.ok) {
      this.fail(r.error.message);
      return -1;
    }
    // The peer filled the ring relative to what we had consumed: it may be waiting for room.
    if (r.value > 0 && idxSub(this.ring.get(this.peerProdField), before) >= XENSTORE_RING_SIZE) this.wake = true;
    return r.value;
  }

  private wake = false;

  /** The peer signalled: move what can move in both directions. */
  kick(): void {
    if (this.failed) return;
    let wake = this.flush();
    while (!this.failed && (this.opts.canRead?.() ?? true)) {
      const n = this.readOnce();
      if (n <= 0) break;
      this.opts.onData(this.scratch.slice(0, n));
      wake = this.flush() || wake;
    }
    wake ||= this.wake;
    this.wake = false;
    if (wake && !this.failed) this.opts.notify();
  }

  /** Writes queued output into the ring; true if the peer may be asleep on an empty ring and must be told. */
  private flush(): boolean {
    let wake = false;
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const before = this.ring.get(this.prodField);
      const r = this.ring.write(this.opts.produce, head);
      if (!r.ok) {
        this.fail(r.error.message);
        return wake;
      }
      if (r.value === 0) break;
      // The peer had consumed everything before this write: it may be asleep.
      if (this.ring.get(this.peerConsField) === before) wake = true;
      if (r.value === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(r.value);
    }
    return wake;
  }

  private fail(message: string): void {
    if (this.failed) return;
    this.failed = true;
    this.queue.length = 0;
    this.opts.onError(message);
  }
}

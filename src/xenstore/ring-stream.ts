/**
 * A byte stream over the xenstore ring page (`struct xenstore_domain_interface`) and an event
 * channel, usable from either end: the guest produces `req` and consumes `rsp`, xenstored the
 * reverse. Output that does not fit waits in a queue until the peer consumes; input is read only
 * while `canRead()` allows (xenstored's outstanding-request limit). The peer is notified whenever
 * this end produced or consumed bytes. A corrupt index pair stops the stream with an error.
 */
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
  private queuedBytes = 0;
  private readonly scratch = new Uint8Array(1024);
  private failed = false;

  constructor(private readonly opts: RingStreamOptions) {
    this.ring = new XsRingPage(opts.page);
    this.consume = opts.produce === 'req' ? 'rsp' : 'req';
  }

  /** Bytes waiting for room in the ring. */
  get pending(): number {
    return this.queuedBytes;
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
    this.queuedBytes += bytes.length;
    if (this.flush()) this.opts.notify();
  }

  /** The peer signalled: move what can move in both directions. */
  kick(): void {
    if (this.failed) return;
    let moved = this.flush();
    while (!this.failed && (this.opts.canRead?.() ?? true)) {
      const r = this.ring.read(this.consume, this.scratch);
      if (!r.ok) return this.fail(r.error.message);
      if (r.value === 0) break;
      moved = true;
      this.opts.onData(this.scratch.slice(0, r.value));
      moved = this.flush() || moved;
    }
    if (moved && !this.failed) this.opts.notify();
  }

  /** Writes queued output into the ring; true if anything was written. */
  private flush(): boolean {
    let moved = false;
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const r = this.ring.write(this.opts.produce, head);
      if (!r.ok) {
        this.fail(r.error.message);
        return moved;
      }
      if (r.value === 0) break;
      moved = true;
      this.queuedBytes -= r.value;
      if (r.value === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(r.value);
    }
    return moved;
  }

  private fail(message: string): void {
    if (this.failed) return;
    this.failed = true;
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.opts.onError(message);
  }
}

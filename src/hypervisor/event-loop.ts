/**
 * A domain's event loop: waits on the domain's upcall word (Atomics.waitAsync, after an optional
 * short spin), then dispatches every pending unmasked port to its handler, clearing the pending bit
 * first as Linux does (so a notification during the handler is not lost). Works the same in a
 * worker and in the current thread; `poll()` dispatches synchronously for deterministic tests.
 */
import { SHINFO_MASK_WORD, SHINFO_PENDING_WORD } from './layout.js';

export type PortHandler = (port: number) => void;

export interface EventWords {
  readonly shinfo: Int32Array;
  readonly ctl: Int32Array;
  readonly upcall: number;
}

export interface EventLoopOptions {
  /** Spin this many microseconds re-checking the upcall word before sleeping (0 = never). */
  readonly spinMicros?: number;
  /** Number of ports (bits) to scan. */
  readonly maxPorts: number;
  /** Where handler exceptions go (they never stop the loop). */
  readonly onError?: (err: unknown, port: number) => void;
  /**
   * Whether the domain still exists. Once it does not, the loop stops and poll() does nothing:
   * the shared-info frame may already belong to another domain.
   */
  readonly alive?: () => boolean;
}

export class EventLoop {
  private readonly handlers = new Map<number, PortHandler>();
  private readonly words: number;
  private running = false;
  private stopped = false;
  private dead = false;
  private done: Promise<void> = Promise.resolve();
  /** Ports found pending with no handler (dropped, as Linux does for unbound irqs). */
  spurious = 0;
  /** Handler invocations. */
  delivered = 0;
  spinMicros: number;

  constructor(
    private readonly w: EventWords,
    private readonly opts: EventLoopOptions,
  ) {
    this.words = Math.ceil(opts.maxPorts / 32);
    this.spinMicros = opts.spinMicros ?? 0;
  }

  on(port: number, handler: PortHandler): void {
    this.handlers.set(port, handler);
  }

  off(port: number): void {
    this.handlers.delete(port);
  }

  /** Dispatches every pending unmasked port now; returns how many handlers ran. */
  poll(): number {
    if (this.dead || (this.opts.alive && !this.opts.alive())) {
      this.dead = true;
      this.stopped = true;
      return 0;
    }
    const { shinfo } = this.w;
    let ran = 0;
    for (let i = 0; i < this.words; i++) {
      let pend = Atomics.load(shinfo, SHINFO_PENDING_WORD + i) & ~Atomics.load(shinfo, SHINFO_MASK_WORD + i);
      while (pend !== 0) {
        const bit = 31 - Math.clz32(pend & -pend);
        pend &= pend - 1;
        const port = i * 32 + bit;
        Atomics.and(shinfo, SHINFO_PENDING_WORD + i, ~(1 << bit));
        const h = this.handlers.get(port);
        if (!h) {
          this.spurious++;
          continue;
        }
        ran++;
        this.delivered++;
        try {
          h(port);
        } catch (err) {
          this.opts.onError?.(err, port);
        }
      }
    }
    return ran;
  }

  /** Starts the asynchronous loop (idempotent). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopped = false;
    this.done = this.run();
  }

  /** Stops the loop; resolves once it has left its wait. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.stopped = true;
    Atomics.notify(this.w.ctl, this.w.upcall);
    await this.done;
    this.running = false;
  }

  private spin(): boolean {
    const { ctl, upcall } = this.w;
    const until = performance.now() + this.spinMicros / 1000;
    do {
      if (Atomics.load(ctl, upcall) !== 0) return true;
    } while (performance.now() < until);
    return false;
  }

  private async run(): Promise<void> {
    const { ctl, upcall } = this.w;
    while (!this.stopped) {
      Atomics.store(ctl, upcall, 0);
      this.poll();
      if (Atomics.load(ctl, upcall) !== 0) continue;
      if (this.spinMicros > 0) {
        // Let what the handlers started (promise continuations, immediates) run first: spinning
        // blocks this thread, and the reply we spin for usually depends on that work.
        await new Promise<void>((r) => setImmediate(r));
        if (this.stopped) break;
        if (Atomics.load(ctl, upcall) !== 0 || this.spin()) continue;
      }
      const r = Atomics.waitAsync(ctl, upcall, 0);
      if (r.async) await r.value;
    }
  }
}

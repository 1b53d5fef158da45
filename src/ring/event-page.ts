/**
 * The displif event page (`struct xendispl_event_page`): backend -> frontend events in 63
 * slots of 64 bytes after a 64-byte header, indexed by free-running u32 `in_prod`/`in_cons`
 * modulo 63 (XENDISPL_IN_RING_REF). The backend produces, the frontend consumes.
 *
 * Each side keeps its own index privately and only publishes it, so a peer scribbling on the
 * other index can make the page look full or empty but can never make this side write outside
 * the page or skip its own position. Indices are accessed with Atomics (see shared-ring.ts).
 */
import {
  XENDISPL_EVENT_PAGE_SIZE,
  XENDISPL_IN_RING_LEN,
  XENDISPL_PACKET_SIZE,
  xendisplInRingRef,
} from '../abi/displif-constants.js';
import type { RingIdx } from '../abi/ring-layout.js';
import { sharedPage } from './shared-page.js';
import { idxSub } from './shared-ring.js';

const W_IN_CONS = 0;
const W_IN_PROD = 1;

/** The shared page with atomic access to its two indices. */
export class EventPage {
  readonly page: Uint8Array;
  private readonly words: Uint32Array;

  constructor(view: Uint8Array, offset = 0) {
    ({ page: this.page, words: this.words } = sharedPage(view, offset, XENDISPL_EVENT_PAGE_SIZE, 2, 'event page'));
  }

  get inCons(): RingIdx {
    return Atomics.load(this.words, W_IN_CONS);
  }
  set inCons(v: RingIdx) {
    Atomics.store(this.words, W_IN_CONS, v >>> 0);
  }
  get inProd(): RingIdx {
    return Atomics.load(this.words, W_IN_PROD);
  }
  set inProd(v: RingIdx) {
    Atomics.store(this.words, W_IN_PROD, v >>> 0);
  }

  /** Byte offset in `page` of event index `idx` (XENDISPL_IN_RING_REF). */
  slotOffset(idx: RingIdx): number {
    return xendisplInRingRef(idx);
  }
}

/**
 * With the pending indices wrapping past 2^32 ([cons, 2^32) then [0, prod)), whether slot
 * prod % 63 is also the slot of one of the pending indices before the wrap.
 */
function slotBusyAcrossWrap(cons: RingIdx, prod: RingIdx): boolean {
  const target = prod % XENDISPL_IN_RING_LEN;
  for (let idx = cons; idx <= 0xffff_ffff; idx++) {
    if (idx % XENDISPL_IN_RING_LEN === target) return true;
  }
  return false;
}

/** Backend side: writes events at in_prod and publishes in_prod. */
export class EventProducer {
  readonly ring: EventPage;
  private prod: RingIdx;

  /** Starts at the page's current in_cons and publishes in_prod = in_cons (as libxenbe does at bind). */
  static bind(ring: EventPage): EventProducer {
    const p = new EventProducer(ring, ring.inCons);
    ring.inProd = p.prod;
    return p;
  }

  /** Starts at `start` without touching the page. */
  static attach(ring: EventPage, start: RingIdx): EventProducer {
    return new EventProducer(ring, start);
  }

  private constructor(ring: EventPage, start: RingIdx) {
    this.ring = ring;
    this.prod = start >>> 0;
  }

  get inProd(): RingIdx {
    return this.prod;
  }

  /** Events published but not yet consumed, per the frontend's in_cons (u32 arithmetic). */
  get pending(): number {
    return idxSub(this.prod, this.ring.inCons);
  }

  /**
   * No free slot: (in_prod - in_cons) >= 63 (libxenbe's rule; a bogus in_cons also reads as
   * full), or the slot in_prod would use still holds an unconsumed event. The second case only
   * happens across the u32 wrap: 2^32 mod 63 = 4, so index 2^32 - 4 + k and index k share slot k
   * and the C rule alone would overwrite up to 4 unconsumed events there. vdispl waits instead.
   */
  get full(): boolean {
    const cons = this.ring.inCons;
    const pending = idxSub(this.prod, cons);
    if (pending >= XENDISPL_IN_RING_LEN) return true;
    return pending > 0 && this.prod < cons && slotBusyAcrossWrap(cons, this.prod);
  }

  /**
   * Writes one 64-byte event via `write(page, offset)` into slot in_prod % 63 and publishes
   * in_prod + 1. Returns the slot index, or -1 (nothing written) when the page is full.
   */
  put(write: (page: Uint8Array, offset: number) => void): number {
    if (this.full) return -1;
    const slot = (this.prod >>> 0) % XENDISPL_IN_RING_LEN;
    write(this.ring.page, this.ring.slotOffset(this.prod));
    this.prod = (this.prod + 1) >>> 0;
    this.ring.inProd = this.prod;
    return slot;
  }
}

/** Frontend side: reads events from in_cons up to in_prod and publishes in_cons. */
export class EventConsumer {
  readonly ring: EventPage;
  private cons: RingIdx;
  private readonly scratch = new Uint8Array(XENDISPL_PACKET_SIZE);

  /** Starts at the page's current in_cons. */
  static bind(ring: EventPage): EventConsumer {
    return new EventConsumer(ring, ring.inCons);
  }

  static attach(ring: EventPage, start: RingIdx): EventConsumer {
    return new EventConsumer(ring, start);
  }

  private constructor(ring: EventPage, start: RingIdx) {
    this.ring = ring;
    this.cons = start >>> 0;
  }

  get inCons(): RingIdx {
    return this.cons;
  }

  /** Events available per the backend's in_prod. */
  get available(): number {
    return idxSub(this.ring.inProd, this.cons);
  }

  /**
   * Consumes up to `max` events, each copied out of the shared page into a private 64-byte
   * buffer before `onEvent` sees it (the buffer is reused: copy it to keep it), then publishes
   * in_cons. Returns the number consumed. A backend announcing more than 63 events is clamped to
   * the 63 slots that exist.
   */
  consume(onEvent: (event: Uint8Array) => void, max = XENDISPL_IN_RING_LEN): number {
    const prod = this.ring.inProd;
    const n = Math.min(idxSub(prod, this.cons), max, XENDISPL_IN_RING_LEN);
    for (let i = 0; i < n; i++) {
      const o = this.ring.slotOffset(this.cons);
      this.scratch.set(this.ring.page.subarray(o, o + XENDISPL_PACKET_SIZE));
      this.cons = (this.cons + 1) >>> 0;
      onEvent(this.scratch);
    }
    if (n > 0) this.ring.inCons = this.cons;
    return n;
  }
}

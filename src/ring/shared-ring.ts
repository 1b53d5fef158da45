/**
 * Xen shared request/response rings (`xen/include/public/io/ring.h`) over a byte view, with the
 * exact semantics of the C macros and u32 wrap-around index arithmetic.
 *
 * The four shared indices are read and written with Atomics on a Uint32Array over the page, so
 * the peer may run in another worker on the same SharedArrayBuffer. JavaScript atomics are
 * sequentially consistent, which subsumes the wmb/mb barriers of the C macros: entry bytes
 * written before an Atomics.store of a producer index are visible to a peer that Atomics.loads
 * that index. Entries themselves are plain bytes; consumers copy an entry out of the shared
 * page before parsing it (RING_COPY_REQUEST/RESPONSE), so a peer rewriting a slot cannot change
 * a request under validation.
 *
 * Method names follow the macros: `pushRequestsAndCheckNotify` is
 * RING_PUSH_REQUESTS_AND_CHECK_NOTIFY, `finalCheckForResponses` RING_FINAL_CHECK_FOR_RESPONSES...
 */
import { AbiError } from '../abi/bytes.js';
import {
  type RingIdx,
  ringSize,
  SRING_HEADER_SIZE,
  SRING_PVT,
  SRING_REQ_EVENT,
  SRING_REQ_PROD,
  SRING_RSP_EVENT,
  SRING_RSP_PROD,
} from '../abi/ring-layout.js';
import { sharedPage } from './shared-page.js';


const W_REQ_PROD = SRING_REQ_PROD / 4;
const W_REQ_EVENT = SRING_REQ_EVENT / 4;
const W_RSP_PROD = SRING_RSP_PROD / 4;
const W_RSP_EVENT = SRING_RSP_EVENT / 4;

/** u32 difference a - b, as C computes it on RING_IDX. */
export function idxSub(a: RingIdx, b: RingIdx): number {
  return (a - b) >>> 0;
}

/** The shared page: `struct <name>_sring`. */
export class SharedRing {
  /** The whole ring page. */
  readonly page: Uint8Array;
  readonly entrySize: number;
  /** __RING_SIZE: a power of two (32 for displif). */
  readonly nrEnts: number;
  private readonly words: Uint32Array;

  /**
   * @param view bytes containing the ring page
   * @param offset where the page starts in `view` (the absolute address must be 4-byte aligned)
   * @param entrySize sizeof the request/response union
   * @param pageSize bytes of the ring (one 4 KiB page for displif)
   */
  constructor(view: Uint8Array, offset: number, entrySize: number, pageSize = 4096) {
    ({ page: this.page, words: this.words } = sharedPage(view, offset, pageSize, SRING_HEADER_SIZE / 4, 'ring'));
    this.entrySize = entrySize;
    this.nrEnts = ringSize(entrySize, pageSize);
    if (this.nrEnts === 0)
      throw new AbiError('range', `ring: no ${entrySize}-byte entry fits in ${pageSize} bytes`);
  }

  get reqProd(): RingIdx {
    return Atomics.load(this.words, W_REQ_PROD);
  }
  set reqProd(v: RingIdx) {
    Atomics.store(this.words, W_REQ_PROD, v >>> 0);
  }
  get reqEvent(): RingIdx {
    return Atomics.load(this.words, W_REQ_EVENT);
  }
  set reqEvent(v: RingIdx) {
    Atomics.store(this.words, W_REQ_EVENT, v >>> 0);
  }
  get rspProd(): RingIdx {
    return Atomics.load(this.words, W_RSP_PROD);
  }
  set rspProd(v: RingIdx) {
    Atomics.store(this.words, W_RSP_PROD, v >>> 0);
  }
  get rspEvent(): RingIdx {
    return Atomics.load(this.words, W_RSP_EVENT);
  }
  set rspEvent(v: RingIdx) {
    Atomics.store(this.words, W_RSP_EVENT, v >>> 0);
  }

  /** SHARED_RING_INIT: producers 0, event indices 1, pvt and pad zeroed. Entries untouched. */
  init(): void {
    this.page.fill(0, SRING_PVT, SRING_HEADER_SIZE);
    this.reqProd = 0;
    this.rspProd = 0;
    this.reqEvent = 1;
    this.rspEvent = 1;
  }

  /** Byte offset in `page` of the entry for free-running index `idx` (RING_GET_REQUEST/RESPONSE). */
  slotOffset(idx: RingIdx): number {
    return SRING_HEADER_SIZE + this.entrySize * (idx & (this.nrEnts - 1));
  }

  /** A live view of the entry for `idx`: the peer may change it at any time. */
  slot(idx: RingIdx): Uint8Array {
    const o = this.slotOffset(idx);
    return this.page.subarray(o, o + this.entrySize);
  }

  /** RING_COPY_REQUEST/RESPONSE: copies the entry for `idx` into `dst` (entrySize bytes). */
  copySlot(idx: RingIdx, dst: Uint8Array): Uint8Array {
    const o = this.slotOffset(idx);
    dst.set(this.page.subarray(o, o + this.entrySize));
    return dst;
  }
}

/** The front end's private state (`<name>_front_ring`) and the macros that use it. */
export class FrontRing {
  readonly sring: SharedRing;
  readonly nrEnts: number;
  private _reqProdPvt: RingIdx;
  private _rspCons: RingIdx;

  private constructor(sring: SharedRing, start: RingIdx) {
    this.sring = sring;
    this.nrEnts = sring.nrEnts;
    this._reqProdPvt = start >>> 0;
    this._rspCons = start >>> 0;
  }

  /** XEN_FRONT_RING_INIT: SHARED_RING_INIT + FRONT_RING_INIT. */
  static init(sring: SharedRing): FrontRing {
    sring.init();
    return new FrontRing(sring, 0);
  }

  /** FRONT_RING_ATTACH: private indices start at `start`; the shared page is not touched. */
  static attach(sring: SharedRing, start: RingIdx): FrontRing {
    return new FrontRing(sring, start);
  }

  get reqProdPvt(): RingIdx {
    return this._reqProdPvt;
  }
  set reqProdPvt(v: RingIdx) {
    this._reqProdPvt = v >>> 0;
  }
  get rspCons(): RingIdx {
    return this._rspCons;
  }
  set rspCons(v: RingIdx) {
    this._rspCons = v >>> 0;
  }

  /** RING_FREE_REQUESTS (unsigned, as in C). */
  get freeRequests(): number {
    return (this.nrEnts - idxSub(this._reqProdPvt, this._rspCons)) >>> 0;
  }

  /** RING_FULL. */
  get full(): boolean {
    return this.freeRequests === 0;
  }

  /** XEN_RING_NR_UNCONSUMED_RESPONSES = RING_HAS_UNCONSUMED_RESPONSES (raw count). */
  get unconsumedResponses(): number {
    return idxSub(this.sring.rspProd, this._rspCons);
  }

  /** RING_RESPONSE_PROD_OVERFLOW: could the backend have produced this many responses? */
  responseProdOverflow(prod: RingIdx): boolean {
    return idxSub(prod, this._rspCons) > this.nrEnts;
  }

  /** Offset in the page of the request slot to fill next (RING_GET_REQUEST(r, req_prod_pvt)). */
  get nextRequestOffset(): number {
    return this.sring.slotOffset(this._reqProdPvt);
  }

  /** RING_PUSH_REQUESTS. */
  pushRequests(): void {
    this.sring.reqProd = this._reqProdPvt;
  }

  /** RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: true if the backend asked to be notified. */
  pushRequestsAndCheckNotify(): boolean {
    const old = this.sring.reqProd;
    const next = this._reqProdPvt;
    this.sring.reqProd = next;
    return idxSub(next, this.sring.reqEvent) < idxSub(next, old);
  }

  /** RING_COPY_RESPONSE(r, rsp_cons) into `dst`, then rsp_cons++. */
  takeResponse(dst: Uint8Array): Uint8Array {
    this.sring.copySlot(this._rspCons, dst);
    this.rspCons = this._rspCons + 1;
    return dst;
  }

  /** RING_FINAL_CHECK_FOR_RESPONSES: the unconsumed count, arming rsp_event when it is zero. */
  finalCheckForResponses(): number {
    const work = this.unconsumedResponses;
    if (work !== 0) return work;
    this.sring.rspEvent = this._rspCons + 1;
    return this.unconsumedResponses;
  }
}

/** The back end's private state (`<name>_back_ring`) and the macros that use it. */
export class BackRing {
  readonly sring: SharedRing;
  readonly nrEnts: number;
  private _rspProdPvt: RingIdx;
  private _reqCons: RingIdx;

  private constructor(sring: SharedRing, start: RingIdx) {
    this.sring = sring;
    this.nrEnts = sring.nrEnts;
    this._rspProdPvt = start >>> 0;
    this._reqCons = start >>> 0;
  }

  /** BACK_RING_INIT: the backend never initialises the shared page. */
  static init(sring: SharedRing): BackRing {
    return new BackRing(sring, 0);
  }

  /** BACK_RING_ATTACH. */
  static attach(sring: SharedRing, start: RingIdx): BackRing {
    return new BackRing(sring, start);
  }

  get rspProdPvt(): RingIdx {
    return this._rspProdPvt;
  }
  set rspProdPvt(v: RingIdx) {
    this._rspProdPvt = v >>> 0;
  }
  get reqCons(): RingIdx {
    return this._reqCons;
  }
  set reqCons(v: RingIdx) {
    this._reqCons = v >>> 0;
  }

  /**
   * XEN_RING_NR_UNCONSUMED_REQUESTS: min(req_prod - req_cons, nr_ents - (req_cons - rsp_prod_pvt)),
   * so a frontend publishing an absurd req_prod never makes the backend overrun its responses.
   */
  get unconsumedRequests(): number {
    const req = idxSub(this.sring.reqProd, this._reqCons);
    const rsp = (this.nrEnts - idxSub(this._reqCons, this._rspProdPvt)) >>> 0;
    return Math.min(req, rsp);
  }

  /** RING_REQUEST_CONS_OVERFLOW: consuming `cons` would leave no response slot. */
  requestConsOverflow(cons: RingIdx): boolean {
    return idxSub(cons, this._rspProdPvt) >= this.nrEnts;
  }

  /** RING_REQUEST_PROD_OVERFLOW: an ill-behaved frontend published more than nr_ents requests. */
  requestProdOverflow(prod: RingIdx): boolean {
    return idxSub(prod, this._rspProdPvt) > this.nrEnts;
  }

  /** RING_COPY_REQUEST(r, req_cons) into `dst`, then req_cons++. */
  takeRequest(dst: Uint8Array): Uint8Array {
    this.sring.copySlot(this._reqCons, dst);
    this.reqCons = this._reqCons + 1;
    return dst;
  }

  /** Offset in the page of the response slot to fill next (RING_GET_RESPONSE(r, rsp_prod_pvt)). */
  get nextResponseOffset(): number {
    return this.sring.slotOffset(this._rspProdPvt);
  }

  /** RING_PUSH_RESPONSES. */
  pushResponses(): void {
    this.sring.rspProd = this._rspProdPvt;
  }

  /** RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: true if the frontend asked to be notified. */
  pushResponsesAndCheckNotify(): boolean {
    const old = this.sring.rspProd;
    const next = this._rspProdPvt;
    this.sring.rspProd = next;
    return idxSub(next, this.sring.rspEvent) < idxSub(next, old);
  }

  /** RING_FINAL_CHECK_FOR_REQUESTS: the unconsumed count, arming req_event when it is zero. */
  finalCheckForRequests(): number {
    const work = this.unconsumedRequests;
    if (work !== 0) return work;
    this.sring.reqEvent = this._reqCons + 1;
    return this.unconsumedRequests;
  }
}

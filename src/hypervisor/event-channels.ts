/**
 * Event channels, the hypervisor side: a port table per domain (Xen heap frames) and the pending
 * and mask bitmaps in the domain's shared-info frame. Sending sets the peer's pending bit; only a
 * 0 -> 1 transition on an unmasked port raises the peer's upcall word and wakes it, so
 * notifications coalesce as in Xen. Callers hold the big lock, except `raise` (lock-free).
 */
import { DOMID_SELF, EVTCHNSTAT_closed, EVTCHNSTAT_interdomain, EVTCHNSTAT_unbound } from '../abi/event-channel.js';
import { XEN_ERRNO } from '../abi/xen-errno.js';
import { allocFrame, putFrame } from './frames.js';
import {
  D_DOMID, D_FLAGS, D_MAX_PORTS, D_PORT_FRAMES, D_PORT_MFNS, D_PORTS, D_SHINFO_MFN, D_UPCALL,
  D_XEN_FRAMES, DOMFLAG_PRIVILEGED, OWNER_XEN, PORTS_PER_FRAME, SHINFO_MASK_WORD, SHINFO_PENDING_WORD,
} from './layout.js';
import type { MachineState } from './state.js';

const { EINVAL, ENOSPC, EPERM, ESRCH } = XEN_ERRNO;

export interface EvtchnStatus {
  /** EVTCHNSTAT_closed / _unbound / _interdomain. */
  readonly status: number;
  /** unbound: the domain allowed to bind; interdomain: the peer. */
  readonly remoteDom: number;
  /** interdomain: the peer's port. */
  readonly remotePort: number;
  readonly vcpu: number;
}

/** mem32 index of the port's entry: [state, remote domid, remote port, flags]. */
function portIndex(s: MachineState, base: number, port: number): number {
  return s.ctl[base + D_PORT_MFNS + (port >>> 8)]! * 1024 + (port & 255) * 4;
}

export function portValid(s: MachineState, base: number, port: number): boolean {
  return Number.isInteger(port) && port > 0 && port < s.ctl[base + D_MAX_PORTS]!;
}

/** Allocates the shared-info frame and the port table; false without memory. */
export function evtchnInit(s: MachineState, base: number): boolean {
  const { ctl } = s;
  const frames = Math.ceil(ctl[base + D_MAX_PORTS]! / PORTS_PER_FRAME);
  const sh = allocFrame(s, OWNER_XEN);
  if (sh < 0) return false;
  ctl[base + D_SHINFO_MFN] = sh;
  ctl[base + D_XEN_FRAMES]! += 1;
  for (let i = 0; i < frames; i++) {
    const mfn = allocFrame(s, OWNER_XEN);
    if (mfn < 0) return false; // evtchnFree undoes what was allocated
    ctl[base + D_PORT_MFNS + i] = mfn;
    ctl[base + D_PORT_FRAMES] = i + 1;
    ctl[base + D_XEN_FRAMES]! += 1;
  }
  return true;
}

export function evtchnFree(s: MachineState, base: number): void {
  const { ctl } = s;
  const frames = ctl[base + D_PORT_FRAMES]!;
  for (let i = 0; i < frames; i++) putFrame(s, ctl[base + D_PORT_MFNS + i]!);
  ctl[base + D_XEN_FRAMES]! -= frames;
  ctl[base + D_PORT_FRAMES] = 0;
  if (ctl[base + D_SHINFO_MFN]! >= 0) {
    putFrame(s, ctl[base + D_SHINFO_MFN]!);
    ctl[base + D_XEN_FRAMES]! -= 1;
    ctl[base + D_SHINFO_MFN] = -1;
  }
}

function bitIndex(s: MachineState, base: number, word: number, port: number): number {
  return s.ctl[base + D_SHINFO_MFN]! * 1024 + word + (port >>> 5);
}

/**
 * Marks `port` of the domain at `base` pending; on a 0 -> 1 transition of an unmasked port, sets
 * the domain's upcall word and wakes its event loop. Lock-free (Atomics only).
 */
export function raise(s: MachineState, base: number, port: number): void {
  const bit = 1 << (port & 31);
  const old = Atomics.or(s.mem32, bitIndex(s, base, SHINFO_PENDING_WORD, port), bit);
  if ((old & bit) !== 0) return; // already pending: coalesced
  if ((Atomics.load(s.mem32, bitIndex(s, base, SHINFO_MASK_WORD, port)) & bit) !== 0) return;
  upcall(s, base);
}

export function upcall(s: MachineState, base: number): void {
  Atomics.store(s.ctl, base + D_UPCALL, 1);
  Atomics.notify(s.ctl, base + D_UPCALL);
}

function freePort(s: MachineState, base: number): number {
  const max = s.ctl[base + D_MAX_PORTS]!;
  for (let p = 1; p < max; p++) if (s.mem32[portIndex(s, base, p)] === EVTCHNSTAT_closed) return p;
  return -ENOSPC;
}

function clearBits(s: MachineState, base: number, port: number): void {
  const bit = 1 << (port & 31);
  Atomics.and(s.mem32, bitIndex(s, base, SHINFO_PENDING_WORD, port), ~bit);
  Atomics.and(s.mem32, bitIndex(s, base, SHINFO_MASK_WORD, port), ~bit);
}

function setPort(s: MachineState, base: number, port: number, state: number, rdom: number, rport: number): void {
  const i = portIndex(s, base, port);
  s.mem32[i] = state;
  s.mem32[i + 1] = rdom;
  s.mem32[i + 2] = rport;
}

/**
 * EVTCHNOP_alloc_unbound by the domain at `base`: a fresh port in `dom` (DOMID_SELF or, for a
 * privileged caller, any domain) that `remoteDom` may bind. Returns the port or -errno.
 */
export function allocUnbound(s: MachineState, base: number, dom: number, remoteDom: number): number {
  const self = s.ctl[base + D_DOMID]!;
  let target = base;
  if (dom !== DOMID_SELF && dom !== self) {
    if ((s.ctl[base + D_FLAGS]! & DOMFLAG_PRIVILEGED) === 0) return -EPERM;
    target = s.running(dom);
    if (target < 0) return -ESRCH;
  }
  const rdom = remoteDom === DOMID_SELF ? self : remoteDom; // Xen: the caller, not the target
  if (!Number.isInteger(rdom) || rdom < 0 || rdom >= 0x7ff0) return -ESRCH;
  const port = freePort(s, target);
  if (port < 0) return port;
  clearBits(s, target, port);
  setPort(s, target, port, EVTCHNSTAT_unbound, rdom, 0);
  s.ctl[target + D_PORTS]! += 1;
  return port;
}

/**
 * EVTCHNOP_bind_interdomain by the domain at `base` to `remotePort` of `remoteDom`, which must
 * be unbound and accept the caller. The new local port is set pending, as Xen does, in case the
 * peer signalled before the bind. Returns the local port or -errno.
 */
export function bindInterdomain(s: MachineState, base: number, remoteDom: number, remotePort: number): number {
  const self = s.ctl[base + D_DOMID]!;
  const rBase = remoteDom === DOMID_SELF ? base : s.running(remoteDom);
  if (rBase < 0) return -ESRCH;
  if (!portValid(s, rBase, remotePort)) return -EINVAL;
  const ri = portIndex(s, rBase, remotePort);
  if (s.mem32[ri] !== EVTCHNSTAT_unbound || s.mem32[ri + 1] !== self) return -EINVAL;
  const port = freePort(s, base);
  if (port < 0) return port;
  clearBits(s, base, port);
  setPort(s, base, port, EVTCHNSTAT_interdomain, s.ctl[rBase + D_DOMID]!, remotePort);
  setPort(s, rBase, remotePort, EVTCHNSTAT_interdomain, self, port);
  s.ctl[base + D_PORTS]! += 1;
  raise(s, base, port);
  return port;
}

/** EVTCHNOP_send: 0, or -EINVAL for a port that is not open. An unbound port drops it silently. */
export function send(s: MachineState, base: number, port: number): number {
  if (!portValid(s, base, port)) return -EINVAL;
  const i = portIndex(s, base, port);
  const state = s.mem32[i];
  if (state === EVTCHNSTAT_unbound) return 0;
  if (state !== EVTCHNSTAT_interdomain) return -EINVAL;
  const rBase = s.running(s.mem32[i + 1]!);
  if (rBase >= 0) raise(s, rBase, s.mem32[i + 2]!);
  return 0;
}

/** EVTCHNOP_close: frees the port; an interdomain peer's port goes back to unbound (accepting us). */
export function close(s: MachineState, base: number, port: number): number {
  if (!portValid(s, base, port)) return -EINVAL;
  const i = portIndex(s, base, port);
  const state = s.mem32[i];
  if (state === EVTCHNSTAT_closed) return -EINVAL;
  if (state === EVTCHNSTAT_interdomain) {
    const rBase = s.anySlot(s.mem32[i + 1]!);
    const rport = s.mem32[i + 2]!;
    if (rBase >= 0 && s.ctl[rBase + D_PORT_FRAMES]! > 0 && portValid(s, rBase, rport)) {
      const ri = portIndex(s, rBase, rport);
      if (s.mem32[ri] === EVTCHNSTAT_interdomain && s.mem32[ri + 1] === s.ctl[base + D_DOMID] && s.mem32[ri + 2] === port) {
        setPort(s, rBase, rport, EVTCHNSTAT_unbound, s.ctl[base + D_DOMID]!, 0);
      }
    }
  }
  setPort(s, base, port, EVTCHNSTAT_closed, 0, 0);
  clearBits(s, base, port);
  s.ctl[base + D_PORTS]! -= 1;
  return 0;
}

/** Closes every port of the domain (teardown). */
export function closeAll(s: MachineState, base: number): void {
  const max = s.ctl[base + D_MAX_PORTS]!;
  for (let p = 1; p < max && s.ctl[base + D_PORTS]! > 0; p++) {
    if (s.mem32[portIndex(s, base, p)] !== EVTCHNSTAT_closed) close(s, base, p);
  }
}

/** EVTCHNOP_status of `port` of `dom` (DOMID_SELF, or any domain for a privileged caller). */
export function status(s: MachineState, base: number, dom: number, port: number): EvtchnStatus | number {
  let target = base;
  if (dom !== DOMID_SELF && dom !== s.ctl[base + D_DOMID]) {
    if ((s.ctl[base + D_FLAGS]! & DOMFLAG_PRIVILEGED) === 0) return -EPERM;
    target = s.running(dom);
    if (target < 0) return -ESRCH;
  }
  if (!portValid(s, target, port)) return -EINVAL;
  const i = portIndex(s, target, port);
  const st = s.mem32[i]!;
  return {
    status: st,
    remoteDom: st === EVTCHNSTAT_closed ? 0 : s.mem32[i + 1]!,
    remotePort: st === EVTCHNSTAT_interdomain ? s.mem32[i + 2]! : 0,
    vcpu: 0,
  };
}

/** Sets or clears the mask bit; unmasking a pending port raises the upcall (EVTCHNOP_unmask). */
export function setMask(s: MachineState, base: number, port: number, masked: boolean): number {
  if (!portValid(s, base, port)) return -EINVAL;
  const bit = 1 << (port & 31);
  const mi = bitIndex(s, base, SHINFO_MASK_WORD, port);
  if (masked) {
    Atomics.or(s.mem32, mi, bit);
    return 0;
  }
  Atomics.and(s.mem32, mi, ~bit);
  if ((Atomics.load(s.mem32, bitIndex(s, base, SHINFO_PENDING_WORD, port)) & bit) !== 0) upcall(s, base);
  return 0;
}


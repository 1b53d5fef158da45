/**
 * Domain slots: creation, the two phases of destruction, and zombies. Callers hold the big lock.
 *
 * Destruction: `markDying` first (every hypercall by or on the domain fails from then on), then,
 * once its code has stopped, `teardown` reclaims its ports (peers' ports become unbound), the
 * mappings it holds, its RAM (a frame still mapped by another domain stays until the last mapping
 * goes) and its hypervisor frames. If others still map its grants it becomes a zombie, keeping
 * only its grant table, and is freed by the unmap that drops the last such mapping.
 */
import { XEN_ERRNO } from '../abi/xen-errno.js';
import { closeAll, evtchnFree, evtchnInit } from './event-channels.js';
import { putFrame } from './frames.js';
import { freeMaptrack, freeTable, growTable, unmapAll } from './grant-table.js';
import {
  D_CPU, D_DOMID, D_FLAGS, D_GFN_LIMIT, D_MAPS_OF_MINE, D_MAPTRACK_FREE, D_MAX_GNT_FRAMES, D_MAX_MAPS,
  D_MAX_PORTS, D_MAX_PAGES, D_PAGES, D_SHINFO_MFN, D_STATE, DOMAIN_WORDS, DOMFLAG_PRIVILEGED,
  DOMID_COUNT, type DomainLimits, DomainState, H_GENERATION, H_NEXT_DOMID, D_CREATED_GEN,
} from './layout.js';
import { P2M_EMPTY, p2mForEach, p2mFreeLeaves, p2mSet } from './p2m.js';
import type { MachineState } from './state.js';

export interface CreateDomainArgs {
  /** A specific domid, or undefined for the next free one (never 0 unless asked). */
  readonly domid?: number;
  readonly privileged: boolean;
  readonly limits: DomainLimits;
}

/** Creates a domain; returns its domid, or -EEXIST / -EINVAL / -ENOSPC (no slot) / -ENOMEM. */
export function createDomain(s: MachineState, a: CreateDomainArgs): number {
  const { ctl, layout } = s;
  let domid = a.domid;
  if (domid === undefined) {
    let next = ctl[H_NEXT_DOMID]!;
    for (let n = 1; n < DOMID_COUNT; n++, next = next + 1 >= DOMID_COUNT ? 1 : next + 1) {
      if (ctl[layout.domidIndex + next] === 0) break;
    }
    if (ctl[layout.domidIndex + next] !== 0) return -XEN_ERRNO.ENOSPC;
    domid = next;
  } else if (!Number.isInteger(domid) || domid < 0 || domid >= DOMID_COUNT) {
    return -XEN_ERRNO.EINVAL;
  } else if (ctl[layout.domidIndex + domid] !== 0) {
    return -XEN_ERRNO.EEXIST;
  }
  let slot = -1;
  for (let i = 0; i < layout.maxDomains; i++) {
    if (ctl[s.slotBase(i) + D_STATE] === DomainState.Free) {
      slot = i;
      break;
    }
  }
  if (slot < 0) return -XEN_ERRNO.ENOSPC;
  if (a.domid === undefined) ctl[H_NEXT_DOMID] = domid + 1 >= DOMID_COUNT ? 1 : domid + 1;
  const base = s.slotBase(slot);
  ctl.fill(0, base, base + DOMAIN_WORDS);
  ctl[base + D_DOMID] = domid;
  ctl[base + D_FLAGS] = a.privileged ? DOMFLAG_PRIVILEGED : 0;
  ctl[base + D_MAX_PAGES] = a.limits.maxPages;
  ctl[base + D_MAX_GNT_FRAMES] = a.limits.maxGrantFrames;
  ctl[base + D_MAX_MAPS] = a.limits.maxMaps;
  ctl[base + D_MAX_PORTS] = a.limits.maxPorts;
  ctl[base + D_GFN_LIMIT] = a.limits.gfnLimit;
  ctl[base + D_MAPTRACK_FREE] = -1;
  ctl[base + D_SHINFO_MFN] = -1;
  ctl[base + D_CREATED_GEN] = Atomics.add(ctl, H_GENERATION, 1) + 1;
  if (!evtchnInit(s, base) || growTable(s, base, 1) !== 0) {
    evtchnFree(s, base);
    freeTable(s, base);
    return -XEN_ERRNO.ENOMEM;
  }
  ctl[layout.domidIndex + domid] = slot + 1;
  ctl[base + D_STATE] = DomainState.Running;
  return domid;
}

/** First phase of destruction. Returns false if the domain is not running. */
export function markDying(s: MachineState, domid: number): boolean {
  const base = s.running(domid);
  if (base < 0) return false;
  s.ctl[base + D_STATE] = DomainState.Dying;
  return true;
}

/** Frees what a zombie kept (its grant table) and its slot. */
export function reap(s: MachineState, base: number): void {
  freeTable(s, base);
  s.ctl[s.layout.domidIndex + s.ctl[base + D_DOMID]!] = 0;
  s.ctl[base + D_STATE] = DomainState.Free;
}

export function reapIfIdle(s: MachineState, base: number): void {
  if (s.ctl[base + D_STATE] === DomainState.Zombie && s.ctl[base + D_MAPS_OF_MINE] === 0) reap(s, base);
}

/** Second phase: reclaims everything of a dying domain. Returns 'freed' or 'zombie'. */
export function teardown(s: MachineState, domid: number): 'freed' | 'zombie' | 'absent' {
  const base = s.anySlot(domid);
  if (base < 0 || s.ctl[base + D_STATE] !== DomainState.Dying) return 'absent';
  const onIdle = (g: number): void => reapIfIdle(s, g);
  closeAll(s, base);
  unmapAll(s, base, onIdle);
  freeMaptrack(s, base);
  p2mForEach(s, base, (gfn, e) => {
    if (e > 0) putFrame(s, e - 1);
    p2mSet(s, base, gfn, P2M_EMPTY);
  });
  s.ctl[base + D_PAGES] = 0;
  p2mFreeLeaves(s, base);
  evtchnFree(s, base);
  s.ctl[base + D_CPU] = 0;
  if (s.ctl[base + D_MAPS_OF_MINE]! > 0) {
    s.ctl[base + D_STATE] = DomainState.Zombie;
    return 'zombie';
  }
  reap(s, base);
  return 'freed';
}

/**
 * Accounting: what every domain holds, read under the big lock. Tests take a snapshot before a
 * scenario and compare after it (`accountingDiff`) to prove nothing leaked.
 */
import { entriesInUse } from './grant-table.js';
import {
  D_DOMID, D_FLAGS, D_GFN_LIMIT, D_GNT_FRAMES, D_MAPS_HELD, D_MAPS_OF_MINE, D_MAX_GNT_FRAMES, D_MAX_MAPS,
  D_MAX_PAGES, D_MAX_PORTS, D_PAGES, D_PINNED, D_PORTS, D_STATE, D_XEN_FRAMES, DOMFLAG_PRIVILEGED,
  DomainState, H_FREE_FRAMES, H_LOCK_BREAKS, H_XEN_FRAMES,
} from './layout.js';
import type { MachineState } from './state.js';

export type DomainStateName = 'running' | 'dying' | 'zombie';

export interface DomainAccounting {
  readonly domid: number;
  readonly state: DomainStateName;
  readonly privileged: boolean;
  /** RAM pages populated in its p2m, and the quota. */
  readonly pages: number;
  readonly maxPages: number;
  readonly grantFrames: number;
  readonly maxGrantFrames: number;
  /** Grant entries whose type is not GTF_invalid (what the guest currently grants). */
  readonly grantEntriesInUse: number;
  /** Its grant entries mapped or being copied by someone (pins > 0). */
  readonly grantEntriesPinned: number;
  /** Grant mappings it holds of other domains' grants, and the quota. */
  readonly mapsHeld: number;
  readonly maxMaps: number;
  /** Mappings of its grants held by other domains. */
  readonly mapsOfMine: number;
  readonly ports: number;
  readonly maxPorts: number;
  /** Size of its guest-physical space in pages. */
  readonly gfnLimit: number;
  /** Hypervisor frames spent on it (grant table, p2m, maptrack, event channels). */
  readonly xenFrames: number;
}

export interface MachineAccounting {
  readonly totalFrames: number;
  readonly freeFrames: number;
  /** All hypervisor-owned frames. */
  readonly xenFrames: number;
  /** Times the lock was taken back from a thread that died holding it. */
  readonly lockBreaks: number;
  readonly domains: readonly DomainAccounting[];
}

const STATE_NAMES: Record<number, DomainStateName> = {
  [DomainState.Running]: 'running',
  [DomainState.Dying]: 'dying',
  [DomainState.Zombie]: 'zombie',
};

export function domainAccounting(s: MachineState, base: number): DomainAccounting {
  const c = (w: number): number => s.ctl[base + w]!;
  return {
    domid: c(D_DOMID),
    state: STATE_NAMES[c(D_STATE)] ?? 'dying',
    privileged: (c(D_FLAGS) & DOMFLAG_PRIVILEGED) !== 0,
    pages: c(D_PAGES),
    maxPages: c(D_MAX_PAGES),
    grantFrames: c(D_GNT_FRAMES),
    maxGrantFrames: c(D_MAX_GNT_FRAMES),
    grantEntriesInUse: entriesInUse(s, base),
    grantEntriesPinned: c(D_PINNED),
    mapsHeld: c(D_MAPS_HELD),
    maxMaps: c(D_MAX_MAPS),
    mapsOfMine: c(D_MAPS_OF_MINE),
    ports: c(D_PORTS),
    maxPorts: c(D_MAX_PORTS),
    gfnLimit: c(D_GFN_LIMIT),
    xenFrames: c(D_XEN_FRAMES),
  };
}

export function machineAccounting(s: MachineState): MachineAccounting {
  const domains: DomainAccounting[] = [];
  for (let i = 0; i < s.layout.maxDomains; i++) {
    const base = s.slotBase(i);
    if (s.ctl[base + D_STATE] !== DomainState.Free) domains.push(domainAccounting(s, base));
  }
  domains.sort((a, b) => a.domid - b.domid);
  return {
    totalFrames: s.nrFrames,
    freeFrames: s.ctl[H_FREE_FRAMES]!,
    xenFrames: s.ctl[H_XEN_FRAMES]!,
    lockBreaks: s.ctl[H_LOCK_BREAKS]!,
    domains,
  };
}

/** Human-readable differences between two snapshots ([] when equal). */
export function accountingDiff(before: MachineAccounting, after: MachineAccounting): string[] {
  const out: string[] = [];
  for (const k of ['freeFrames', 'xenFrames', 'lockBreaks'] as const) {
    if (before[k] !== after[k]) out.push(`${k}: ${before[k]} -> ${after[k]}`);
  }
  const byId = new Map(after.domains.map((d) => [d.domid, d]));
  for (const d of before.domains) {
    const a = byId.get(d.domid);
    byId.delete(d.domid);
    if (!a) {
      out.push(`d${d.domid}: gone`);
      continue;
    }
    for (const k of Object.keys(d) as (keyof DomainAccounting)[]) {
      if (d[k] !== a[k]) out.push(`d${d.domid}.${k}: ${String(d[k])} -> ${String(a[k])}`);
    }
  }
  for (const a of byId.values()) out.push(`d${a.domid}: new (${a.state})`);
  return out;
}

/**
 * Grant tables, the hypervisor side (v1): the shared grant_entry_v1 frames each domain writes,
 * the active entries (pin counts, the frame pinned, the grantee) and the maptrack of each
 * mapping domain (handles). Checks and statuses follow Xen's map_grant_ref / unmap_grant_ref /
 * gnttab_copy. Callers hold the big lock and have checked the calling domain is running.
 *
 * Shared entry word 0 is flags (low 16 bits) | domid (high 16 bits) on this little-endian host,
 * updated as one 32-bit compare-exchange like Xen's `grant_combo`; word 1 is the frame (gfn).
 */
import {
  GNTCOPY_dest_gref, GNTCOPY_source_gref, GNTMAP_device_map, GNTMAP_host_map, GNTMAP_readonly,
  GNTST_bad_copy_arg, GNTST_bad_domain, GNTST_bad_gntref, GNTST_bad_handle, GNTST_bad_page,
  GNTST_bad_virt_addr, GNTST_general_error, GNTST_no_space, GNTST_okay, GNTST_permission_denied,
  GRANT_ENTRIES_PER_FRAME, GTF_permit_access, GTF_readonly, GTF_reading, GTF_sub_page, GTF_type_mask, GTF_writing,
} from '../abi/grant-table.js';
import { DOMID_SELF } from '../abi/event-channel.js';
import { XEN_ERRNO } from '../abi/xen-errno.js';
import { allocFrame, getFrame, putFrame } from './frames.js';
import type { GrantCopyOp, GrantCopyPtr, GrantMapBatch, GrantUnmapBatch } from './grant-ops.js';
import {
  D_ACT_MFNS, D_DOMID, D_GNT_FRAMES, D_GNT_MFNS, D_MAPS_HELD, D_MAPS_OF_MINE,
  D_MAPTRACK_FRAMES, D_MAPTRACK_FREE, D_MAPTRACK_MFNS, D_MAPTRACK_TOP, D_MAX_GNT_FRAMES, D_MAX_MAPS,
  D_PINNED, D_STATE, D_XEN_FRAMES, DomainState, MAPTRACK_PER_FRAME,
  OWNER_XEN, PAGE_SIZE,
} from './layout.js';
import { ownGfnToMfn } from './memory.js';
import { gfnInRange, P2M_EMPTY, p2mGet, p2mSet } from './p2m.js';
import type { MachineState } from './state.js';

/** Compare-exchange attempts on a shared entry before giving up ("Shared grant entry is unstable"). */
export const SET_STATUS_RETRIES = 4;
const PIN_MAX = 0xffff;

// Maptrack entry words: [flags | domid << 16, ref, mfn, hostGfn (or next free handle)].
const MT_INUSE = 1;
const MT_READONLY = 2;
const MT_HOST = 4;

export function nrGrantEntries(s: MachineState, base: number): number {
  return s.ctl[base + D_GNT_FRAMES]! * GRANT_ENTRIES_PER_FRAME;
}

/** mem32 index of word 0 of grant entry `ref` (caller checks the bound). */
export function entryIndex(s: MachineState, base: number, ref: number): number {
  return s.ctl[base + D_GNT_MFNS + (ref >>> 9)]! * 1024 + (ref & 511) * 2;
}

function activeIndex(s: MachineState, base: number, ref: number): number {
  return s.ctl[base + D_ACT_MFNS + (ref >>> 8)]! * 1024 + (ref & 255) * 4;
}

function maptrackIndex(s: MachineState, base: number, handle: number): number {
  return s.ctl[base + D_MAPTRACK_MFNS + (handle >>> 8)]! * 1024 + (handle & 255) * 4;
}

/** Grows the table to `frames` frames (never shrinks). GNTST_general_error beyond the maximum, no_space without memory. */
export function growTable(s: MachineState, base: number, frames: number): number {
  const { ctl } = s;
  if (!Number.isInteger(frames) || frames < 0 || frames > ctl[base + D_MAX_GNT_FRAMES]!) return GNTST_general_error;
  while (ctl[base + D_GNT_FRAMES]! < frames) {
    const i = ctl[base + D_GNT_FRAMES]!;
    const g = allocFrame(s, OWNER_XEN);
    const a0 = g < 0 ? -1 : allocFrame(s, OWNER_XEN);
    const a1 = a0 < 0 ? -1 : allocFrame(s, OWNER_XEN);
    if (a1 < 0) {
      if (a0 >= 0) putFrame(s, a0);
      if (g >= 0) putFrame(s, g);
      return GNTST_no_space;
    }
    ctl[base + D_GNT_MFNS + i] = g;
    ctl[base + D_ACT_MFNS + 2 * i] = a0;
    ctl[base + D_ACT_MFNS + 2 * i + 1] = a1;
    ctl[base + D_XEN_FRAMES]! += 3;
    ctl[base + D_GNT_FRAMES] = i + 1;
  }
  return GNTST_okay;
}

/**
 * Fills entry `ref` of the table at `base` with a read-write grant of `gfn` to `grantee`, as the
 * toolstack does for the reserved entries before a domain runs. 0 or -errno (-EINVAL for a ref
 * beyond the maximum table, an entry in use or a bad grantee; -ENOMEM when the table cannot grow).
 */
export function seedEntry(s: MachineState, base: number, ref: number, grantee: number, gfn: number): number {
  if (!Number.isInteger(ref) || ref < 0 || !Number.isInteger(grantee) || grantee < 0 || grantee >= 0x7ff0) return -XEN_ERRNO.EINVAL;
  if (!Number.isInteger(gfn) || gfn < 0) return -XEN_ERRNO.EINVAL;
  const frames = Math.floor(ref / GRANT_ENTRIES_PER_FRAME) + 1;
  if (frames > s.ctl[base + D_MAX_GNT_FRAMES]!) return -XEN_ERRNO.EINVAL;
  const g = growTable(s, base, Math.max(frames, s.ctl[base + D_GNT_FRAMES]!));
  if (g !== GNTST_okay) return -XEN_ERRNO.ENOMEM;
  const e = entryIndex(s, base, ref);
  if ((Atomics.load(s.mem32, e) & 0xffff) !== 0) return -XEN_ERRNO.EINVAL;
  Atomics.store(s.mem32, e + 1, gfn);
  Atomics.store(s.mem32, e, GTF_permit_access | (grantee << 16));
  return 0;
}

/** Frees the grant table and active entry frames (no pins may remain). */
export function freeTable(s: MachineState, base: number): void {
  const { ctl } = s;
  const n = ctl[base + D_GNT_FRAMES]!;
  for (let i = 0; i < n; i++) {
    putFrame(s, ctl[base + D_GNT_MFNS + i]!);
    putFrame(s, ctl[base + D_ACT_MFNS + 2 * i]!);
    putFrame(s, ctl[base + D_ACT_MFNS + 2 * i + 1]!);
  }
  ctl[base + D_XEN_FRAMES]! -= 3 * n;
  ctl[base + D_GNT_FRAMES] = 0;
}

/** Entries whose type is not GTF_invalid (what the guest has granted), reserved ones included. */
export function entriesInUse(s: MachineState, base: number): number {
  const n = nrGrantEntries(s, base);
  let used = 0;
  for (let ref = 0; ref < n; ref++) if ((s.mem32[entryIndex(s, base, ref)]! & GTF_type_mask) !== 0) used++;
  return used;
}

/**
 * Xen's _set_status_v1: validates the shared entry and sets GTF_reading (and GTF_writing) with a
 * bounded compare-exchange loop. `pinned` = the entry already has pins (type and domid were
 * checked then). Returns a GNTST.
 */
function setStatus(s: MachineState, ei: number, pinned: boolean, domid: number, readonly: boolean, mapping: boolean): number {
  const m = s.mem32;
  const mask = GTF_type_mask | (mapping ? GTF_sub_page : 0);
  let combo = m[ei]!; // a plain read: the compare-exchange below validates it
  for (let retries = 0; ; retries++) {
    const flags = combo & 0xffff;
    if (!pinned && ((flags & mask) !== GTF_permit_access || combo >>> 16 !== domid)) return GNTST_general_error;
    let nflags = flags | GTF_reading;
    if (!readonly) {
      if ((flags & GTF_readonly) !== 0) return GNTST_general_error;
      nflags |= GTF_writing;
    }
    const next = (combo & ~0xffff) | nflags;
    const prev = Atomics.compareExchange(m, ei, combo, next);
    if (prev === combo) return GNTST_okay;
    if (retries === SET_STATUS_RETRIES) return GNTST_general_error;
    combo = prev;
  }
}

/** Drops one pin of `ref` and clears GTF_writing / GTF_reading as Xen does when they go. */
function unpin(s: MachineState, gBase: number, ref: number, readonly: boolean): void {
  const m = s.mem32;
  const ai = activeIndex(s, gBase, ref);
  const rd = m[ai]! & 0xffff;
  const wr = m[ai]! >>> 16;
  const nrd = readonly ? rd - 1 : rd;
  const nwr = readonly ? wr : wr - 1;
  m[ai] = nrd | (nwr << 16);
  if (nrd + nwr === 0) {
    Atomics.and(m, entryIndex(s, gBase, ref), ~(GTF_reading | GTF_writing));
    s.ctl[gBase + D_PINNED]! -= 1;
  } else if (nwr === 0 && !readonly) {
    Atomics.and(m, entryIndex(s, gBase, ref), ~GTF_writing);
  }
}

/**
 * Pins `ref` of the domain at `gBase` for `domid`. On success returns the mfn (>= 0); otherwise
 * a GNTST (< 0). Bumps the frame's reference count.
 */
function pin(s: MachineState, gBase: number, ref: number, domid: number, readonly: boolean, mapping: boolean): number {
  const m = s.mem32;
  const ai = activeIndex(s, gBase, ref);
  const rd = m[ai]! & 0xffff;
  const wr = m[ai]! >>> 16;
  const pinned = rd + wr > 0;
  if (pinned && m[ai + 1] !== domid) return GNTST_general_error;
  if ((readonly ? rd : wr) >= PIN_MAX) return GNTST_general_error; // "Risk of counter overflow"
  const ei = entryIndex(s, gBase, ref);
  if (!pinned || (!readonly && wr === 0)) {
    const st = setStatus(s, ei, pinned, domid, readonly, mapping);
    if (st !== GNTST_okay) return st;
  }
  let mfn: number;
  if (!pinned) {
    const gfn = m[ei + 1]! >>> 0;
    mfn = ownGfnToMfn(s, gBase, gfn);
    if (mfn < 0) {
      Atomics.and(m, ei, ~(GTF_reading | GTF_writing));
      return GNTST_bad_page;
    }
    m[ai + 1] = domid;
    m[ai + 2] = mfn;
    m[ai + 3] = gfn;
    s.ctl[gBase + D_PINNED]! += 1;
  } else {
    mfn = m[ai + 2]!;
  }
  m[ai] = readonly ? rd + 1 | (wr << 16) : rd | ((wr + 1) << 16);
  getFrame(s, mfn);
  return mfn;
}

/** A free maptrack handle, growing the maptrack; -1 at the quota (`pending`: mappings not yet counted). */
function allocHandle(s: MachineState, base: number, pending: number): number {
  const { ctl } = s;
  if (ctl[base + D_MAPS_HELD]! + pending >= ctl[base + D_MAX_MAPS]!) return -1;
  const free = ctl[base + D_MAPTRACK_FREE]!;
  if (free >= 0) {
    ctl[base + D_MAPTRACK_FREE] = s.mem32[maptrackIndex(s, base, free) + 3]!;
    return free;
  }
  const top = ctl[base + D_MAPTRACK_TOP]!;
  const frames = ctl[base + D_MAPTRACK_FRAMES]!;
  if (top === frames * MAPTRACK_PER_FRAME) {
    const mfn = allocFrame(s, OWNER_XEN);
    if (mfn < 0) return -1;
    ctl[base + D_MAPTRACK_MFNS + frames] = mfn;
    ctl[base + D_MAPTRACK_FRAMES] = frames + 1;
    ctl[base + D_XEN_FRAMES]! += 1;
  }
  ctl[base + D_MAPTRACK_TOP] = top + 1;
  return top;
}

function freeHandle(s: MachineState, base: number, handle: number): void {
  const mi = maptrackIndex(s, base, handle);
  s.mem32[mi] = 0;
  s.mem32[mi + 3] = s.ctl[base + D_MAPTRACK_FREE]!;
  s.ctl[base + D_MAPTRACK_FREE] = handle;
}

/** The slot of the granting domain for a map or copy: running, or -1. */
function granter(s: MachineState, dom: number): number {
  return s.running(dom);
}

/** GNTTABOP_map_grant_ref for every operation of the batch, by the domain at `base`. */
export function mapBatch(s: MachineState, base: number, b: GrantMapBatch): void {
  const { ctl } = s;
  const m = s.mem32;
  const self = ctl[base + D_DOMID]!;
  // The granter of the previous operation (batches almost always map from one domain).
  let lastDom = -1;
  let gBase = -1;
  let gEntries = 0;
  let held = 0;
  let ofGranter = 0; // mappings of gBase's grants not yet counted
  b.handle.fill(0);
  b.mfn.fill(-1);
  for (let i = 0; i < b.count; i++) {
    const flags = b.flags[i]!;
    if ((flags & (GNTMAP_device_map | GNTMAP_host_map)) === 0) {
      b.status[i] = GNTST_bad_gntref;
      continue;
    }
    const host = (flags & GNTMAP_host_map) !== 0;
    const hostGfn = b.hostGfn[i]!;
    if (host && (!gfnInRange(s, base, hostGfn) || p2mGet(s, base, hostGfn) !== P2M_EMPTY)) {
      b.status[i] = GNTST_bad_virt_addr;
      continue;
    }
    const dom = b.dom[i]!;
    if (dom !== lastDom) {
      if (gBase >= 0) ctl[gBase + D_MAPS_OF_MINE] = ctl[gBase + D_MAPS_OF_MINE]! + ofGranter;
      ofGranter = 0;
      lastDom = dom;
      gBase = granter(s, dom);
      gEntries = gBase < 0 ? 0 : nrGrantEntries(s, gBase);
    }
    if (gBase < 0) {
      b.status[i] = GNTST_bad_domain;
      continue;
    }
    const handle = allocHandle(s, base, held);
    if (handle < 0) {
      b.status[i] = GNTST_no_space;
      continue;
    }
    const ref = b.ref[i]!;
    const readonly = (flags & GNTMAP_readonly) !== 0;
    const mfn = ref < gEntries ? pin(s, gBase, ref, self, readonly, true) : GNTST_bad_gntref;
    if (mfn < 0 || (host && !p2mSet(s, base, hostGfn, -(mfn + 1)))) {
      if (mfn >= 0) {
        putFrame(s, mfn);
        unpin(s, gBase, ref, readonly);
      }
      freeHandle(s, base, handle);
      b.status[i] = mfn < 0 ? mfn : GNTST_no_space;
      continue;
    }
    const mi = maptrackIndex(s, base, handle);
    m[mi] = MT_INUSE | (readonly ? MT_READONLY : 0) | (host ? MT_HOST : 0) | (dom << 16);
    m[mi + 1] = ref;
    m[mi + 2] = mfn;
    m[mi + 3] = host ? hostGfn : -1;
    held++;
    ofGranter++;
    b.status[i] = GNTST_okay;
    b.handle[i] = handle;
    b.mfn[i] = mfn;
  }
  ctl[base + D_MAPS_HELD] = ctl[base + D_MAPS_HELD]! + held;
  if (gBase >= 0) ctl[gBase + D_MAPS_OF_MINE] = ctl[gBase + D_MAPS_OF_MINE]! + ofGranter;
}

/** Remembers the last granter looked up while unmapping a batch. */
interface GranterCache {
  dom: number;
  base: number;
}

/**
 * Releases mapping `handle` of the domain at `base`. Returns GNTST_bad_handle for a handle that
 * is not a live mapping. A zombie granter whose last mapping this was is handed to `onZombieIdle`.
 */
export function unmapOne(s: MachineState, base: number, handle: number, onZombieIdle: (gBase: number) => void, cache?: GranterCache): number {
  const { ctl } = s;
  const m = s.mem32;
  if (!(handle >= 0 && handle < ctl[base + D_MAPTRACK_TOP]!) || handle !== Math.floor(handle)) return GNTST_bad_handle;
  const mi = maptrackIndex(s, base, handle);
  const w0 = m[mi]!;
  if ((w0 & MT_INUSE) === 0) return GNTST_bad_handle;
  const readonly = (w0 & MT_READONLY) !== 0;
  const ref = m[mi + 1]!;
  const mfn = m[mi + 2]!;
  if ((w0 & MT_HOST) !== 0) p2mSet(s, base, m[mi + 3]!, P2M_EMPTY);
  const dom = w0 >>> 16;
  let gBase: number;
  if (cache && cache.dom === dom) {
    gBase = cache.base;
  } else {
    gBase = s.anySlot(dom);
    if (cache) {
      cache.dom = dom;
      cache.base = gBase;
    }
  }
  if (gBase >= 0) {
    unpin(s, gBase, ref, readonly);
    ctl[gBase + D_MAPS_OF_MINE]! -= 1;
  }
  putFrame(s, mfn);
  m[mi] = 0;
  m[mi + 3] = ctl[base + D_MAPTRACK_FREE]!;
  ctl[base + D_MAPTRACK_FREE] = handle;
  ctl[base + D_MAPS_HELD]! -= 1;
  if (gBase >= 0 && ctl[gBase + D_MAPS_OF_MINE] === 0 && ctl[gBase + D_STATE] === DomainState.Zombie) {
    if (cache) cache.dom = -1; // the slot is about to be freed
    onZombieIdle(gBase);
  }
  return GNTST_okay;
}

export function unmapBatch(s: MachineState, base: number, b: GrantUnmapBatch, onZombieIdle: (gBase: number) => void): void {
  const cache: GranterCache = { dom: -1, base: -1 };
  for (let i = 0; i < b.count; i++) b.status[i] = unmapOne(s, base, b.handle[i]!, onZombieIdle, cache);
}

/** Unmaps every mapping the domain holds (domain teardown). */
export function unmapAll(s: MachineState, base: number, onZombieIdle: (gBase: number) => void): void {
  const top = s.ctl[base + D_MAPTRACK_TOP]!;
  for (let h = 0; h < top; h++) {
    if ((s.mem32[maptrackIndex(s, base, h)]! & MT_INUSE) !== 0) unmapOne(s, base, h, onZombieIdle);
  }
}

export function freeMaptrack(s: MachineState, base: number): void {
  const { ctl } = s;
  const n = ctl[base + D_MAPTRACK_FRAMES]!;
  for (let i = 0; i < n; i++) putFrame(s, ctl[base + D_MAPTRACK_MFNS + i]!);
  ctl[base + D_XEN_FRAMES]! -= n;
  ctl[base + D_MAPTRACK_FRAMES] = 0;
  ctl[base + D_MAPTRACK_TOP] = 0;
  ctl[base + D_MAPTRACK_FREE] = -1;
}

/** Resolved side of a copy: the frame, and how to undo a temporary pin. */
interface CopySide {
  mfn: number;
  gBase: number;
  ref: number;
  readonly: boolean;
}

function copySide(s: MachineState, base: number, p: GrantCopyPtr, isRef: boolean, write: boolean, out: CopySide): number {
  const self = s.ctl[base + D_DOMID]!;
  if (!Number.isInteger(p.offset) || p.offset < 0) return GNTST_bad_copy_arg;
  if (!isRef) {
    if (p.domid !== DOMID_SELF && p.domid !== self) return GNTST_permission_denied;
    const mfn = ownGfnToMfn(s, base, p.ref);
    if (mfn < 0) return GNTST_bad_page;
    out.mfn = mfn;
    out.gBase = -1;
    return GNTST_okay;
  }
  const gBase = granter(s, p.domid);
  if (gBase < 0) return GNTST_bad_domain;
  if (!Number.isInteger(p.ref) || p.ref < 0 || p.ref >= nrGrantEntries(s, gBase)) return GNTST_bad_gntref;
  const mfn = pin(s, gBase, p.ref, self, !write, false);
  if (mfn < 0) return mfn;
  out.mfn = mfn;
  out.gBase = gBase;
  out.ref = p.ref;
  out.readonly = !write;
  return GNTST_okay;
}

function releaseSide(s: MachineState, side: CopySide): void {
  if (side.gBase < 0) return;
  putFrame(s, side.mfn);
  unpin(s, side.gBase, side.ref, side.readonly);
}

/** GNTTABOP_copy of one operation by the domain at `base`; returns a GNTST. */
export function copyOne(s: MachineState, base: number, op: GrantCopyOp): number {
  if ((op.flags & ~(GNTCOPY_source_gref | GNTCOPY_dest_gref)) !== 0) return GNTST_general_error;
  if (!Number.isInteger(op.len) || op.len < 0 || op.source.offset + op.len > PAGE_SIZE || op.dest.offset + op.len > PAGE_SIZE) {
    return GNTST_bad_copy_arg;
  }
  const src: CopySide = { mfn: -1, gBase: -1, ref: 0, readonly: true };
  const dst: CopySide = { mfn: -1, gBase: -1, ref: 0, readonly: false };
  let st = copySide(s, base, op.source, (op.flags & GNTCOPY_source_gref) !== 0, false, src);
  if (st !== GNTST_okay) return st;
  st = copySide(s, base, op.dest, (op.flags & GNTCOPY_dest_gref) !== 0, true, dst);
  if (st !== GNTST_okay) {
    releaseSide(s, src);
    return st;
  }
  const from = src.mfn * PAGE_SIZE + op.source.offset;
  s.mem.copyWithin(dst.mfn * PAGE_SIZE + op.dest.offset, from, from + op.len);
  releaseSide(s, dst);
  releaseSide(s, src);
  return GNTST_okay;
}

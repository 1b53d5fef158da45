/**
 * A granter that keeps rewriting one grant entry from its thread (GTF_readonly on and off, the
 * grantee domid, the frame between two pages, sometimes the whole entry invalid), through the
 * grant table frames Xen maps into the guest, while the mapper maps and unmaps that ref over
 * and over (read-write and read-only, up to 3 mappings at once).
 *
 * The mapper checks every status is GNTST_okay or GNTST_general_error, that each mapping is of
 * one of the two frames (by mfn and by the marker the granter wrote in each page), and how long
 * each map takes (Xen's bounded compare-exchange retries: nothing may spin).
 */
import { GNTST_general_error, GNTST_okay, GTF_permit_access, GTF_readonly, GTF_reading, GTF_writing } from '../../../src/abi/grant-table.js';
import { type DomainContext, GrantMapBatch, type GrantMapping, GrantUnmapBatch } from '../../../src/hypervisor/index.js';
import { alloc, check, mapMailbox, put, until, words, yieldNow } from './hv-shared.js';

// Mailbox words.
export const G_STATE = 0; // 1 published, 2 flipping, 3 restored and ended
export const M_STATE = 1; // 1 done mapping (all unmapped)
export const REF = 2;
export const MFN_A = 3;
export const MFN_B = 4;
export const FLIPS = 5;
export const MAPS_OK = 6;
export const MAPS_GENERAL = 7;
export const MAPS_OTHER = 8; // any other status (must stay 0)
export const BAD_FRAME = 9; // a mapping of neither frame (must stay 0)
export const BAD_MARKER = 10;
export const MAX_MAP_US = 11; // slowest map hypercall
export const UNMAP_BAD = 12; // unmaps that did not return okay (must stay 0)
export const OK_A = 13;
export const OK_B = 14;
export const OK_RO = 15;
export const OK_RW = 16;
export const MAPS = 17;
export const LAST_OTHER = 18; // the last unexpected status, for the message

export const MARKER_A = 0x4141_0001;
export const MARKER_B = 0x4242_0002;

export interface RaceArgs {
  readonly role: 'granter' | 'mapper';
  readonly mailboxRef: number;
  readonly peer: number;
  /** mapper: how long to keep mapping. */
  readonly ms: number;
}

/** Cheap deterministic PRNG (xorshift32). */
function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

async function granter(ctx: DomainContext, a: RaceArgs, mb: Int32Array): Promise<void> {
  const p = ctx.platform;
  const [gA, gB] = [alloc(p, 1)[0]!, alloc(p, 1)[0]!];
  const pA = words(p.memory.page(gA)!);
  const pB = words(p.memory.page(gB)!);
  pA.fill(MARKER_A);
  pB.fill(MARKER_B);
  const ref = p.grants.grantAccess(a.peer, gA, false);
  check(ref > 0, `granter: grantAccess failed: ${ref}`);
  const frame = p.hypercalls.gnttabFrames()[ref >>> 9]!;
  const w0 = (ref & 511) * 2; // flags | domid << 16
  const w1 = w0 + 1; // frame
  Atomics.store(mb, MFN_A, p.hypercalls.gfnToMfn(gA));
  Atomics.store(mb, MFN_B, p.hypercalls.gfnToMfn(gB));
  Atomics.store(mb, REF, ref);
  put(mb, G_STATE, 2);

  const next = rng(0x9e3779b9);
  const stranger = a.peer + 1000;
  let flips = 0;
  while (Atomics.load(mb, M_STATE) === 0) {
    for (let i = 0; i < 256; i++) {
      const r = next();
      const type = (r & 7) === 0 ? 0 : GTF_permit_access; // sometimes invalid altogether
      const ro = r & 8 ? GTF_readonly : 0;
      const domid = r & 0x30 ? a.peer : stranger;
      const gfn = r & 0x40 ? gA : gB;
      const combo = (type | ro | (domid << 16)) | 0;
      if (r & 0x80) Atomics.store(frame, w1, gfn); // the frame before or after the flags
      if (r & 0x100) {
        // A careless guest: a plain store that also wipes GTF_reading / GTF_writing.
        Atomics.store(frame, w0, combo);
      } else {
        // A compare-exchange that keeps the status bits Xen owns.
        const cur = Atomics.load(frame, w0);
        Atomics.compareExchange(frame, w0, cur, combo | (cur & (GTF_reading | GTF_writing)));
      }
      if (!(r & 0x80)) Atomics.store(frame, w1, gfn);
      flips++;
    }
    if ((flips & 0xffff) === 0) await yieldNow();
  }
  Atomics.store(mb, FLIPS, flips);
  // The mapper has unmapped everything: nothing of ours is pinned any more.
  const acct = p.hypercalls.accounting()!;
  check(acct.mapsOfMine === 0 && acct.grantEntriesPinned === 0, () => `granter: still mapped: ${JSON.stringify(acct)}`);
  Atomics.store(frame, w0, GTF_permit_access | (a.peer << 16));
  Atomics.store(frame, w1, gA);
  check(p.grants.tryEndAccess(ref), 'granter: the ref is still in use');
  check(p.memory.freePages([gA, gB]) === 0, 'granter: freePages failed');
  put(mb, G_STATE, 3);
}

async function mapper(ctx: DomainContext, a: RaceArgs, mb: Int32Array): Promise<void> {
  const p = ctx.platform;
  await until(mb, G_STATE, (v) => v === 2, 10_000, 'mapper: the granter');
  const ref = Atomics.load(mb, REF);
  const mfnA = Atomics.load(mb, MFN_A);
  const mfnB = Atomics.load(mb, MFN_B);
  const next = rng(0x2545f491);
  // Mappings held: a raw handle (GNTTABOP_map_grant_ref) or a GrantMapping (platform.maps).
  const held: (number | GrantMapping)[] = [];
  const unmapOne = (i: number): void => {
    const h = held[i]!;
    let st: number;
    if (typeof h === 'number') {
      const u = GrantUnmapBatch.of([h]);
      p.hypercalls.gnttabUnmap(u);
      st = u.status[0]!;
    } else {
      st = p.maps.unmap(h);
    }
    if (st !== GNTST_okay) Atomics.add(mb, UNMAP_BAD, 1);
    held.splice(i, 1);
  };
  const counted = (st: number, readonly: boolean, which: number | undefined): void => {
    if (st === GNTST_okay) {
      Atomics.add(mb, MAPS_OK, 1);
      Atomics.add(mb, readonly ? OK_RO : OK_RW, 1);
      Atomics.add(mb, which === MARKER_A ? OK_A : which === MARKER_B ? OK_B : BAD_FRAME, 1);
    } else if (st === GNTST_general_error) {
      Atomics.add(mb, MAPS_GENERAL, 1);
    } else {
      Atomics.add(mb, MAPS_OTHER, 1);
      Atomics.store(mb, LAST_OTHER, st);
    }
  };
  let maxUs = 0;
  const end = performance.now() + a.ms;
  let n = 0;
  while (performance.now() < end) {
    const r = next();
    if (held.length === 3 || (held.length > 0 && r & 1)) unmapOne(r % held.length);
    const readonly = (r & 2) !== 0;
    const word = (r >>> 4) & 1023;
    const t0 = performance.now();
    if (r & 4) {
      // The hypercall itself: its mfn must be one of the two frames, holding that frame's marker.
      const b = GrantMapBatch.of(a.peer, [ref], readonly);
      p.hypercalls.gnttabMap(b);
      maxUs = Math.max(maxUs, (performance.now() - t0) * 1000);
      const st = b.status[0]!;
      const mfn = b.mfn[0]!;
      const which = st !== GNTST_okay ? undefined : mfn === mfnA ? MARKER_A : mfn === mfnB ? MARKER_B : undefined;
      counted(st, readonly, which);
      if (st === GNTST_okay) {
        if (which !== undefined && Atomics.load(words(p.state.frame(mfn)), word) !== which) Atomics.add(mb, BAD_MARKER, 1);
        held.push(b.handle[0]!);
      }
    } else {
      // The platform API: the mapping's page holds one of the two markers.
      const res = p.maps.map(a.peer, [ref], readonly);
      maxUs = Math.max(maxUs, (performance.now() - t0) * 1000);
      if (res.ok) {
        const marker = Atomics.load(words(res.mapping.page(0)), word);
        counted(GNTST_okay, readonly, marker === MARKER_A || marker === MARKER_B ? marker : undefined);
        held.push(res.mapping);
      } else {
        counted(res.status, readonly, undefined);
      }
    }
    n++;
    if ((n & 1023) === 0) await yieldNow();
  }
  while (held.length > 0) unmapOne(0);
  Atomics.store(mb, MAX_MAP_US, Math.round(maxUs));
  Atomics.store(mb, MAPS, n);
  const acct = p.hypercalls.accounting()!;
  check(acct.mapsHeld === 1, () => `mapper: still holds ${acct.mapsHeld - 1} mappings`);
  put(mb, M_STATE, 1);
}

export default async function main(ctx: DomainContext): Promise<void> {
  const a = ctx.args as RaceArgs;
  const { mb, mapping } = mapMailbox(ctx.platform, a.mailboxRef);
  if (a.role === 'granter') await granter(ctx, a, mb);
  else await mapper(ctx, a, mb);
  if (a.role === 'mapper') await until(mb, G_STATE, (v) => v === 3, 10_000, 'mapper: granter to end');
  check(ctx.platform.maps.unmap(mapping) === GNTST_okay, 'mailbox unmap failed');
}

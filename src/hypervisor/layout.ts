/**
 * Where the emulated hypervisor keeps its state: two SharedArrayBuffers every thread attaches to.
 *
 * - `memory`: machine memory, `nrFrames` frames of 4096 bytes. Guest RAM and the hypervisor's own
 *   structures that guests see byte for byte (grant table frames, event channel bitmaps) live here.
 * - `control`: the hypervisor's private tables as Int32 words: a header with the big lock, the
 *   frame table (owner, reference count, allocation bitmap), a domid -> slot index and one fixed
 *   block of words per domain slot.
 *
 * Nothing here does IO or locking; it only says where things are.
 */

import { XEN_PAGE_SIZE } from '../abi/page-directory.js';

/** Machine frames are Xen pages. */
export const PAGE_SIZE = XEN_PAGE_SIZE;

/** Hypervisor-internal structures stored in machine frames (Xen heap pages). */
export const ACTIVE_ENTRY_WORDS = 4; // pins, domid, mfn, gfn
export const ACTIVE_PER_FRAME = PAGE_SIZE / (ACTIVE_ENTRY_WORDS * 4); // 256
export const MAPTRACK_ENTRY_WORDS = 4; // flags|domid, ref, mfn, host gfn / free link
export const MAPTRACK_PER_FRAME = PAGE_SIZE / (MAPTRACK_ENTRY_WORDS * 4); // 256
export const PORT_ENTRY_WORDS = 4; // state, remote domid, remote port, flags
export const PORTS_PER_FRAME = PAGE_SIZE / (PORT_ENTRY_WORDS * 4); // 256
export const P2M_PER_FRAME = PAGE_SIZE / 4; // 1024 gfns per p2m leaf

/** Hard ceilings of the slot layout (per-domain quotas are configured below these). */
export const LIMIT_GRANT_FRAMES = 256; // 131072 grant entries
export const LIMIT_MAPTRACK_FRAMES = 1024; // 262144 mappings held
export const LIMIT_P2M_LEAVES = 1024; // 1M gfns = 4 GiB guest-physical space
export const LIMIT_PORTS = 4096; // the 2-level event channel ABI's limit on 64-bit
export const PORT_FRAMES = LIMIT_PORTS / PORTS_PER_FRAME; // 16

/** Shared-info frame (one per domain, hypervisor-owned): event channel bitmaps as Int32 words. */
export const SHINFO_PENDING_WORD = 0; // 128 words = 4096 pending bits
export const SHINFO_MASK_WORD = 128; // 128 words = 4096 mask bits

// ---- control header (Int32 word indices) ----
export const H_MAGIC = 0;
export const H_LOCK = 1;
export const H_NR_FRAMES = 2;
export const H_MAX_DOMAINS = 3;
export const H_FREE_FRAMES = 4;
export const H_ALLOC_HINT = 5;
export const H_NEXT_CPU = 6;
export const H_NEXT_DOMID = 7;
export const H_XEN_FRAMES = 8;
export const H_LOCK_BREAKS = 9;
export const H_GENERATION = 10;
export const HEADER_WORDS = 16;
export const CONTROL_MAGIC = 0x5644_5350; // "VDSP"

/** Lock word: 0 = free, else the owner's cpu id, plus this bit when someone sleeps on it. */
export const LOCK_WAITERS = 1 << 30;

export const FRAME_FREE = -1;
/** Owner of Xen heap frames (grant table frames, p2m leaves, maptrack...). */
export const OWNER_XEN = 0x7ff2; // DOMID_XEN

export const DOMID_COUNT = 0x7ff0; // DOMID_FIRST_RESERVED: valid domids are 0..0x7fef

// ---- domain slot (Int32 word offsets inside a slot) ----
export const DomainState = {
  Free: 0,
  Running: 1,
  /** Destruction in progress: every hypercall by or on it fails. */
  Dying: 2,
  /** Destroyed, but other domains still map some of its grants; freed when the last goes. */
  Zombie: 3,
} as const;

export const D_STATE = 0;
export const D_DOMID = 1;
export const D_FLAGS = 2;
export const D_CPU = 3;
/** The wake word: set to 1 and notified when an event is pending and unmasked. */
export const D_UPCALL = 4;
export const D_MAX_PAGES = 5;
export const D_MAX_GNT_FRAMES = 6;
export const D_MAX_MAPS = 7;
export const D_MAX_PORTS = 8;
export const D_PAGES = 9;
export const D_GNT_FRAMES = 10;
export const D_MAPS_HELD = 11;
export const D_MAPS_OF_MINE = 12;
export const D_PORTS = 13;
export const D_MAPTRACK_FRAMES = 14;
export const D_MAPTRACK_FREE = 15;
export const D_MAPTRACK_TOP = 16;
export const D_SHINFO_MFN = 17;
export const D_XEN_FRAMES = 18;
export const D_GFN_LIMIT = 19;
export const D_SHUTDOWN = 20;
export const D_PORT_FRAMES = 21;
export const D_PINNED = 22; // active grant entries with pins > 0
export const D_CREATED_GEN = 23;
export const D_GNT_MFNS = 32;
export const D_ACT_MFNS = D_GNT_MFNS + LIMIT_GRANT_FRAMES;
export const D_MAPTRACK_MFNS = D_ACT_MFNS + 2 * LIMIT_GRANT_FRAMES;
export const D_P2M_DIR = D_MAPTRACK_MFNS + LIMIT_MAPTRACK_FRAMES;
export const D_PORT_MFNS = D_P2M_DIR + LIMIT_P2M_LEAVES;
export const DOMAIN_WORDS = D_PORT_MFNS + PORT_FRAMES;

export const DOMFLAG_PRIVILEGED = 1;
/** The domain's code runs in a thread of its own (a worker), recorded in D_CPU. */
export const DOMFLAG_OWN_THREAD = 2;

/** Sizing of one emulated machine. */
export interface MachineConfig {
  /** Machine memory in MiB (frames of 4 KiB). */
  readonly memoryMiB: number;
  /** How many domains can exist at once (slots). */
  readonly maxDomains: number;
}

export const DEFAULT_MACHINE_CONFIG: MachineConfig = { memoryMiB: 256, maxDomains: 32 };

/** Per-domain limits, set at creation (xl.cfg's max_grant_frames, maxmem, ...). */
export interface DomainLimits {
  /** Pages of RAM the domain may populate. */
  readonly maxPages: number;
  /** Grant table frames it may grow to (512 entries each). Xen's default: 64. */
  readonly maxGrantFrames: number;
  /** Grant mappings it may hold at once (maptrack entries). */
  readonly maxMaps: number;
  /** Event channel ports. */
  readonly maxPorts: number;
  /** Size of its guest-physical address space in pages (populated or ballooned). */
  readonly gfnLimit: number;
}

export const DEFAULT_DOMAIN_LIMITS: DomainLimits = {
  maxPages: 65536,
  maxGrantFrames: 64,
  maxMaps: 65536,
  maxPorts: 1024,
  gfnLimit: 262144,
};

/**
 * Special pages at the top of a guest's gfn space, as HVM guests have them: the domain builder
 * places the xenstore ring there (the others are spare) and the guest's page allocator never
 * hands them out. Domains
 * with fewer than 1024 gfns have none.
 */
export const SPECIAL_PAGES = 16;
export const SPECIAL_PAGE_XENSTORE = 0;

/** First special gfn (== gfnLimit when the domain has none). */
export function specialGfnBase(gfnLimit: number): number {
  return gfnLimit >= 1024 ? gfnLimit - SPECIAL_PAGES : gfnLimit;
}

export interface ControlLayout {
  readonly nrFrames: number;
  readonly maxDomains: number;
  readonly frameOwner: number; // word offset of Int32[nrFrames]
  readonly frameRefs: number; // word offset of Int32[nrFrames]
  readonly frameBitmap: number; // word offset of Int32[ceil(nrFrames/32)], bit set = allocated
  readonly domidIndex: number; // word offset of Int32[DOMID_COUNT]: slot + 1, 0 = none
  readonly slots: number; // word offset of the first domain slot
  readonly words: number;
}

export function controlLayout(nrFrames: number, maxDomains: number): ControlLayout {
  const frameOwner = HEADER_WORDS;
  const frameRefs = frameOwner + nrFrames;
  const frameBitmap = frameRefs + nrFrames;
  const domidIndex = frameBitmap + Math.ceil(nrFrames / 32);
  const slots = domidIndex + DOMID_COUNT;
  const words = slots + maxDomains * DOMAIN_WORDS;
  return { nrFrames, maxDomains, frameOwner, frameRefs, frameBitmap, domidIndex, slots, words };
}

/** What a thread needs to attach to a machine (structured-cloneable: postMessage/workerData). */
export interface SharedMachine {
  readonly control: SharedArrayBuffer;
  readonly memory: SharedArrayBuffer;
}

/** Validates a machine config; returns an error message or undefined. */
export function checkMachineConfig(c: MachineConfig): string | undefined {
  if (!Number.isInteger(c.memoryMiB) || c.memoryMiB < 1 || c.memoryMiB > 16384) {
    return `memoryMiB must be an integer in 1..16384, got ${c.memoryMiB}`;
  }
  if (!Number.isInteger(c.maxDomains) || c.maxDomains < 1 || c.maxDomains > 1024) {
    return `maxDomains must be an integer in 1..1024, got ${c.maxDomains}`;
  }
  return undefined;
}

/** Validates domain limits against the slot layout's ceilings; returns an error message or undefined. */
export function checkDomainLimits(l: DomainLimits): string | undefined {
  const rules: [keyof DomainLimits, number, number][] = [
    ['maxPages', 0, LIMIT_P2M_LEAVES * P2M_PER_FRAME],
    ['maxGrantFrames', 1, LIMIT_GRANT_FRAMES],
    ['maxMaps', 0, LIMIT_MAPTRACK_FRAMES * MAPTRACK_PER_FRAME],
    ['maxPorts', 1, LIMIT_PORTS],
    ['gfnLimit', 1, LIMIT_P2M_LEAVES * P2M_PER_FRAME],
  ];
  for (const [k, lo, hi] of rules) {
    const v = l[k];
    if (!Number.isInteger(v) || v < lo || v > hi) return `${k} must be an integer in ${lo}..${hi}, got ${v}`;
  }
  return undefined;
}

/**
 * One thread's views of a machine's shared state, and the small accessors every part of the
 * hypervisor uses (domain slots, the domid index). No locking here: callers hold the big lock.
 */
import {
  CONTROL_MAGIC, type ControlLayout, controlLayout, D_CPU, D_DOMID, D_FLAGS, D_STATE, DOMFLAG_OWN_THREAD, DOMAIN_WORDS, DOMID_COUNT,
  DomainState, H_FREE_FRAMES, LOCK_WAITERS, H_MAGIC, H_MAX_DOMAINS, H_NEXT_CPU, H_NEXT_DOMID, H_NR_FRAMES, PAGE_SIZE, type SharedMachine,
} from './layout.js';

export class MachineState {
  readonly ctl: Int32Array;
  readonly mem: Uint8Array;
  readonly mem32: Int32Array;
  /** 64-bit view of memory, for zeroing: filling a SharedArrayBuffer is ~5x faster in 8-byte words. */
  readonly mem64: BigInt64Array;
  readonly layout: ControlLayout;
  /** This thread's cpu id: what it writes in the lock word while it holds it. */
  readonly cpu: number;

  /** `cpu`: the id the parent allocated for this thread (allocateCpu), or a new one. */
  constructor(readonly shared: SharedMachine, cpu?: number) {
    this.ctl = new Int32Array(shared.control);
    this.mem = new Uint8Array(shared.memory);
    this.mem32 = new Int32Array(shared.memory);
    this.mem64 = new BigInt64Array(shared.memory);
    if (this.ctl[H_MAGIC] !== CONTROL_MAGIC) throw new Error('not a vdispl machine control block');
    this.layout = controlLayout(this.ctl[H_NR_FRAMES]!, this.ctl[H_MAX_DOMAINS]!);
    if (this.layout.words * 4 !== shared.control.byteLength || this.layout.nrFrames * PAGE_SIZE !== shared.memory.byteLength) {
      throw new Error('machine control block and memory sizes disagree');
    }
    this.cpu = cpu ?? this.allocateCpu();
  }

  /** A new cpu id (what a thread writes in the lock word), for this thread or a worker about to start. */
  allocateCpu(): number {
    const cpu = Atomics.add(this.ctl, H_NEXT_CPU, 1);
    if (cpu >= LOCK_WAITERS) throw new Error('too many threads attached to this machine');
    return cpu;
  }

  /** Whether `cpu` runs a worker domain that is dying (its lock may be taken over: see lock.ts). */
  readonly isDyingWorkerCpu = (cpu: number): boolean => {
    const { ctl } = this;
    for (let i = 0; i < this.layout.maxDomains; i++) {
      const b = this.slotBase(i);
      if (ctl[b + D_CPU] === cpu && ctl[b + D_STATE] === DomainState.Dying && (ctl[b + D_FLAGS]! & DOMFLAG_OWN_THREAD) !== 0) return true;
    }
    return false;
  };

  get nrFrames(): number {
    return this.layout.nrFrames;
  }

  /** Word offset of slot `slot` in `ctl`. */
  slotBase(slot: number): number {
    return this.layout.slots + slot * DOMAIN_WORDS;
  }

  /** Word offset of the slot of a live (Running) domain, or -1. */
  running(domid: number): number {
    const b = this.anySlot(domid);
    return b >= 0 && this.ctl[b + D_STATE] === DomainState.Running ? b : -1;
  }

  /** Word offset of the slot holding `domid` in any state (running, dying or zombie), or -1. */
  anySlot(domid: number): number {
    if (!Number.isInteger(domid) || domid < 0 || domid >= DOMID_COUNT) return -1;
    const s = this.ctl[this.layout.domidIndex + domid]!;
    return s === 0 ? -1 : this.slotBase(s - 1);
  }

  domidOf(base: number): number {
    return this.ctl[base + D_DOMID]!;
  }

  /** Zero-copy view of one machine frame. */
  frame(mfn: number): Uint8Array {
    return new Uint8Array(this.shared.memory, mfn * PAGE_SIZE, PAGE_SIZE);
  }

  /** Zero-copy view of `count` adjacent machine frames starting at `mfn`. */
  frames(mfn: number, count: number): Uint8Array {
    return new Uint8Array(this.shared.memory, mfn * PAGE_SIZE, count * PAGE_SIZE);
  }
}

/** Allocates and initialises the shared buffers of a new machine. */
export function createSharedMachine(nrFrames: number, maxDomains: number): SharedMachine {
  const l = controlLayout(nrFrames, maxDomains);
  const control = new SharedArrayBuffer(l.words * 4);
  const memory = new SharedArrayBuffer(nrFrames * PAGE_SIZE);
  const ctl = new Int32Array(control);
  ctl[H_NR_FRAMES] = nrFrames;
  ctl[H_MAX_DOMAINS] = maxDomains;
  ctl.fill(-1, l.frameOwner, l.frameOwner + nrFrames);
  ctl[H_FREE_FRAMES] = nrFrames;
  ctl[H_NEXT_CPU] = 1;
  ctl[H_NEXT_DOMID] = 1;
  ctl[H_MAGIC] = CONTROL_MAGIC;
  return { control, memory };
}

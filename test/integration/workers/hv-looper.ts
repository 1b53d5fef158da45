/**
 * A domain that holds a few resources (pages granted to dom0, a port for dom0, the mailbox
 * mapping) and then either loops on hypercalls until destroyed ('loop'), or dies inside a
 * hypercall ('die-in-hypercall'): it takes the big lock as every hypercall does and its thread
 * exits before releasing it, which is what a worker killed mid-hypercall leaves behind.
 */
import type { DomainContext } from '../../../src/hypervisor/index.js';
import { acquire } from '../../../src/hypervisor/lock.js';
import { alloc, bump, check, mapMailbox, put, yieldNow } from './hv-shared.js';

export const LSTATE = 0; // + index: 1 once started
export const LPROG = 64; // + index: iterations

export interface LooperArgs {
  readonly mode: 'loop' | 'die-in-hypercall';
  readonly mailboxRef: number;
  readonly index: number;
}

export default async function main(ctx: DomainContext): Promise<void> {
  const a = ctx.args as LooperArgs;
  const p = ctx.platform;
  const { mb } = mapMailbox(p, a.mailboxRef);
  const held = alloc(p, 2);
  check(typeof p.grants.grantAccessBatch(0, held, false) !== 'number', 'grant failed');
  check(p.events.allocUnbound(0) > 0, 'allocUnbound failed');
  put(mb, LSTATE + a.index, 1);
  if (a.mode === 'die-in-hypercall') {
    acquire(p.state.ctl, p.state.cpu);
    process.exit(3);
  }
  for (;;) {
    for (let k = 0; k < 32; k++) {
      const g = p.memory.allocPages(1);
      if (typeof g !== 'number') p.memory.freePages(g);
      const u = p.events.allocUnbound(0);
      if (u > 0) p.events.close(u);
      p.hypercalls.gfnToMfn(held[0]!);
      p.hypercalls.accounting();
    }
    bump(mb, LPROG + a.index);
    await yieldNow();
  }
}

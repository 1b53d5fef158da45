/**
 * Coalescing across threads. The sender sends bursts of notifications as fast as it can, writing
 * a sequence number in the mailbox before each; the receiver's handler records the latest number
 * it sees and then stays busy for 2 ms (its thread blocked). Many sends land while the handler
 * runs and coalesce into one pending bit, so there are far fewer handler calls than sends; but
 * the send after which the handler has not yet run always leaves the port pending, so the
 * receiver sees the last number of every burst (the sender waits for that before the next).
 */
import type { DomainContext } from '../../../src/hypervisor/index.js';
import { GNTST_okay } from '../../../src/abi/grant-table.js';
import { bump, check, deferred, guard, mapMailbox, put, until } from './hv-shared.js';

// Mailbox words.
export const READY = 0;
export const SEQ = 1;
export const SEEN = 2;
export const CALLS = 3;
export const DONE = 4;
export const SENT = 5;
export const PORT = 6; // the sender's port, allocated by dom0 for the receiver
export const BACKWARDS = 7; // receiver saw the sequence go back (must stay 0)
export const DURING = 8; // handler calls during which more sends arrived

export interface CoalesceArgs {
  readonly role: 'sender' | 'receiver';
  readonly mailboxRef: number;
  readonly peer: number;
  readonly bursts: number;
  readonly perBurst: number;
  /** How long the receiver's handler keeps its thread busy. */
  readonly busyMs: number;
  /** Sender: spin this long between sends, so a burst spans several handler calls. */
  readonly gapMicros: number;
}

function spin(micros: number): void {
  const end = performance.now() + micros / 1000;
  while (performance.now() < end);
}

export default async function main(ctx: DomainContext): Promise<void> {
  const a = ctx.args as CoalesceArgs;
  const p = ctx.platform;
  const { mb, mapping } = mapMailbox(p, a.mailboxRef);
  const senderPort = await until(mb, PORT, (v) => v > 0, 10_000, 'the sender port from dom0');
  if (a.role === 'receiver') {
    const port = p.events.bindInterdomain(a.peer, senderPort);
    check(port > 0, `receiver: bind failed: ${port}`);
    const failed = deferred<never>();
    const block = new Int32Array(new SharedArrayBuffer(4));
    let last = 0;
    p.events.on(
      port,
      guard(failed, () => {
        bump(mb, CALLS);
        const s = Atomics.load(mb, SEQ);
        if (s < last) bump(mb, BACKWARDS);
        last = s;
        put(mb, SEEN, s);
        Atomics.wait(block, 0, 0, a.busyMs); // busy: the thread does nothing else meanwhile
        if (Atomics.load(mb, SEQ) !== s) bump(mb, DURING);
      }),
    );
    put(mb, READY, 1);
    await Promise.race([until(mb, DONE, (v) => v === 1, 30_000, 'receiver: sender to finish'), failed.promise]);
    p.events.off(port);
    check(p.events.close(port) === 0, 'receiver: close failed');
  } else {
    await until(mb, READY, (v) => v === 1, 10_000, 'sender: receiver to bind');
    let seq = 0;
    for (let b = 0; b < a.bursts; b++) {
      for (let j = 0; j < a.perBurst; j++) {
        Atomics.store(mb, SEQ, ++seq);
        check(p.events.notify(senderPort) === 0, 'sender: notify failed');
        spin(a.gapMicros);
      }
      const want = seq;
      await until(mb, SEEN, (v) => v === want, 5_000, `the receiver to see send ${want}, the last of burst ${b}`);
    }
    Atomics.store(mb, SENT, seq);
    put(mb, DONE, 1);
    check(p.events.close(senderPort) === 0, 'sender: close failed');
  }
  check(p.maps.unmap(mapping) === GNTST_okay, 'mailbox unmap failed');
}

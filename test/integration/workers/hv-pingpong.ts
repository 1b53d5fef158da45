/**
 * Event channel ping-pong. Ping writes round i in the mailbox and notifies; pong, woken by the
 * event, echoes i and notifies back; ping starts round i + 1 only once it sees the echo. Events
 * carry no data, so spurious ones (the one a bind raises) are harmless, and a lost wakeup stops
 * the exchange (the deadline fails it). Both sides are exported for dom0 to play either.
 */
import type { DomainContext, EmulatedPlatform } from '../../../src/hypervisor/index.js';
import { GNTST_okay } from '../../../src/abi/grant-table.js';
import { check, deferred, guard, mapMailbox, put, until, within } from './hv-shared.js';

// Mailbox words.
export const READY = 0; // pong bound and listening
export const PING = 1;
export const PONG = 2;
export const DONE = 3; // ping finished
export const ELAPSED_US = 4;
export const PING_CALLS = 5; // ping handler invocations
export const PONG_CALLS = 6;
export const PORT = 7; // ping's port (allocated by dom0 once both domains exist)

export interface PingPongArgs {
  readonly role: 'ping' | 'pong';
  readonly mailboxRef: number;
  readonly rounds: number;
  /** pong: the ping domain. */
  readonly peer: number;
}

/** Runs `rounds` round trips on `port` (ours, bound by pong). */
export async function runPing(p: EmulatedPlatform, mb: Int32Array, port: number, rounds: number): Promise<void> {
  await until(mb, READY, (v) => v === 1, 10_000, 'ping: pong to bind');
  const done = deferred();
  let i = 1;
  let calls = 0;
  p.events.on(
    port,
    guard(done, () => {
      calls++;
      if (Atomics.load(mb, PONG) !== i) return; // spurious: no new echo
      if (i === rounds) {
        done.resolve();
        return;
      }
      i++;
      Atomics.store(mb, PING, i);
      check(p.events.notify(port) === 0, 'ping: notify failed');
    }),
  );
  const t0 = performance.now();
  Atomics.store(mb, PING, 1);
  check(p.events.notify(port) === 0, 'ping: notify failed');
  await within(done.promise, 20_000, () => `ping-pong stuck at round ${i} of ${rounds} (pong echoed ${Atomics.load(mb, PONG)}): a wakeup was lost`);
  Atomics.store(mb, ELAPSED_US, Math.round((performance.now() - t0) * 1000));
  Atomics.store(mb, PING_CALLS, calls);
  p.events.off(port);
  put(mb, DONE, 1);
}

/** Binds to `peerPort` of `peer` and echoes until ping is done. */
export async function runPong(p: EmulatedPlatform, mb: Int32Array, peer: number, peerPort: number): Promise<void> {
  const port = p.events.bindInterdomain(peer, peerPort);
  check(port > 0, `pong: bindInterdomain failed: ${port}`);
  const failed = deferred<never>();
  let last = 0;
  let calls = 0;
  p.events.on(
    port,
    guard(failed, () => {
      calls++;
      const v = Atomics.load(mb, PING);
      if (v <= last) return;
      check(v === last + 1, () => `pong: round ${v} after ${last}`);
      last = v;
      Atomics.store(mb, PONG, v);
      check(p.events.notify(port) === 0, 'pong: notify failed');
    }),
  );
  put(mb, READY, 1);
  await Promise.race([until(mb, DONE, (v) => v === 1, 30_000, 'pong: ping to finish'), failed.promise]);
  Atomics.store(mb, PONG_CALLS, calls);
  p.events.off(port);
  check(p.events.close(port) === 0, 'pong: close failed');
}

export default async function main(ctx: DomainContext): Promise<void> {
  const a = ctx.args as PingPongArgs;
  const p = ctx.platform;
  const { mb, mapping } = mapMailbox(p, a.mailboxRef);
  const port = await until(mb, PORT, (v) => v > 0, 10_000, 'the ping port from dom0');
  if (a.role === 'ping') {
    await runPing(p, mb, port, a.rounds);
    // Whichever end closes first leaves the other unbound; closing that works too.
    check(p.events.close(port) === 0, 'ping: close failed');
  } else {
    await runPong(p, mb, a.peer, port);
  }
  check(p.maps.unmap(mapping) === GNTST_okay, 'mailbox unmap failed');
}

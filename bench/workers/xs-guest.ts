/**
 * A guest for the xenstore benchmark: first an event channel ping-pong with dom0 (the limit for
 * anything over the ring), then `rounds` XS_READ and XS_WRITE round trips over its xenstore ring;
 * latencies (µs) go to the log as `RESULT {...}`.
 */
import type { DomainContext } from '../../src/hypervisor/index.js';
import { connectGuest } from '../../src/xenstore/client-transports.js';

interface Args {
  readonly rounds: number;
}

export default async function main(ctx: DomainContext): Promise<void> {
  const { rounds } = ctx.args as Args;
  const ev = ctx.platform.events;
  const xs = connectGuest(ctx.platform, ctx.startInfo);

  // Event channel ping-pong with dom0, which binds the port it finds in data/ping-port and echoes.
  const port = ev.allocUnbound(0);
  let wake: () => void = () => undefined;
  ev.on(port, () => wake());
  const hello = new Promise<void>((r) => (wake = r));
  await xs.write('data/ping-port', String(port));
  await hello;
  const evtchn = new Float64Array(rounds);
  for (let i = 0; i < rounds; i++) {
    const back = new Promise<void>((r) => (wake = r));
    const t = performance.now();
    ev.notify(port);
    await back;
    evtchn[i] = (performance.now() - t) * 1000;
  }
  ev.off(port);
  ev.close(port);

  await xs.write('data/bench', 'x'.repeat(64));
  for (let i = 0; i < 3000; i++) {
    // Untimed: let the JIT settle first (the bench does the same on the other paths).
    await xs.read('data/bench');
    await xs.write('data/bench', 'x'.repeat(64));
  }
  const read = new Float64Array(rounds);
  const write = new Float64Array(rounds);
  const value = 'y'.repeat(64);
  for (let i = 0; i < rounds; i++) {
    let t = performance.now();
    await xs.read('data/bench');
    read[i] = (performance.now() - t) * 1000;
    t = performance.now();
    await xs.write('data/bench', value);
    write[i] = (performance.now() - t) * 1000;
  }
  ctx.log(`RESULT ${JSON.stringify({ evtchn: Array.from(evtchn), read: Array.from(read), write: Array.from(write) })}`);
  xs.close();
}

/**
 * A domain for the event channel round-trip benchmark. The 'pinger' allocates an unbound port
 * for the ponger, logs it, waits for the ponger's hello, then measures `rounds` notify ->
 * handler -> notify-back round trips and logs the latencies. The 'ponger' binds and echoes.
 */
import type { DomainContext } from '../../src/hypervisor/index.js';

interface Args {
  readonly role: 'pinger' | 'ponger';
  readonly peer: number;
  readonly port?: number;
  readonly rounds?: number;
}

export default async function main(ctx: DomainContext): Promise<void> {
  const a = ctx.args as Args;
  const ev = ctx.platform.events;
  if (a.role === 'ponger') {
    const p = ev.bindInterdomain(a.peer, a.port!);
    if (p < 0) throw new Error(`bind failed: ${p}`);
    ev.on(p, () => ev.notify(p));
    ev.notify(p); // hello
    await new Promise((r) => ctx.signal.addEventListener('abort', r));
    return;
  }
  const p = ev.allocUnbound(a.peer);
  let wake: () => void = () => undefined;
  ev.on(p, () => wake());
  const hello = new Promise<void>((r) => (wake = r));
  ctx.log(`PORT ${p}`);
  await hello;
  const lat = new Float64Array(a.rounds!);
  for (let i = 0; i < lat.length; i++) {
    const back = new Promise<void>((r) => (wake = r));
    const t = performance.now();
    ev.notify(p);
    await back;
    lat[i] = (performance.now() - t) * 1000;
  }
  ctx.log(`RESULT ${JSON.stringify(Array.from(lat))}`);
  await new Promise((r) => ctx.signal.addEventListener('abort', r));
}

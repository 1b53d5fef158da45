/**
 * A guest for the xenstore integration tests: connects to xenstored over the ring page and event
 * channel its builder gave it, then runs the script in ctx.args and reports through xenstore
 * itself (under its own `data/` directory, which libxl makes guest-writable).
 */
import type { DomainContext } from '../../../src/hypervisor/index.js';
import { XsError } from '../../../src/xenstore/client.js';
import { connectGuest } from '../../../src/xenstore/client-transports.js';

export interface XsGuestArgs {
  readonly script: 'probe' | 'idle' | 'flood';
}

export default async function main(ctx: DomainContext): Promise<void> {
  const xs = connectGuest(ctx.platform, ctx.startInfo);
  const { script } = ctx.args as XsGuestArgs;
  const home = await xs.getDomainPath(ctx.domid);
  if (script === 'probe') {
    // What a guest can and cannot do.
    const results: Record<string, string> = {};
    const attempt = async (name: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        const v = await fn();
        results[name] = v instanceof Uint8Array ? `ok:${new TextDecoder().decode(v)}` : `ok:${JSON.stringify(v ?? null)}`;
      } catch (e) {
        results[name] = e instanceof XsError ? e.code : String(e);
      }
    };
    await attempt('name', () => xs.readString('name'));
    await attempt('relativeDevice', () => xs.directory('device/vdispl/0'));
    await attempt('beAlloc', () => xs.readString('device/vdispl/0/be-alloc'));
    await attempt('writeBeAlloc', () => xs.write('device/vdispl/0/be-alloc', '0'));
    await attempt('writeRingRef', () => xs.write('device/vdispl/0/0/req-ring-ref', '8'));
    await attempt('writeOwnState', () => xs.write('device/vdispl/0/state', '3'));
    await attempt('readDom0', () => xs.readString('/local/domain/0/name'));
    await attempt('writeRoot', () => xs.write('/evil', 'x'));
    await attempt('writeName', () => xs.write('name', 'evil'));
    await attempt('introduce', () => xs.introduceDomain(9, 1, 1));
    await attempt('backendState', () => xs.readString('/local/domain/0/backend/vdispl/' + ctx.domid + '/0/state'));
    await attempt('txWrite', () => xs.transaction(async (tx) => {
      await tx.write('data/a', '1');
      await tx.write('data/b', '2');
    }));
    await xs.write(`${home}/data/probe`, JSON.stringify(results));
    // Wait to be told to stop, holding a watch so the daemon has something to clean up.
    await xs.watch('data/stop');
    await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
  } else if (script === 'flood') {
    // Many requests in flight at once through the 1 KiB ring.
    const writes = Array.from({ length: 200 }, (_, i) => xs.write(`data/k${i}`, 'v'.repeat(i)));
    await Promise.all(writes);
    const back = await Promise.all(Array.from({ length: 200 }, (_, i) => xs.readString(`data/k${i}`)));
    await xs.write('data/flood', back.every((v, i) => v.length === i) ? 'ok' : 'bad');
    await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
  } else {
    await xs.write('data/ready', '1');
    await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
  }
  xs.close();
}

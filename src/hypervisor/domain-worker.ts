/**
 * Entry point of a domain's worker thread: attaches to the machine's shared memory, builds the
 * domain's platform, runs the domain module's main(ctx) and reports how it ended.
 *
 * Messages to the parent: { type: 'ready' } | { type: 'log', text } | { type: 'exit', reason, error? }.
 * From the parent: { type: 'shutdown' } aborts ctx.signal.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { formatInspect } from './log-format.js';
import { type DomainContext, formatError, loadDomainMain, type StartInfo } from './domain-context.js';
import { EmulatedPlatform } from './emulated-platform.js';
import type { SharedMachine } from './layout.js';
import { MachineState } from './state.js';

export interface DomainWorkerData {
  readonly shared: SharedMachine;
  readonly domid: number;
  readonly name: string;
  readonly module: string;
  readonly args: unknown;
  readonly spinMicros: number;
  readonly startInfo: StartInfo;
  /** The cpu id the parent allocated and recorded for this domain before the thread started. */
  readonly cpu: number;
}

async function run(port: NonNullable<typeof parentPort>): Promise<void> {
  const d = workerData as DomainWorkerData;
  const state = new MachineState(d.shared, d.cpu);
  const ac = new AbortController();
  port.on('message', (m: { type?: string }) => {
    if (m.type === 'shutdown') ac.abort();
  });
  const log = (...parts: unknown[]): void => port.postMessage({ type: 'log', text: formatInspect(parts) });
  let platform: EmulatedPlatform | undefined;
  try {
    platform = new EmulatedPlatform(state, d.domid, {
      spinMicros: d.spinMicros,
      onError: (err, p) => log(`event handler for port ${p} threw: ${formatError(err)}`),
    });
    const main = await loadDomainMain(d.module);
    port.postMessage({ type: 'ready' });
    const ctx: DomainContext = { domid: d.domid, name: d.name, platform, args: d.args, startInfo: d.startInfo, signal: ac.signal, log };
    await main(ctx);
    port.postMessage({ type: 'exit', reason: 'poweroff' });
  } catch (err) {
    port.postMessage({ type: 'exit', reason: 'crash', error: formatError(err) });
  } finally {
    await platform?.close();
    port.close();
  }
}

if (parentPort) void run(parentPort);

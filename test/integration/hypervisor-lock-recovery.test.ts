/**
 * The big lock when a domain's thread dies holding it. Machine.doReclaim breaks the lock of a
 * worker that was terminated (or died) inside a hypercall, but only after `await
 * worker.terminate()`, on the toolstack thread, which is also dom0's thread. If anything on that
 * thread takes the lock before the break (dom0's event handlers, another destroy's teardown, or
 * the reclaim's own first phase for a worker that died on its own), that thread waits forever.
 *
 * Each scenario runs its Machine in a toolstack worker (workers/hv-toolstack.ts) so a stall
 * fails the test with a diagnosis instead of hanging the runner.
 */
import { describe, expect, it } from 'vitest';
import { H_LOCK_BREAKS } from '../../src/hypervisor/index.js';
import { lockOwner } from '../../src/hypervisor/lock.js';
import { startWorker } from '../../src/hypervisor/worker-bootstrap.js';
import type { Scenario, ToolstackResult } from './workers/hv-toolstack.js';
import { hv } from './workers/hv-shared.js';

type Msg =
  | { type: 'machine'; control: SharedArrayBuffer; cpu: number }
  | { type: 'step'; what: string; cpus: Record<string, number> }
  | { type: 'done'; result: ToolstackResult }
  | { type: 'fail'; error: string };

/** Runs `scenario`; rejects if the toolstack thread makes no progress for `stallMs`. */
function runToolstack(scenario: Scenario, stallMs: number): Promise<ToolstackResult> {
  const w = startWorker(hv('toolstack'), { workerData: { scenario }, name: `toolstack ${scenario}` });
  let ctl: Int32Array | undefined;
  let toolstackCpu = 0;
  let last: Extract<Msg, { type: 'step' }> | undefined;
  return new Promise<ToolstackResult>((resolve, reject) => {
    const finish = (f: () => void): void => {
      clearTimeout(timer);
      void w.terminate();
      f();
    };
    const stalled = (): void => {
      const owner = ctl ? lockOwner(ctl) : -1;
      const holder = Object.entries(last?.cpus ?? {}).find(([, c]) => c === owner)?.[0] ?? (owner === toolstackCpu ? 'the toolstack itself' : 'no live domain');
      finish(() =>
        reject(
          new Error(
            `the toolstack thread stalled for ${stallMs} ms after step "${last?.what ?? '(none)'}": ` +
              `the big lock is held by cpu ${owner} (${holder}), the toolstack thread is cpu ${toolstackCpu}, ` +
              `lockBreaks ${ctl ? ctl[H_LOCK_BREAKS] : '?'}; domain cpus at that step: ${JSON.stringify(last?.cpus)}`,
          ),
        ),
      );
    };
    let timer = setTimeout(stalled, stallMs);
    w.on('message', (msg: Msg) => {
      clearTimeout(timer);
      timer = setTimeout(stalled, stallMs);
      if (msg.type === 'machine') {
        ctl = new Int32Array(msg.control);
        toolstackCpu = msg.cpu;
      } else if (msg.type === 'step') {
        last = msg;
      } else if (msg.type === 'done') {
        finish(() => resolve(msg.result));
      } else {
        finish(() => reject(new Error(`toolstack scenario failed: ${msg.error}`)));
      }
    });
    w.on('error', (err) => finish(() => reject(err)));
    w.on('exit', (code) => finish(() => reject(new Error(`toolstack worker exited with ${code}`))));
  });
}

describe('the big lock of a thread that died holding it', () => {
  it('a worker that dies inside a hypercall: crash, the lock is broken and counted, nothing leaks', async () => {
    const r = await runToolstack('crash-in-hypercall', 3_000);
    expect(r.exit?.reason).toBe('crash');
    expect(r.exit?.error).toMatch(/code 3/);
    expect(r.leaks).toEqual(['lockBreaks: 0 -> 1']);
  }, 20_000);

  it('destroying looping domains while dom0 (the toolstack thread) handles events and makes hypercalls', async () => {
    const r = await runToolstack('destroy-while-dom0-busy', 3_500);
    expect(r.leaks).toEqual([]);
    expect(r.pings).toBeGreaterThan(100);
  }, 30_000);
});

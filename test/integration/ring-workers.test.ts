/**
 * The rings with each end in its own worker thread on one SharedArrayBuffer, as a guest and a
 * backend domain will run them: a frontend keeps the 32-slot control ring full of PG_FLIP
 * requests, a backend answers each and produces a frame-done event on the 63-slot event page
 * (starting just below 2^32, so the indices wrap mid-run). Checks that every response and event
 * arrives once, in order, intact, with notifications suppressed by the event indices (fewer
 * notifications than messages) and no lost wakeup (the run finishes).
 */
import { describe, expect, it } from 'vitest';
import { startWorker } from '../../src/hypervisor/worker-bootstrap.js';

function peer(role: 'front' | 'back', sab: SharedArrayBuffer, requests: number, evtStart: number) {
  const worker = startWorker(new URL('./workers/ring-peer.ts', import.meta.url), {
    workerData: { role, sab, requests, evtStart },
  });
  const result = new Promise<Record<string, number>>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`${role} worker exited with ${code}`));
    });
  });
  return { worker, result };
}

/** Both ends' results, or an error if they have not finished within `ms` (a lost wakeup hangs). */
async function runPair(requests: number, evtStart: number, ms = 20_000) {
  const sab = new SharedArrayBuffer(3 * 4096);
  const front = peer('front', sab, requests, evtStart);
  const back = peer('back', sab, requests, evtStart);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no result within ${ms} ms: a wakeup was lost`)), ms);
  });
  try {
    return await Promise.race([Promise.all([front.result, back.result]), deadline]);
  } finally {
    clearTimeout(timer);
    await Promise.all([front.worker.terminate(), back.worker.terminate()]);
  }
}

describe('rings across workers', () => {
  it.each([
    ['indices from 0', 0],
    ['event indices wrapping past 2^32', 0xffff_ffc0],
  ])('20000 requests, responses and frame-done events (%s)', async (_name, evtStart) => {
    const requests = 20_000;
    const [front, back] = await runPair(requests, evtStart);
    expect(front.sent).toBe(requests);
    expect(front.received).toBe(requests);
    expect(front.eventsReceived).toBe(requests);
    expect(back.handled).toBe(requests);
    expect(back.eventsSent).toBe(requests);
    expect(front.inCons).toBe((evtStart + requests) >>> 0);
    // Event-index suppression: far fewer doorbells than messages in each direction.
    expect(front.notifies).toBeLessThan(requests);
    expect(back.notifies).toBeLessThan(requests);
    expect(front.notifies).toBeGreaterThan(0);
  });
});

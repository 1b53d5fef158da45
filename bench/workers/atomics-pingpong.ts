/**
 * The physical limit for a cross-thread wakeup: two workers ping-pong through one Int32 word
 * each, with Atomics.wait (blocking) or Atomics.waitAsync, and nothing else. Role 0 measures.
 */
import { parentPort, workerData } from 'node:worker_threads';

interface Data {
  readonly sab: SharedArrayBuffer;
  readonly role: 0 | 1;
  readonly mode: 'sync' | 'async';
  readonly rounds: number;
}

const { sab, role, mode, rounds } = workerData as Data;
const a = new Int32Array(sab);
const keepAlive = setInterval(() => undefined, 1 << 30);

async function waitChange(idx: number, old: number): Promise<void> {
  if (mode === 'sync') {
    while (Atomics.load(a, idx) === old) Atomics.wait(a, idx, old);
    return;
  }
  while (Atomics.load(a, idx) === old) {
    const r = Atomics.waitAsync(a, idx, old);
    if (r.async) await r.value;
  }
}

async function run(): Promise<void> {
  if (role === 0) {
    const lat: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const t = performance.now();
      Atomics.add(a, 0, 1);
      Atomics.notify(a, 0);
      await waitChange(1, i);
      lat.push((performance.now() - t) * 1000);
    }
    Atomics.store(a, 2, 1); // tell the peer to stop
    Atomics.add(a, 0, 1);
    Atomics.notify(a, 0);
    parentPort!.postMessage(lat);
  } else {
    for (let i = 0; ; i++) {
      await waitChange(0, i);
      if (Atomics.load(a, 2) === 1) break;
      Atomics.add(a, 1, 1);
      Atomics.notify(a, 1);
    }
  }
  clearInterval(keepAlive);
}

void run();

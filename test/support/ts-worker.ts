/** Starts a worker thread on a TypeScript module (see src/hypervisor/worker-bootstrap.ts). */
import type { Worker, WorkerOptions } from 'node:worker_threads';
import { startWorker } from '../../src/hypervisor/worker-bootstrap.js';

export function tsWorker(module: URL, options: Omit<WorkerOptions, 'eval'> = {}): Worker {
  return startWorker(module, options);
}

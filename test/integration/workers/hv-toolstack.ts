/**
 * A toolstack thread: runs a Machine (dom0 included) in a worker of its own, so that a scenario
 * that blocks the toolstack thread for good (a hypercall waiting on a big lock nobody will ever
 * release) fails the test, which watches from outside, instead of hanging the test runner.
 *
 * Messages to the parent: { type: 'machine', control, cpu } first (the control block and the
 * toolstack's cpu id, to diagnose a stall), { type: 'step', what, cpus } after every step,
 * then { type: 'done', result } or { type: 'fail', error }.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { D_CPU, type DomainExit, type DomainHandle, type Machine } from '../../../src/hypervisor/index.js';
import { LPROG, LSTATE } from './hv-looper.js';
import { DONE as PP_DONE, PING, PONG, PORT as PP_PORT, READY as PP_READY } from './hv-pingpong.js';
import { check, hv, Mailbox, newMachine, put, sleep, until } from './hv-shared.js';

export type Scenario = 'crash-in-hypercall' | 'destroy-while-dom0-busy';

/** Loopers destroyed one after another in 'destroy-while-dom0-busy'. */
export const LOOPERS = 16;

export interface ToolstackResult {
  readonly exit?: DomainExit;
  readonly leaks: string[];
  readonly pings?: number;
  readonly steps: number;
}

const port = parentPort!;
const { scenario } = workerData as { scenario: Scenario };

/** The cpu id of each domain's thread (for the parent's stall diagnosis). */
function cpus(m: Machine): Record<string, number> {
  const out: Record<string, number> = {};
  for (const h of m.handles.values()) {
    const base = m.state.anySlot(h.domid);
    if (base >= 0) out[`${h.name} (d${h.domid})`] = m.state.ctl[base + D_CPU]!;
  }
  return out;
}

let steps = 0;
function step(m: Machine, what: string): void {
  steps++;
  port.postMessage({ type: 'step', what, cpus: cpus(m) });
}

async function looper(m: Machine, box: Mailbox, domid: number, index: number, mode: 'loop' | 'die-in-hypercall'): Promise<DomainHandle> {
  const h = await m.createDomain({ mode: 'worker', name: `looper${index}`, domid, module: hv('looper'), args: { mode, mailboxRef: box.grant(domid), index } });
  await h.ready;
  await until(box.mb, LSTATE + index, (v) => v === 1, 10_000, `looper ${index} to start`);
  return h;
}

async function crashInHypercall(m: Machine): Promise<ToolstackResult> {
  const base = m.accounting();
  const box = new Mailbox(m.dom0.platform!);
  step(m, 'starting the domain that dies in a hypercall');
  const h = await m.createDomain({ mode: 'worker', name: 'dies-in-hypercall', domid: 71, module: hv('looper'), args: { mode: 'die-in-hypercall', mailboxRef: box.grant(71), index: 0 } });
  await h.ready.catch(() => undefined);
  step(m, 'it runs and is about to take the lock and exit');
  const exit = await h.exited;
  step(m, `it ended: ${exit.reason}`);
  // Everyone else can still make hypercalls: another domain runs and is destroyed.
  const other = await looper(m, box, 72, 1, 'loop');
  await until(box.mb, LPROG + 1, (v) => v > 3, 10_000, 'the other domain to run');
  await m.destroyDomain(other.domid);
  step(m, 'another domain ran and was destroyed');
  box.release();
  return { exit, leaks: m.leaks(base), steps };
}

async function destroyWhileDom0Busy(m: Machine): Promise<ToolstackResult> {
  const d0 = m.dom0.platform!;
  const base = m.accounting();
  const pp = new Mailbox(d0);
  const box = new Mailbox(d0);
  // dom0 pings a worker as fast as events go: its handler makes a hypercall each time.
  const pong = await m.createDomain({ mode: 'worker', name: 'pong', domid: 72, module: hv('pingpong'), args: { role: 'pong', mailboxRef: pp.grant(72), peer: 0, rounds: 0 } });
  const d0port = d0.events.allocUnbound(72);
  put(pp.mb, PP_PORT, d0port);
  await pong.ready;
  await until(pp.mb, PP_READY, (v) => v === 1, 10_000, 'pong to bind');
  let i = 1;
  d0.events.on(d0port, () => {
    if (Atomics.load(pp.mb, PONG) !== i) return;
    Atomics.store(pp.mb, PING, ++i);
    d0.events.notify(d0port);
  });
  Atomics.store(pp.mb, PING, 1);
  d0.events.notify(d0port);
  step(m, 'dom0 <-> pong running');
  for (let k = 0; k < LOOPERS; k++) {
    const h = await looper(m, box, 80 + k, k, 'loop');
    await until(box.mb, LPROG + k, (v) => v > 0, 10_000, `looper ${k} to run`);
    await sleep(Math.random() * 5);
    step(m, `destroying looper ${k} (dom0 at ping ${i})`);
    await m.destroyDomain(h.domid);
    box.end(h.domid);
    step(m, `destroyed looper ${k}`);
  }
  const pings = i;
  d0.events.off(d0port);
  put(pp.mb, PP_DONE, 1);
  const e = await pong.exited;
  check(e.reason === 'poweroff', `pong ended: ${e.reason} ${e.error ?? ''}`);
  d0.events.close(d0port);
  pp.release();
  box.release();
  return { leaks: m.leaks(base), pings, steps };
}

async function run(): Promise<void> {
  const m = newMachine();
  port.postMessage({ type: 'machine', control: m.state.shared.control, cpu: m.state.cpu });
  try {
    const result = scenario === 'crash-in-hypercall' ? await crashInHypercall(m) : await destroyWhileDom0Busy(m);
    await m.close();
    port.postMessage({ type: 'done', result });
  } catch (err) {
    port.postMessage({ type: 'fail', error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  }
}

void run();

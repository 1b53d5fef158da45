/**
 * Helpers for the displif end-to-end and recovery suites: a toolstack with a display backend
 * domain (backend-domain.ts with the in-memory presenter, in its own worker) and display guests
 * (workers/display-guest.ts, each in its own worker) driven over MessagePorts.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { onTestFailed } from 'vitest';
import { DRM_FORMAT_XRGB8888, type PixelFormat, XEN_FRONT_FORMATS } from '../../src/abi/fourcc.js';
import { BackendControl, type BackendStatus, type FrontendStatus } from '../../src/back/backend-domain.js';
import type { PixelCopy } from '../../src/back/memory-presenter.js';
import type { MachineAccounting } from '../../src/hypervisor/accounting.js';
import type { DomainExit } from '../../src/hypervisor/index.js';
import { type Guest, Toolstack } from '../../src/toolstack/toolstack.js';
import { parseVdisplSpec } from '../../src/toolstack/vdispl-spec.js';
import type { ErrorView, GuestCommands, GuestOp, GuestReply } from './workers/display-guest.js';

export { pattern } from './workers/display-guest.js';

export const BACKEND_MODULE = new URL('../../src/back/backend-domain.ts', import.meta.url).href;
export const GUEST_MODULE = new URL('./workers/display-guest.ts', import.meta.url).href;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Rejects after `ms` with what was being waited for (so a lost answer fails the test, not hangs it). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Polls `fn` until it returns something truthy or `ms` pass; returns the last value. */
export async function poll<T>(fn: () => T | Promise<T>, ms = 5000, every = 20): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v || Date.now() >= end) return v;
    await sleep(every);
  }
}

/** Linux dumb pitch: ceil(width * bpp / 8). */
export const linuxPitch = (width: number, f: PixelFormat): number => Math.ceil((width * f.bpp) / 8);

export { XEN_FRONT_FORMATS };

/** A failed guest command: the guest's DisplayError (or Error) as seen by the test. */
export class GuestCallError extends Error {
  readonly code: string | undefined;
  readonly errno: number | undefined;
  constructor(
    readonly op: string,
    readonly view: ErrorView,
  ) {
    super(`${op}: ${view.name}: ${view.message}`);
    this.name = 'GuestCallError';
    this.code = view.code;
    this.errno = view.errno;
  }
}

/** The test's side of a display guest's command port. */
export class GuestClient {
  private nextId = 1;
  private readonly waiting = new Map<number, { op: string; resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private gone: Error | undefined;

  constructor(
    private readonly port: MessagePort,
    exited: Promise<DomainExit>,
    readonly name: string,
  ) {
    port.on('message', (m: GuestReply) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.ok) w.resolve(m.value);
      else w.reject(new GuestCallError(w.op, m.error));
    });
    port.unref();
    void exited.then((exit) => {
      this.gone = new Error(`guest ${name} is gone (${exit.reason}${exit.error ? `: ${exit.error}` : ''})`);
      for (const w of this.waiting.values()) w.reject(this.gone);
      this.waiting.clear();
      port.close();
    });
  }

  call<K extends GuestOp>(op: K, args: GuestCommands[K]['args'], timeoutMs = 20_000): Promise<GuestCommands[K]['result']> {
    if (this.gone) return Promise.reject(this.gone);
    const id = this.nextId++;
    const p = new Promise<GuestCommands[K]['result']>((resolve, reject) => {
      this.waiting.set(id, { op, resolve: resolve as (v: unknown) => void, reject });
      this.port.postMessage({ ...args, id, op });
    });
    return within(p, timeoutMs, `guest ${this.name}: ${op}`);
  }

  /** The error a command fails with (fails the test if it succeeds). */
  async error<K extends GuestOp>(op: K, args: GuestCommands[K]['args']): Promise<GuestCallError> {
    try {
      await this.call(op, args);
    } catch (e) {
      if (e instanceof GuestCallError) return e;
      throw e;
    }
    throw new Error(`guest ${this.name}: ${op} succeeded but was expected to fail`);
  }
}

export interface DisplayGuest {
  readonly guest: Guest;
  readonly domid: number;
  readonly client: GuestClient;
  readonly name: string;
}

export interface BackendDomain {
  readonly domid: number;
  readonly guest: Guest;
  readonly control: BackendControl;
}

export class Rig {
  backend: BackendDomain | undefined;
  private readonly guests = new Set<DisplayGuest>();

  private constructor(
    readonly ts: Toolstack,
    /** Everything the toolstack and the domains logged. */
    readonly logs: string[],
  ) {}

  static async start(opts: { memoryMiB?: number } = {}): Promise<Rig> {
    const logs: string[] = [];
    const ts = await Toolstack.start({
      log: (t) => logs.push(`toolstack: ${t}`),
      machine: { memoryMiB: opts.memoryMiB ?? 256, log: (domid, name, text) => logs.push(`d${domid} ${name}: ${text}`) },
    });
    return new Rig(ts, logs);
  }

  /** Prints the domains' logs if the current test fails. */
  dumpLogsOnFailure(): void {
    onTestFailed(() => {
      process.stderr.write(`--- domain logs (${this.logs.length}) ---\n${this.logs.slice(-300).join('\n')}\n`);
    });
  }

  /** Starts the display backend domain (at `domid`, for a restart) with the in-memory presenter. */
  async startBackend(domid?: number): Promise<BackendDomain> {
    const { port1, port2 } = new MessageChannel();
    const guest = await this.ts.createDomain({
      mode: 'worker',
      name: 'backend',
      ...(domid !== undefined ? { domid } : {}),
      module: BACKEND_MODULE,
      args: { presenter: 'memory', port: port2 },
      transfer: [port2],
    });
    const be: BackendDomain = { domid: guest.domid, guest, control: new BackendControl(port1) };
    this.backend = be;
    // Answers once its backend is watching XenStore.
    await within(be.control.status(), 20_000, 'the backend domain to start');
    return be;
  }

  private get be(): BackendDomain {
    if (!this.backend) throw new Error('no backend domain');
    return this.backend;
  }

  /** Destroys the backend domain (its worker is terminated). */
  async killBackend(): Promise<DomainExit> {
    const be = this.be;
    this.backend = undefined;
    be.control.close();
    return this.ts.destroyDomain(be.domid);
  }

  status(): Promise<BackendStatus> {
    return within(this.be.control.status(), 5000, 'backend status');
  }

  /** The backend's view of one guest's device (undefined once the backend dropped it). */
  async frontend(g: DisplayGuest, devid = 0): Promise<FrontendStatus | undefined> {
    return (await this.status()).frontends.find((f) => f.key === `${g.domid}/${devid}`);
  }

  snapshot(g: DisplayGuest, index: number, devid = 0): Promise<PixelCopy | undefined> {
    return within(this.be.control.snapshot(g.domid, devid, index), 5000, 'backend snapshot');
  }

  /** A display guest in its own worker with one vdispl device per spec, device i at devid i ("backend=<domid>" is added). */
  async addGuest(name: string, ...specs: string[]): Promise<DisplayGuest> {
    const { port1, port2 } = new MessageChannel();
    const be = this.be.domid;
    const guest = await this.ts.createDomain({
      mode: 'worker',
      name,
      module: GUEST_MODULE,
      args: { port: port2 },
      transfer: [port2],
      vdispl: specs.map((s, devid) => parseVdisplSpec(`backend=${be},${s}`, devid)),
    });
    const g: DisplayGuest = { guest, domid: guest.domid, name, client: new GuestClient(port1, guest.handle.exited, name) };
    this.guests.add(g);
    return g;
  }

  /** Destroys a guest (as `xl destroy`). */
  async destroyGuest(g: DisplayGuest): Promise<DomainExit> {
    this.guests.delete(g);
    return this.ts.destroyDomain(g.domid);
  }

  /** Lets the guest's main return (poweroff) and waits until the domain is gone. */
  async exitGuest(g: DisplayGuest): Promise<DomainExit> {
    this.guests.delete(g);
    await g.client.call('exit', {});
    const exit = await within(g.guest.handle.exited, 10_000, `guest ${g.name} to exit`);
    await this.ts.settled();
    return exit;
  }

  /** Destroys every guest still running. */
  async destroyGuests(): Promise<void> {
    for (const g of [...this.guests]) await this.destroyGuest(g);
  }

  /**
   * Runs a guest per spec that connects, shows one frame and flips once, then goes away: the
   * backend's and dom0's lazily grown structures (grant and maptrack frames, p2m) are there
   * afterwards, so a baseline taken then is the steady state.
   */
  async warmUp(specs: readonly string[]): Promise<void> {
    for (const spec of specs) {
      const g = await this.addGuest('warm-up', spec);
      const card = await g.client.call('open', {});
      const { width, height } = card.connectors[0]!;
      const { buf } = await g.client.call('create', { width, height, format: DRM_FORMAT_XRGB8888 });
      await g.client.call('fill', { buf, seed: 1 });
      const fb = await g.client.call('attach', { buf });
      await g.client.call('setMode', { conn: 0, fb });
      await g.client.call('flip', { conn: 0, fb });
      await g.client.call('closeCard', {});
      await g.client.call('closeFront', {});
      await this.exitGuest(g);
    }
    await this.ts.settled();
  }

  accounting(): MachineAccounting {
    return this.ts.machine.accounting();
  }

  /** Polls until nothing differs from `base` (the backend releases asynchronously); returns the differences left. */
  async leaksAfter(base: MachineAccounting, ms = 5000): Promise<string[]> {
    await this.ts.settled();
    let leaks: string[] = [];
    await poll(() => {
      leaks = this.ts.machine.leaks(base);
      return leaks.length === 0;
    }, ms);
    return leaks;
  }

  async close(): Promise<void> {
    this.backend?.control.close();
    this.backend = undefined;
    await this.ts.close();
  }
}

/** Fails with the first differing byte (a 4 MB toEqual diff helps nobody). */
export function expectSameBytes(actual: Uint8Array | undefined, expected: Uint8Array, what: string): void {
  if (!actual) throw new Error(`${what}: nothing to compare (undefined)`);
  if (actual.length !== expected.length) throw new Error(`${what}: ${actual.length} bytes, expected ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i]) throw new Error(`${what}: byte ${i} is 0x${actual[i]!.toString(16)}, expected 0x${expected[i]!.toString(16)}`);
  }
}

/**
 * Is the frontend half of a device still what its backend needs: the backend-owned nodes
 * (be-alloc, <i>/resolution, <i>/unique-id) and read access to the frontend's directory?
 * xenstored deletes the nodes a dead domain owned and drops it from every ACL.
 */
export async function frontendHalfIntact(ts: Toolstack, g: DisplayGuest, devid = 0): Promise<boolean> {
  const d = g.guest.devices[devid]!;
  const perms = await ts.xs.getPerms(d.frontend);
  const readable = perms.some((p, i) => i > 0 && p.domid === d.backendDomid && p.access === 'r');
  return readable && (await ts.xs.tryRead(`${d.frontend}/be-alloc`)) !== undefined;
}


/**
 * A XenBus device as Linux's xenbus driver core presents it to a front or back driver: its own
 * XenStore directory (`nodename`), the other end's directory and domid (read from
 * `backend`/`backend-id` for a frontend, `frontend`/`frontend-id` for a backend), its state node,
 * a watch on the other end's state delivering each change once and in order, error reporting
 * as xenbus_dev_error/xenbus_dev_fatal do, and helpers to share a ring page and allocate an event
 * channel for the other end and to publish several nodes in one transaction.
 */
import { parseXenbusState, XenbusState, type XenbusStateValue, xenbusStateName } from '../abi/xenbus-state.js';
import { XEN_ERRNO, xenErrnoName } from '../abi/xen-errno.js';
import { XsError, type XsOps, type XsWatch } from '../xenstore/client.js';
import { domainPath, relativeTo } from '../xenstore/path.js';
import type { XenPlatform } from './xen-platform.js';

export class XenbusError extends Error {
  constructor(
    message: string,
    readonly errno?: number,
  ) {
    super(message);
    this.name = 'XenbusError';
  }
}

export type XenbusRole = 'frontend' | 'backend';

/**
 * Called when the other end's state is seen to change; runs one at a time, in order. As in Linux,
 * states the other end passed through quickly may be merged (it is read when the watch fires).
 */
export type OtherendStateHandler = (state: XenbusStateValue, previous: XenbusStateValue) => void | Promise<void>;

export interface SharedRingPage {
  readonly gfn: number;
  readonly ref: number;
  readonly page: Uint8Array;
}

export class XenbusDevice {
  /** The state this end last switched to. */
  state: XenbusStateValue = XenbusState.Unknown;
  private watch: XsWatch | undefined;
  private otherendState: XenbusStateValue = XenbusState.Unknown;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly platform: XenPlatform,
    readonly role: XenbusRole,
    /** Absolute path of this end's directory. */
    readonly nodename: string,
    readonly otherendPath: string,
    readonly otherendId: number,
  ) {}

  /**
   * Opens this end of a device: reads where the other end is (`backend`/`backend-id` under a
   * frontend's directory, `frontend`/`frontend-id` under a backend's). Throws XenbusError if the
   * toolstack did not lay the device out.
   */
  static async open(platform: XenPlatform, role: XenbusRole, nodename: string): Promise<XenbusDevice> {
    const abs = nodename.startsWith('/') ? nodename : `${domainPath(platform.domid)}/${nodename}`;
    const other = role === 'frontend' ? 'backend' : 'frontend';
    const xs = platform.xenstore;
    const [path, id] = await Promise.all([xs.tryRead(`${abs}/${other}`), xs.tryRead(`${abs}/${other}-id`)]);
    if (path === undefined || id === undefined) {
      throw new XenbusError(`${abs}: no ${other} or ${other}-id node (was the device created by the toolstack?)`);
    }
    const otherendId = Number(id);
    if (!/^\d{1,5}$/.test(id) || !path.startsWith('/')) throw new XenbusError(`${abs}: bad ${other} "${path}" / ${other}-id "${id}"`);
    const dev = new XenbusDevice(platform, role, abs, path, otherendId);
    dev.state = parseXenbusState((await xs.tryRead(`${abs}/state`)) ?? '');
    return dev;
  }

  get xs(): XenPlatform['xenstore'] {
    return this.platform.xenstore;
  }

  /** The node name Linux uses (relative to the domain's home), e.g. `device/vdispl/0`. */
  get relativeName(): string {
    return relativeTo(this.nodename, this.platform.domid);
  }

  async read(key: string): Promise<string | undefined> {
    return this.xs.tryRead(`${this.nodename}/${key}`);
  }

  /**
   * A node of the other end, or undefined if it is missing or no longer readable (once the other
   * end's directory is gone, its nearest surviving ancestor usually hides it: EACCES).
   */
  async readOtherend(key: string): Promise<string | undefined> {
    try {
      return await this.xs.tryRead(`${this.otherendPath}/${key}`);
    } catch (e) {
      if (e instanceof XsError && e.code === 'EACCES') return undefined;
      throw e;
    }
  }

  /** The other end's state now; Unknown if it cannot be read (xenbus_read_driver_state). */
  async otherendStateNow(): Promise<XenbusStateValue> {
    try {
      return parseXenbusState((await this.readOtherend('state')) ?? '');
    } catch (e) {
      if (e instanceof XsError) return XenbusState.Unknown;
      throw e;
    }
  }

  /**
   * Writes this end's state (xenbus_switch_state: no-op if unchanged; the node must exist, so a
   * device the toolstack already removed is not re-created).
   */
  async switchState(state: XenbusStateValue): Promise<void> {
    if (state !== this.state) await this.publish({}, state);
  }

  /**
   * Watches the other end's `state`: `handler(state, previous)` runs once per change seen
   * (spurious watch events and repeated values are filtered), one call at a time, in order. A
   * missing or unreadable node reads as Unknown, as in Linux. Resolves once the watch is
   * registered and the current state has been handled (if it is not Unknown); it reads the state
   * itself rather than relying on the watch's first event.
   */
  async watchOtherend(handler: OtherendStateHandler): Promise<void> {
    if (this.watch) throw new XenbusError(`${this.nodename}: already watching the other end`);
    const check = (): Promise<void> => {
      const link = this.chain.then(async () => {
        if (this.closed) return;
        const s = await this.otherendStateNow();
        const prev = this.otherendState;
        if (s !== prev) {
          this.otherendState = s;
          await handler(s, prev);
        }
      });
      this.chain = link.catch((e: unknown) => {
        void this.devError(-XEN_ERRNO.EIO, `handling ${xenbusStateName(this.otherendState)} of the other end: ${e instanceof Error ? e.message : String(e)}`).catch(() => undefined);
      });
      return this.chain;
    };
    this.watch = await this.xs.watch(`${this.otherendPath}/state`, () => void check());
    await check();
  }

  /**
   * xenbus_dev_error: records "<errno> <message>" in `error/<nodename>/error` of this domain
   * (Linux's layout) so the toolstack can see why the device failed.
   */
  async devError(errno: number, message: string): Promise<void> {
    const text = `${Math.abs(errno)} ${message}`;
    await this.xs.write(`${domainPath(this.platform.domid)}/error/${this.relativeName}/error`, text);
  }

  /** xenbus_dev_fatal: devError, then switch to Closing. */
  async devFatal(errno: number, message: string): Promise<void> {
    await this.devError(errno, message).catch(() => undefined);
    await this.switchState(XenbusState.Closing).catch(() => undefined);
  }

  /** A zeroed page granted read-write to the other end (xenbus_setup_ring). */
  grantRingPage(): SharedRingPage {
    const gfns = this.platform.memory.allocPages(1);
    if (typeof gfns === 'number') throw new XenbusError(`allocating a ring page: ${xenErrnoName(gfns) ?? gfns}`, gfns);
    const gfn = gfns[0]!;
    const ref = this.platform.grants.grantAccess(this.otherendId, gfn, false);
    if (ref < 0) {
      this.platform.memory.freePages(gfns);
      throw new XenbusError(`granting a ring page: ${xenErrnoName(ref) ?? ref}`, ref);
    }
    return { gfn, ref, page: this.platform.memory.page(gfn)! };
  }

  /** Ends the grant of a ring page and frees it once the other end has unmapped it (xenbus_teardown_ring). */
  releaseRingPage(ring: SharedRingPage): void {
    this.platform.grants.endAccess(ring.ref, () => this.platform.memory.freePages([ring.gfn]));
  }

  /** An unbound event channel the other end may bind (xenbus_alloc_evtchn). */
  allocEvtchn(): number {
    const port = this.platform.events.allocUnbound(this.otherendId);
    if (port < 0) throw new XenbusError(`allocating an event channel: ${xenErrnoName(port) ?? port}`, port);
    return port;
  }

  /**
   * Writes several nodes under this end's directory in one transaction (retried on EAGAIN),
   * optionally switching state in the same transaction.
   */
  async publish(nodes: Readonly<Record<string, string | number>>, state?: XenbusStateValue): Promise<void> {
    await this.xs.transaction(async (tx: XsOps) => {
      // The device must still exist: never re-create one the toolstack removed.
      if ((await tx.tryRead(`${this.nodename}/state`)) === undefined) {
        const what = [...Object.keys(nodes), ...(state !== undefined ? [`state ${xenbusStateName(state)}`] : [])];
        throw new XenbusError(`${this.nodename} is gone: not writing ${what.join(', ')}`);
      }
      for (const [k, v] of Object.entries(nodes)) await tx.write(`${this.nodename}/${k}`, String(v));
      if (state !== undefined) await tx.write(`${this.nodename}/state`, String(state));
    });
    if (state !== undefined) this.state = state;
  }

  /** Stops watching the other end. */
  async close(): Promise<void> {
    this.closed = true;
    const w = this.watch;
    this.watch = undefined;
    await w?.unwatch().catch(() => undefined);
  }
}

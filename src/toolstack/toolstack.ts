/**
 * The toolstack: an emulated machine, the XenStore daemon embedded in dom0, and dom0's own
 * platform with a xenstore client. Building a guest does what libxl and libxenguest do before a
 * domain runs: populate its xenstore ring page among its special pages, seed
 * GNTTAB_RESERVED_XENSTORE with it, allocate the xenstore event channel, write the domain's
 * XenStore home and its vdispl devices, and introduce it to xenstored. When a domain is gone,
 * xenstored forgets it (its ring, watches and nodes) and the toolstack removes its records and
 * its devices' backend directories.
 */
import { GNTTAB_RESERVED_XENSTORE } from '../abi/grant-table.js';
import { xenErrnoName } from '../abi/xen-errno.js';
import type { DomainExit, StartInfo } from '../hypervisor/domain-context.js';
import { SPECIAL_PAGE_XENSTORE, specialGfnBase } from '../hypervisor/layout.js';
import { type DomainHandle, type DomainSpec, Machine, type MachineOptions } from '../hypervisor/machine.js';
import type { XsClient } from '../xenstore/client.js';
import { connectPipe } from '../xenstore/client-transports.js';
import { XenStoreDaemon } from '../xenstore/daemon.js';
import { domainPath } from '../xenstore/path.js';
import type { XsQuotas } from '../xenstore/quotas.js';
import { withXenstore, type XenPlatform } from '../xenbus/xen-platform.js';
import { removeDomainNodes, rmIfAny, writeDomainNodes } from './domain-nodes.js';
import { addVdisplDevices, reattachVdisplDevice, type VdisplDevicePaths } from './vdispl-devices.js';
import type { VdisplDeviceSpec } from './vdispl-spec.js';

export interface ToolstackOptions {
  readonly machine?: MachineOptions;
  readonly xenstoreQuotas?: Partial<XsQuotas>;
  readonly log?: (text: string) => void;
}

export type GuestSpec = DomainSpec & {
  /** vdispl devices to create (devid = position). */
  readonly vdispl?: readonly VdisplDeviceSpec[];
};

export interface Guest {
  readonly handle: DomainHandle;
  readonly domid: number;
  readonly devices: readonly VdisplDevicePaths[];
}

export class Toolstack {
  readonly machine: Machine;
  readonly xenstored: XenStoreDaemon;
  /** dom0's platform with its xenstore client (a pipe to the embedded daemon). */
  readonly dom0: XenPlatform;
  private readonly devices = new Map<number, VdisplDevicePaths[]>();
  /** The spec each guest's devices were made from (same order as `devices`). */
  private readonly deviceSpecs = new Map<number, readonly VdisplDeviceSpec[]>();
  private readonly cleanups = new Set<Promise<void>>();
  private readonly unsubscribe: () => void;
  private readonly log: (text: string) => void;

  private constructor(opts: ToolstackOptions) {
    this.log = opts.log ?? ((t) => process.stderr.write(`${t}\n`));
    this.machine = new Machine(opts.machine);
    const platform = this.machine.dom0.platform!;
    this.xenstored = new XenStoreDaemon({ platform, log: this.log, ...(opts.xenstoreQuotas ? { quotas: opts.xenstoreQuotas } : {}) });
    this.dom0 = withXenstore(platform, connectPipe(this.xenstored));
    this.unsubscribe = this.machine.onDomainGone((domid) => this.domainGone(domid));
  }

  static async start(opts: ToolstackOptions = {}): Promise<Toolstack> {
    const t = new Toolstack(opts);
    await t.xs.transaction(async (tx) => {
      await tx.write('/local/domain/0/name', 'Domain-0');
      await tx.write('/local/domain/0/domid', '0');
      await tx.mkdir('/libxl');
    });
    return t;
  }

  get xs(): XsClient {
    return this.dom0.xenstore;
  }

  /** Builds and starts a guest. Rejects (with nothing left behind) if any step fails. */
  async createDomain(spec: GuestSpec): Promise<Guest> {
    let devices: VdisplDevicePaths[] = [];
    const handle = await this.machine.createDomain({
      ...spec,
      prepare: async (domid) => {
        const info = this.buildXenstore(domid);
        await this.xs.transaction((tx) => writeDomainNodes(tx, domid, spec.name ?? `d${domid}`));
        devices = spec.vdispl?.length ? await addVdisplDevices(this.xs, domid, spec.vdispl) : [];
        this.devices.set(domid, devices);
        this.deviceSpecs.set(domid, spec.vdispl ?? []);
        await this.xs.introduceDomain(domid, info.store!.gfn, info.store!.port);
        return info;
      },
    });
    return { handle, domid: handle.domid, devices };
  }

  /** The xenstore part of the domain builder (alloc_magic_pages + xc_dom_gnttab_seed + the store port). */
  private buildXenstore(domid: number): StartInfo {
    const hc = this.machine.dom0.platform!.hypercalls;
    const acct = this.machine.accounting().domains.find((d) => d.domid === domid);
    if (!acct) throw new Error(`domain ${domid} vanished while being built`);
    const base = specialGfnBase(acct.gfnLimit);
    if (base === acct.gfnLimit) throw new Error(`gfnLimit ${acct.gfnLimit} leaves no room for special pages (need >= 1024)`);
    const gfn = base + SPECIAL_PAGE_XENSTORE;
    const n = hc.populatePhysmapFor(domid, [gfn]);
    if (n !== 1) throw new Error(`populating the xenstore page: ${xenErrnoName(n) ?? n}`);
    const seeded = hc.gnttabSeed(domid, GNTTAB_RESERVED_XENSTORE, 0, gfn);
    if (seeded < 0) throw new Error(`seeding the xenstore grant: ${xenErrnoName(seeded) ?? seeded}`);
    const port = hc.evtchnAllocUnbound(0, domid);
    if (port < 0) throw new Error(`allocating the xenstore event channel: ${xenErrnoName(port) ?? port}`);
    return { store: { gfn, port } };
  }

  private domainGone(domid: number): void {
    this.xenstored.domainGone(domid);
    const devices = this.devices.get(domid) ?? [];
    this.devices.delete(domid);
    this.deviceSpecs.delete(domid);
    const p = this.xs
      .transaction(async (tx) => {
        await removeDomainNodes(tx, domid);
        // The backend's whole directory for this guest, not leaving empty parents behind.
        for (const be of new Set(devices.map((d) => d.backendDomid))) await rmIfAny(tx, `${domainPath(be)}/backend/vdispl/${domid}`);
      })
      .catch((e: unknown) => this.log(`toolstack: cleaning up after domain ${domid}: ${e instanceof Error ? e.message : String(e)}`));
    this.cleanups.add(p);
    void p.finally(() => this.cleanups.delete(p));
  }

  /**
   * After a backend domain was restarted (a new domain with the old backend's domid), restores
   * every device it served: the backend's access to the frontend's nodes, the configuration it
   * owned there, and the backend half in state Initialising, so the new backend finds them and
   * the frontends reconnect. Returns how many devices were re-attached.
   */
  async reattachBackends(backendDomid: number): Promise<number> {
    const todo = [...this.devices].flatMap(([domid, ds]) =>
      ds.flatMap((d, i) => {
        const spec = this.deviceSpecs.get(domid)?.[i];
        return d.backendDomid === backendDomid && spec ? [{ domid, spec }] : [];
      }),
    );
    // One transaction per device: a guest busy writing in its own directory only delays its own.
    let done = 0;
    for (const { domid, spec } of todo) {
      try {
        await this.xs.transaction((tx) => reattachVdisplDevice(tx, domid, spec, backendDomid));
        done++;
      } catch (e) {
        this.log(`toolstack: re-attaching vdispl ${domid}/${spec.devid} to domain ${backendDomid}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    return done;
  }

  /** Asks a guest to shut down, destroying it after `timeoutMs`; resolves once its records are gone. */
  async shutdownDomain(domid: number, timeoutMs?: number): Promise<DomainExit> {
    const exit = await this.machine.shutdownDomain(domid, timeoutMs);
    await this.settled();
    return exit;
  }

  async destroyDomain(domid: number): Promise<DomainExit> {
    const exit = await this.machine.destroyDomain(domid);
    await this.settled();
    return exit;
  }

  /** Waits for pending cleanups of gone domains. */
  async settled(): Promise<void> {
    while (this.cleanups.size > 0) await Promise.all([...this.cleanups]);
  }

  /** Destroys every guest, then closes xenstored and the machine. */
  async close(): Promise<void> {
    const guests = [...this.machine.handles.keys()].filter((d) => d !== 0);
    await Promise.all(guests.map((d) => this.machine.destroyDomain(d).catch(() => undefined)));
    await this.settled();
    this.unsubscribe();
    this.xs.close();
    await this.xenstored.close();
    await this.machine.close();
  }
}

/**
 * The XenStore daemon: one store, any number of connections over the unix socket (dom0 tools),
 * guest rings (domains introduced with XS_INTRODUCE) and in-process pipes (vdispl's own dom0
 * code). It runs embedded in a vdispl process or alone as `vdispl xenstored`. When the
 * hypervisor destroys a domain (`domainGone`), its ring is unmapped, its watches and the nodes it
 * owns go, and @releaseDomain fires.
 */
import type { XsErrorName } from '../abi/xs-wire.js';
import type { Platform } from '../hypervisor/platform.js';
import type { XsTransport } from './client.js';
import type { XsQuotas } from './quotas.js';
import { GuestRingConnection } from './ring-server.js';
import { type DomainControl, XsConnection } from './server-connection.js';
import { XsSocketServer } from './socket-server.js';
import { XenStore, type StoreStats } from './store.js';

export interface DaemonOptions {
  readonly quotas?: Partial<XsQuotas>;
  /** dom0's platform, to map guests' rings; without it XS_INTRODUCE answers ENOSYS. */
  readonly platform?: Platform;
  readonly log?: (text: string) => void;
}

export interface DaemonStats extends StoreStats {
  readonly guests: number;
  readonly socketConnections: number;
}

export class XenStoreDaemon implements DomainControl {
  readonly store: XenStore;
  private readonly guests = new Map<number, GuestRingConnection>();
  private readonly servers = new Set<XsSocketServer>();
  private readonly log: (text: string) => void;

  constructor(private readonly opts: DaemonOptions = {}) {
    this.store = new XenStore(opts.quotas ? { quotas: opts.quotas } : {});
    this.log = opts.log ?? ((t) => process.stderr.write(`${t}\n`));
  }

  /**
   * Opens a connection in this process (dom0 and privileged unless told otherwise), as a client
   * transport. Replies are handed over on a microtask, not inside the daemon's call stack, so a
   * client's continuation never runs while the daemon is mid-request.
   */
  pipe(opts: { domid?: number; privileged?: boolean } = {}): XsTransport {
    const domid = opts.domid ?? 0;
    let receive: ((bytes: Uint8Array) => void) | undefined;
    let onClose: ((reason: string) => void) | undefined;
    let closed = false;
    const conn = new XsConnection(this.store, { domid, privileged: opts.privileged ?? domid === 0, control: this, log: this.log }, {
      send: (bytes) => queueMicrotask(() => {
        if (!closed) receive?.(bytes);
      }),
      close: (reason) => {
        if (closed) return;
        closed = true;
        queueMicrotask(() => onClose?.(reason));
      },
    });
    return {
      send: (bytes) => conn.receive(bytes),
      onData: (r) => void (receive = r),
      onClose: (cb) => void (onClose = cb),
      close: () => {
        closed = true;
        conn.close();
      },
    };
  }

  /** Serves the unix socket at `path` (connections there are dom0). */
  async listen(path: string): Promise<XsSocketServer> {
    const s = await XsSocketServer.listen(path, this.store, this, this.log);
    this.servers.add(s);
    return s;
  }

  // ---- DomainControl (XS_INTRODUCE, XS_RELEASE, XS_IS_DOMAIN_INTRODUCED) ----

  introduce(domid: number, gfn: number, port: number): XsErrorName | undefined {
    const platform = this.opts.platform;
    if (!platform) return 'ENOSYS';
    const old = this.guests.get(domid);
    if (old && !old.isBroken && old.gfn === gfn && old.remotePort === port) return undefined;
    old?.close();
    const g = GuestRingConnection.open(platform, this.store, this, domid, gfn, port, this.log);
    if (typeof g === 'string') {
      this.guests.delete(domid);
      this.log(`xenstored: introduce ${domid}: ${g}`);
      return 'EINVAL';
    }
    this.guests.set(domid, g);
    this.store.domainIntroduced();
    return undefined;
  }

  release(domid: number): XsErrorName | undefined {
    if (!this.guests.has(domid)) return 'ENOENT';
    this.forget(domid);
    return undefined;
  }

  isIntroduced(domid: number): boolean {
    return this.guests.has(domid);
  }

  /** The hypervisor destroyed `domid` (VIRQ_DOM_EXC): drop its connection, watches and nodes. */
  domainGone(domid: number): void {
    this.forget(domid);
  }

  private forget(domid: number): void {
    const g = this.guests.get(domid);
    this.guests.delete(domid);
    g?.close();
    this.store.domainReleased(domid);
  }

  get stats(): DaemonStats {
    let socketConnections = 0;
    for (const s of this.servers) socketConnections += s.connections;
    return { ...this.store.stats, guests: this.guests.size, socketConnections };
  }

  /** Closes every socket and guest connection (unmapping their rings). */
  async close(): Promise<void> {
    for (const g of this.guests.values()) g.close();
    this.guests.clear();
    await Promise.all([...this.servers].map((s) => s.close()));
    this.servers.clear();
  }
}

/**
 * xenstored's side of a guest connection: maps the guest's ring page through the reserved grant
 * GNTTAB_RESERVED_XENSTORE (as xenstored's map_interface does), binds the event channel the
 * toolstack allocated, and serves the guest's requests as an unprivileged connection. Quotas:
 * requests are not read while `outstandingRequests` replies wait for room in the ring, and watch
 * events beyond `queuedWatchEvents` waiting ones are dropped (and counted).
 */
import { GNTTAB_RESERVED_XENSTORE, GNTST_okay, gntstMessage } from '../abi/grant-table.js';
import { XENSTORE_CONNECTED, XENSTORE_ERROR_NONE, XENSTORE_ERROR_PROTO, XENSTORE_ERROR_RINGIDX, XENSTORE_SERVER_FEATURE_ERROR } from '../abi/xs-wire.js';
import { xenErrnoName } from '../abi/xen-errno.js';
import type { GrantMapping, Platform } from '../hypervisor/platform.js';
import { RingStream } from './ring-stream.js';
import { type DomainControl, XsConnection } from './server-connection.js';
import type { XenStore } from './store.js';

export class GuestRingConnection {
  readonly conn: XsConnection;
  private readonly stream: RingStream;
  private closed = false;
  /** Watch events dropped because the guest was not reading. */
  droppedEvents = 0;

  private constructor(
    readonly domid: number,
    readonly gfn: number,
    readonly remotePort: number,
    private readonly platform: Platform,
    private readonly mapping: GrantMapping,
    readonly localPort: number,
    store: XenStore,
    control: DomainControl,
    private readonly log: (text: string) => void,
  ) {
    const q = store.quotas;
    this.stream = new RingStream({
      page: mapping.page(0),
      produce: 'rsp',
      notify: () => platform.events.notify(localPort),
      onData: (chunk) => this.conn.receive(chunk),
      onError: (message) => this.broken(XENSTORE_ERROR_RINGIDX, message),
      canRead: () => !this.closed && this.stream.queuedMessages < q.outstandingRequests,
    });
    this.conn = new XsConnection(store, { domid, privileged: false, control, log }, {
      send: (bytes, kind) => {
        if (kind === 'event' && this.stream.queuedMessages >= q.queuedWatchEvents) {
          if (this.droppedEvents++ === 0) log(`xenstored: domain ${domid} is not reading its ring: dropping watch events`);
          return;
        }
        this.stream.write(bytes);
      },
      close: (reason) => this.broken(XENSTORE_ERROR_PROTO, reason),
    });
    const ring = this.stream.ring;
    ring.set('server_features', XENSTORE_SERVER_FEATURE_ERROR);
    ring.set('connection', XENSTORE_CONNECTED);
    ring.set('error', XENSTORE_ERROR_NONE);
    platform.events.on(localPort, () => this.stream.kick());
    // Requests the guest queued before the introduction.
    queueMicrotask(() => this.stream.kick());
  }

  /** Maps the ring and binds the channel; an error name if the guest's setup is not usable. */
  static open(
    platform: Platform, store: XenStore, control: DomainControl, domid: number, gfn: number, port: number,
    log: (text: string) => void,
  ): GuestRingConnection | string {
    const m = platform.maps.map(domid, [GNTTAB_RESERVED_XENSTORE], false);
    if (!m.ok) return `cannot map the xenstore ring of domain ${domid}: ${gntstMessage(m.status)}`;
    const local = platform.events.bindInterdomain(domid, port);
    if (local < 0) {
      platform.maps.unmap(m.mapping);
      return `cannot bind event channel ${port} of domain ${domid}: ${xenErrnoName(local) ?? local}`;
    }
    return new GuestRingConnection(domid, gfn, port, platform, m.mapping, local, store, control, log);
  }

  private broken(code: number, message: string): void {
    if (this.closed) return;
    this.log(`xenstored: domain ${this.domid}: ${message}; ignoring its connection`);
    this.stream.ring.set('error', code);
    this.conn.close();
    this.platform.events.off(this.localPort);
  }

  /** The connection stopped (ring corruption or a protocol error); the domain is ignored. */
  get isBroken(): boolean {
    return this.stream.broken || this.conn.isClosed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.conn.close();
    this.platform.events.off(this.localPort);
    this.platform.events.close(this.localPort);
    const st = this.platform.maps.unmap(this.mapping);
    if (st !== GNTST_okay) this.log(`xenstored: unmapping the ring of domain ${this.domid}: ${gntstMessage(st)}`);
  }
}

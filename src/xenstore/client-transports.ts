/**
 * Byte transports for XsClient: the unix socket (what dom0 tools use), the guest's ring page and
 * event channel (what a domU uses, from the start info the domain builder gave it), and an
 * in-process pipe to an embedded daemon.
 */
import { connect } from 'node:net';
import type { Platform } from '../hypervisor/platform.js';
import type { StartInfo } from '../hypervisor/domain-context.js';
import { XsClient, type XsTransport } from './client.js';
import type { XenStoreDaemon } from './daemon.js';
import { RingStream } from './ring-stream.js';

/** The default socket path of the C daemon; XENSTORED_PATH overrides it, as for libxenstore. */
export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.XENSTORED_PATH) return env.XENSTORED_PATH;
  return `${env.XENSTORED_RUNDIR ?? '/var/run/xenstored'}/socket`;
}

export async function socketTransport(path: string): Promise<XsTransport> {
  const sock = connect(path);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  sock.setNoDelay?.(true);
  let closed: ((reason: string) => void) | undefined;
  sock.on('error', (e) => closed?.(e.message));
  sock.on('close', () => closed?.('socket closed'));
  return {
    send: (bytes) => void sock.write(bytes),
    onData: (receive) => void sock.on('data', (b: Buffer) => receive(b)),
    onClose: (cb) => void (closed = cb),
    close: () => sock.destroy(),
  };
}

/** The guest side of the xenstore ring: the page at `store.gfn`, signalled through `store.port`. */
export function ringTransport(platform: Platform, store: NonNullable<StartInfo['store']>): XsTransport {
  const page = platform.memory.page(store.gfn);
  if (!page) throw new Error(`xenstore ring gfn ${store.gfn} is not populated`);
  let receive: ((bytes: Uint8Array) => void) | undefined;
  let closed: ((reason: string) => void) | undefined;
  let open = true;
  const stream = new RingStream({
    page,
    produce: 'req',
    notify: () => platform.events.notify(store.port),
    onData: (b) => receive?.(b),
    onError: (message) => closed?.(message),
  });
  platform.events.on(store.port, () => stream.kick());
  return {
    send: (bytes) => stream.write(bytes),
    onData: (r) => void (receive = r),
    onClose: (cb) => void (closed = cb),
    close: () => {
      if (!open) return;
      open = false;
      platform.events.off(store.port);
    },
  };
}

/** A client on the unix socket at `path` (default: XENSTORED_PATH, as libxenstore). */
export async function connectSocket(path = defaultSocketPath()): Promise<XsClient> {
  return new XsClient(await socketTransport(path));
}

/** A client in the daemon's own process (dom0 unless told otherwise). */
export function connectPipe(daemon: XenStoreDaemon, opts: { domid?: number; privileged?: boolean } = {}): XsClient {
  return new XsClient(daemon.pipe(opts));
}

const guestClients = new WeakMap<Platform, XsClient>();

/**
 * The guest's client over the ring its domain builder set up (ctx.platform, ctx.startInfo). The
 * ring carries one stream, so there is one client per domain: later calls return the same one
 * until it is closed. A new client first resets the watches a previous one left (as Linux's
 * xenbus does at start).
 */
export function connectGuest(platform: Platform, startInfo: StartInfo): XsClient {
  const open = guestClients.get(platform);
  if (open && !open.closed) return open;
  if (!startInfo.store) throw new Error('this domain was built without a xenstore ring (no startInfo.store)');
  const client = new XsClient(ringTransport(platform, startInfo.store));
  guestClients.set(platform, client);
  client.resetWatches().catch(() => undefined);
  return client;
}

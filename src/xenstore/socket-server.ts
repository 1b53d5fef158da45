/**
 * xenstored's unix socket: every connection is a privileged dom0 connection, as with the C
 * daemon's socket, which is what xenstore-utils and libxenstore use when XENSTORED_PATH points
 * at it. Output is bounded: a client that stops reading is not read from either (backpressure),
 * and watch events are dropped for it beyond a high-water mark.
 */
import { lstatSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { type DomainControl, XsConnection } from './server-connection.js';
import type { XenStore } from './store.js';

/** Stop reading from a client while this much output is waiting for it. */
const PAUSE_BYTES = 1 << 20;
/** Drop watch events for a client while this much output is waiting for it. */
const DROP_EVENT_BYTES = 4 << 20;

export class XsSocketServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private closing: Promise<void> | undefined;

  private constructor(
    readonly path: string,
    private readonly store: XenStore,
    private readonly control: DomainControl,
    private readonly log: (text: string) => void,
  ) {
    this.server = createServer((sock) => this.accept(sock));
  }

  /** Listens on `path` (a stale socket file there is replaced). */
  static async listen(path: string, store: XenStore, control: DomainControl, log: (text: string) => void): Promise<XsSocketServer> {
    try {
      if (lstatSync(path).isSocket()) unlinkSync(path);
    } catch {
      // nothing there
    }
    const s = new XsSocketServer(path, store, control, log);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(path, () => {
        s.server.off('error', reject);
        resolve();
      });
    });
    return s;
  }

  get connections(): number {
    return this.sockets.size;
  }

  private accept(sock: Socket): void {
    this.sockets.add(sock);
    let dropped = 0;
    const conn = new XsConnection(this.store, { domid: 0, privileged: true, control: this.control, log: this.log }, {
      send: (bytes, kind) => {
        if (sock.destroyed) return;
        if (kind === 'event' && sock.writableLength > DROP_EVENT_BYTES) {
          if (dropped++ === 0) this.log('xenstored: a socket client is not reading: dropping its watch events');
          return;
        }
        if (!sock.write(bytes) && sock.writableLength > PAUSE_BYTES) sock.pause();
      },
      close: () => sock.destroy(),
    });
    sock.on('drain', () => sock.resume());
    sock.on('data', (chunk: Buffer) => conn.receive(chunk));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      conn.close();
      this.sockets.delete(sock);
    });
  }

  /** Stops listening, drops every connection and removes the socket file. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      for (const s of this.sockets) s.destroy();
      this.server.close(() => resolve());
    });
    return this.closing;
  }
}

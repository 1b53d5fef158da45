/**
 * xenstored's unix socket: every connection is a privileged dom0 connection, as with the C
 * daemon's socket, which is what xenstore-utils and libxenstore use when XENSTORED_PATH points
 * at it. Output is bounded: a client that stops reading is not read from either (backpressure),
 * and watch events are dropped for it beyond a high-water mark.
 */
import { lstatSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { type DomainControl, XsConnection } from './server-connection.js';
import type { XenStore } from './store.js';

/** Stop reading from a client while this much output is waiting for it. */
const PAUSE_BYTES = 1 << 20;
/** Drop watch events for a client while this much output is waiting for it. */
const DROP_EVENT_BYTES = 4 << 20;

/** Whether something accepts connections on the unix socket at `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

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

  /**
   * Listens on `path`. A stale socket file there (nobody answering) is replaced; a live one is an
   * error, so a second daemon cannot steal the path from a running one.
   */
  static async listen(path: string, store: XenStore, control: DomainControl, log: (text: string) => void): Promise<XsSocketServer> {
    let stale = false;
    try {
      stale = lstatSync(path).isSocket();
    } catch {
      // nothing there
    }
    if (stale) {
      if (await answers(path)) throw new Error(`another xenstored is listening on ${path}`);
      unlinkSync(path);
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
    const paused = (): boolean => sock.writableLength > PAUSE_BYTES;
    const conn = new XsConnection(this.store, { domid: 0, privileged: true, control: this.control, log: this.log, paused }, {
      send: (bytes, kind) => {
        if (sock.destroyed) return;
        if (kind === 'event' && sock.writableLength > DROP_EVENT_BYTES) {
          if (dropped++ === 0) this.log('xenstored: a socket client is not reading: dropping its watch events');
          return;
        }
        if (!sock.write(bytes) && paused()) sock.pause();
      },
      close: () => sock.destroy(),
    });
    sock.on('drain', () => {
      conn.resume();
      if (!paused()) sock.resume();
    });
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

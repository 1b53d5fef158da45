/**
 * The VNC output: an RFB server per connector, as a Presenter for the display backend. Each
 * connector the session is configured with gets a TCP listener (on 127.0.0.1, port base + n)
 * from the start, before the guest connects, like a console: a client that connects while the
 * guest shows nothing sees black at the connector's configured size, and stays connected across
 * the guest's mode changes (DesktopSize tells it) and reconnects.
 *
 * Presenting never waits for VNC (frame-done is never delayed by a client): a flip records the
 * frame and, on the next turn of the event loop, offers it to every client (vnc-client.ts
 * decides who takes it). Updates are computed in one encoder worker for all clients
 * (frame-encoder.ts, with the codec in rfb/rfb-update.ts), reading the guest's memory in place
 * while holding its dma-buf.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { ConnectorInfo, ConnectorOutput, Frame, Presenter } from '../back/presenter.js';
import { pixelFormatByName } from '../abi/fourcc.js';
import { type FrameEncoder, WorkerFrameEncoder } from './frame-encoder.js';
import { RFB_CODEC, type RfbUpdateParams } from './rfb/rfb-update.js';
import { ShownConnector } from './shown-connector.js';
import { VncClient, type VncSource } from './vnc-client.js';

export interface VncEndpointSpec {
  /** The desktop name clients show (e.g. "demo/DP-1"). */
  readonly name: string;
  /** The connector's configured resolution. */
  readonly width: number;
  readonly height: number;
}

export interface VncServerOptions {
  /** One per connector, in connector index order. */
  readonly connectors: readonly VncEndpointSpec[];
  /** Connector n listens on basePort + n (default 5900; 0: any free ports). */
  readonly basePort?: number;
  readonly host?: string;
  /** Require VNC authentication with this password. */
  readonly password?: string | undefined;
  readonly encoder?: FrameEncoder<RfbUpdateParams>;
  readonly log?: (text: string) => void;
  /** Disconnect a client whose socket takes nothing for this long (default 10 s). */
  readonly stallMs?: number;
  /** Most clients per connector (default 16); more are refused with a log line. */
  readonly maxClients?: number;
  /** Disconnect a client that has not finished the handshake after this long (default 30 s). */
  readonly handshakeMs?: number;
}

export interface VncFigures {
  readonly name: string;
  readonly port: number;
  readonly clients: number;
  /** Frames presented (flips) since start. */
  readonly presented: number;
  /** Updates sent to clients, bytes and encoding time (ms, on the encoder thread). */
  readonly updates: number;
  readonly bytes: number;
  readonly encodeMs: number;
  /** Flip -> update written to the socket, ms, for the last updates. */
  readonly latencies: readonly number[];
}

const XRGB8888 = pixelFormatByName('XRGB8888')!;

class Endpoint extends ShownConnector implements VncSource {
  server!: Server;
  port = 0;
  readonly clients = new Set<VncClient>();
  updates = 0;
  bytes = 0;
  encodeMs = 0;
  latencies: number[] = [];
  private blackFrame: Frame | undefined;
  private scheduled = false;
  private nextClient = 1;

  constructor(
    readonly index: number,
    readonly spec: VncEndpointSpec,
    private readonly vnc: VncServer,
  ) {
    super();
  }

  get name(): string {
    return this.spec.name;
  }

  size(): { width: number; height: number } {
    const c = this.current();
    return c ? { width: c.width, height: c.height } : { width: this.spec.width, height: this.spec.height };
  }

  black(width: number, height: number): Frame {
    const b = this.blackFrame;
    if (b && b.width === width && b.height === height) return b;
    const view = new Uint8Array(width * height * 4);
    this.blackFrame = { fbCookie: 0n, format: XRGB8888, width, height, pitch: width * 4, offset: 0, size: view.length, view, page: (i) => view.subarray(i * 4096, (i + 1) * 4096), dmabuf: undefined };
    return this.blackFrame;
  }

  exclusive(client: VncClient): void {
    const others = [...this.clients].filter((c) => c !== client);
    if (others.length === 0) return;
    for (const c of others) c.end(`another client (${client.peer}) asked for exclusive access (shared flag 0)`);
  }

  removed(client: VncClient): void {
    this.clients.delete(client);
  }

  accept(socket: Socket): void {
    if (this.clients.size >= this.vnc.maxClients) {
      this.vnc.log(`vnc ${this.name}: refused ${socket.remoteAddress}:${socket.remotePort}: ${this.clients.size} clients already`);
      socket.destroy();
      return;
    }
    const client = new VncClient(socket, this, {
      encoder: this.vnc.encoder,
      password: this.vnc.password,
      log: (t) => this.vnc.log(t),
      stallMs: this.vnc.stallMs,
      handshakeMs: this.vnc.handshakeMs,
      slot: `${this.index}:${this.nextClient++}`,
      onUpdate: (bytes, encodeMs, latency) => {
        this.updates++;
        this.bytes += bytes;
        this.encodeMs += encodeMs;
        this.latencies.push(latency);
        if (this.latencies.length > 600) this.latencies.splice(0, this.latencies.length - 600);
      },
    });
    this.clients.add(client);
  }

  protected changed(): void {
    this.notify();
  }

  /** The guest went away: clients see black and stay. */
  protected gone(): void {
    this.notify();
  }

  private notify(): void {
    if (this.scheduled || this.clients.size === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      for (const c of this.clients) c.changed();
    });
  }
}

export class VncServer implements Presenter {
  readonly encoder: FrameEncoder<RfbUpdateParams>;
  readonly password: string | undefined;
  readonly stallMs: number;
  readonly maxClients: number;
  readonly handshakeMs: number | undefined;
  readonly log: (text: string) => void;
  private readonly endpoints: Endpoint[];

  private constructor(o: VncServerOptions) {
    this.encoder = o.encoder ?? new WorkerFrameEncoder(RFB_CODEC);
    this.password = o.password === '' ? undefined : o.password;
    this.stallMs = o.stallMs ?? 10_000;
    this.maxClients = o.maxClients ?? 16;
    this.handshakeMs = o.handshakeMs;
    this.log = o.log ?? (() => undefined);
    this.endpoints = o.connectors.map((c, i) => new Endpoint(i, c, this));
  }

  /** Listens on every connector's port; rejects (closing what it opened) if one is taken. */
  static async start(o: VncServerOptions): Promise<VncServer> {
    const s = new VncServer(o);
    const base = o.basePort ?? 5900;
    const host = o.host ?? '127.0.0.1';
    try {
      for (const e of s.endpoints) {
        const server = createServer((sock) => e.accept(sock));
        e.server = server;
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(base === 0 ? 0 : base + e.index, host, () => {
            server.off('error', reject);
            // Accept errors (ENFILE, ...) are logged; the listener stays.
            server.on('error', (err) => s.log(`vnc ${e.name}: ${err.message}`));
            resolve();
          });
        });
        e.port = (server.address() as { port: number }).port;
      }
    } catch (err) {
      await s.close();
      throw err;
    }
    return s;
  }

  /** Where each connector listens. */
  ports(): { name: string; port: number }[] {
    return this.endpoints.map((e) => ({ name: e.name, port: e.port }));
  }

  openConnector(info: ConnectorInfo): ConnectorOutput {
    const e = this.endpoints[info.index];
    if (e) return e;
    this.log(`vnc: connector #${info.index} (${info.uniqueId}) has no VNC port (only ${this.endpoints.length} configured)`);
    return { configure: () => undefined, present: () => undefined, close: () => undefined };
  }

  figures(): VncFigures[] {
    return this.endpoints.map((e) => ({ name: e.name, port: e.port, clients: e.clients.size, presented: e.presented, updates: e.updates, bytes: e.bytes, encodeMs: e.encodeMs, latencies: e.latencies.slice() }));
  }

  /** Clients connected, all connectors. */
  get clientCount(): number {
    let n = 0;
    for (const e of this.endpoints) n += e.clients.size;
    return n;
  }

  /** Stops listening, disconnects every client and stops the encoder. */
  async close(): Promise<void> {
    for (const e of this.endpoints) {
      for (const c of [...e.clients]) c.end(undefined);
      if (e.server?.listening) await new Promise<void>((r) => e.server.close(() => r()));
    }
    await this.encoder.close();
  }
}

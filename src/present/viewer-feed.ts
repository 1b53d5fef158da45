/**
 * What the browser viewer shows, independent of the network: a Presenter whose outputs record
 * each connector's current frame (presenting never waits: frame-done is never delayed by a
 * viewer), and per client a flow-controlled feed of changed tiles. A client has at most `window`
 * frames (default 2) of each connector in flight, being encoded or sent but not yet acknowledged
 * as painted; when one is acknowledged it gets the newest frame if one was presented since the
 * last it was sent (frames in between are skipped for it, never queued), so a slow page costs
 * nothing but its own frame rate. Two in flight let the next frame be encoded and sent while the
 * page waits to paint the previous one. Updates are computed by a FrameEncoder (a worker thread
 * by default), only when a client can take one; messages are described in frame-update.ts.
 */
import type { ConnectorInfo, ConnectorOutput, Frame, Presenter } from '../back/presenter.js';
import { type FrameEncoder, WorkerFrameEncoder } from './frame-encoder.js';
import { type UpdateHeader, VIEWER_CODEC } from './frame-update.js';
import { ShownConnector } from './shown-connector.js';

export interface ViewerConnectorInfo {
  readonly id: number;
  readonly name: string;
  readonly width: number;
  readonly height: number;
  readonly format: string;
}

export interface ViewerClient {
  /** Sends a binary frame message. */
  sendFrame(msg: Uint8Array): void;
  /** Sends a JSON control message. */
  sendJson(msg: unknown): void;
}

interface InFlight {
  readonly seq: number;
  readonly flipTime: number;
  /** The message has gone to the client (an ack before that is not believed). */
  sent: boolean;
}

interface ClientState {
  /** Distinguishes this client's encoder slots. */
  readonly id: number;
  /** Frames in flight per connector id, oldest first. */
  readonly inflight: Map<number, InFlight[]>;
  /** The last seq sent (or being encoded) per connector id. */
  readonly sent: Map<number, number>;
  closed: boolean;
}

export interface ViewerFeedOptions {
  /** Names connectors (default "d<domid> vdispl<devid> #<index> (<uniqueId>)"). */
  readonly nameOf?: (info: ConnectorInfo) => string;
  /** Computes the updates (default: a worker thread, started when the first client connects). */
  readonly encoder?: FrameEncoder<UpdateHeader>;
  /** Frames in flight per client and connector (default 2). */
  readonly window?: number;
  /** Errors of the encoder (default: ignored; the client gets the next frame whole). */
  readonly log?: (text: string) => void;
}

export interface ConnectorFigures extends ViewerConnectorInfo {
  /** Frames presented by the backend (page flips) since start. */
  readonly presented: number;
  /** Frames painted by viewers (acknowledged). */
  readonly painted: number;
  /** Presented frames no viewer got (superseded before a viewer could take them). */
  readonly skipped: number;
  /** Flip -> painted latencies of the last painted frames, ms. */
  readonly latencies: readonly number[];
  /** Bytes sent to viewers. */
  readonly bytes: number;
  /** Time spent computing updates (damage, conversion, encoding), ms, on the encoder's thread. */
  readonly encodeMs: number;
  /** Updates computed (frames sent to some client). */
  readonly encoded: number;
}

class FeedConnector extends ShownConnector {
  /** Whether the current seq is a presented frame (not a mode set). */
  seqIsFrame = false;
  /** Frames presented since the last seq any client was sent. */
  unsent = 0;
  painted = 0;
  skipped = 0;
  lastCountedSeq = 0;
  bytes = 0;
  encodeMs = 0;
  encoded = 0;
  latencies: number[] = [];

  constructor(
    readonly id: number,
    readonly info: ConnectorInfo,
    readonly name: string,
    private readonly feed: ViewerFeed,
  ) {
    super();
  }

  protected changed(mode: boolean): void {
    this.seqIsFrame = !mode;
    if (!mode) this.unsent++;
    this.feed.changed(this, mode);
  }

  protected gone(): void {
    this.feed.removed(this);
  }

  describe(): ViewerConnectorInfo {
    const s = this.current();
    return { id: this.id, name: this.name, width: s?.width ?? this.info.width, height: s?.height ?? this.info.height, format: s?.frame.format.name ?? '' };
  }
}

export class ViewerFeed implements Presenter {
  private nextId = 1;
  private nextClient = 1;
  private readonly connectors = new Map<number, FeedConnector>();
  private readonly clients = new Map<ViewerClient, ClientState>();
  private readonly nameOf: (info: ConnectorInfo) => string;
  private readonly encoder: FrameEncoder<UpdateHeader>;
  private readonly window: number;
  private readonly log: (text: string) => void;
  private closing = false;

  constructor(opts: ViewerFeedOptions = {}) {
    this.nameOf = opts.nameOf ?? ((i) => `d${i.frontendDomid} vdispl${i.devid} #${i.index} (${i.uniqueId})`);
    this.encoder = opts.encoder ?? new WorkerFrameEncoder(VIEWER_CODEC);
    const window = opts.window ?? 2;
    if (!Number.isInteger(window) || window < 1) throw new RangeError(`viewer window ${window}: must be an integer >= 1`);
    this.window = window;
    this.log = opts.log ?? (() => undefined);
  }

  /** The next free connector id, 1..65535 (ids travel as u16 and are reused once free). */
  private allocateId(): number {
    if (this.connectors.size >= 0xffff) throw new RangeError('the viewer has 65535 connectors');
    while (this.connectors.has(this.nextId)) this.nextId = (this.nextId % 0xffff) + 1;
    const id = this.nextId;
    this.nextId = (this.nextId % 0xffff) + 1;
    return id;
  }

  openConnector(info: ConnectorInfo): ConnectorOutput {
    const c = new FeedConnector(this.allocateId(), info, this.nameOf(info), this);
    this.connectors.set(c.id, c);
    this.broadcastList();
    return c;
  }

  private readonly pending = new Set<FeedConnector>();
  private listChanged = false;
  private flushScheduled = false;

  /** @internal Called from present()/configure(): the work happens later, never in the backend's path. */
  changed(c: FeedConnector, modeChanged: boolean): void {
    if (this.clients.size === 0) return;
    this.listChanged ||= modeChanged;
    this.pending.add(c);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (this.listChanged) this.broadcastList();
      this.listChanged = false;
      const cs = [...this.pending];
      this.pending.clear();
      for (const conn of cs) for (const [client, st] of this.clients) this.sendTo(client, st, conn);
    });
  }

  /** @internal */
  removed(c: FeedConnector): void {
    this.connectors.delete(c.id);
    for (const st of this.clients.values()) this.dropSlot(st, c.id);
    this.broadcastList();
  }

  private slot(st: ClientState, id: number): string {
    return `${st.id}:${id}`;
  }

  private dropSlot(st: ClientState, id: number): void {
    st.inflight.delete(id);
    if (st.sent.delete(id)) this.encoder.forget(this.slot(st, id));
  }

  list(): ViewerConnectorInfo[] {
    return [...this.connectors.values()].map((c) => c.describe());
  }

  private broadcastList(): void {
    for (const client of this.clients.keys()) client.sendJson({ type: 'connectors', connectors: this.list() });
  }

  addClient(client: ViewerClient): void {
    const st: ClientState = { id: this.nextClient++, inflight: new Map(), sent: new Map(), closed: false };
    this.clients.set(client, st);
    client.sendJson({ type: 'connectors', connectors: this.list() });
    for (const c of this.connectors.values()) this.sendTo(client, st, c);
  }

  removeClient(client: ViewerClient): void {
    const st = this.clients.get(client);
    if (!st) return;
    this.clients.delete(client);
    st.closed = true;
    for (const id of [...st.sent.keys()]) this.dropSlot(st, id);
  }

  /** Frames in flight (encoding, sent, not acknowledged) for a client, all connectors. */
  inFlight(client: ViewerClient): number {
    let n = 0;
    for (const q of this.clients.get(client)?.inflight.values() ?? []) n += q.length;
    return n;
  }

  /** The client painted frame `seq` of connector `id` at `paintedAt` (ms since the epoch); earlier frames in flight count as painted too. */
  ack(client: ViewerClient, id: number, seq: number, paintedAt: number): void {
    const st = this.clients.get(client);
    const q = st?.inflight.get(id);
    if (!st || !q) return;
    const k = q.findIndex((f) => f.seq === seq);
    if (k < 0 || !q[k]!.sent) return;
    const done = q.splice(0, k + 1);
    const c = this.connectors.get(id);
    if (!c) return;
    c.painted += done.length;
    if (Number.isFinite(paintedAt)) {
      c.latencies.push(paintedAt - done[k]!.flipTime);
      if (c.latencies.length > 600) c.latencies.splice(0, c.latencies.length - 600);
    }
    this.sendTo(client, st, c);
  }

  private sendTo(client: ViewerClient, st: ClientState, c: FeedConnector): void {
    const shown = c.current();
    if (!shown || st.closed) return;
    const frame = shown.frame;
    if (st.sent.get(c.id) === c.seq) return;
    let q = st.inflight.get(c.id);
    if (!q) st.inflight.set(c.id, (q = []));
    if (q.length >= this.window) return;
    const entry: InFlight = { seq: c.seq, flipTime: c.flipTime, sent: false };
    q.push(entry);
    st.sent.set(c.id, c.seq);
    // Frames presented since the last one any client was sent were skipped (mode sets are not frames).
    if (c.seq > c.lastCountedSeq) {
      c.skipped += Math.max(0, c.unsent - (c.seqIsFrame ? 1 : 0));
      c.unsent = 0;
      c.lastCountedSeq = c.seq;
    }
    const slot = this.slot(st, c.id);
    this.encoder.encode({ slot, frame, width: shown.width, height: shown.height, params: { id: c.id, seq: c.seq, flipTime: c.flipTime } }).then(
      (r) => {
        c.encodeMs += r.encodeMs;
        c.encoded++;
        if (st.closed || st.inflight.get(c.id) !== q || !q.includes(entry)) return;
        c.bytes += r.msg.length;
        entry.sent = true;
        client.sendFrame(r.msg);
      },
      (e: unknown) => {
        if (this.closing) return;
        // Nothing was sent: the slot starts again from a whole frame.
        this.log(`viewer: encoding ${c.name} failed: ${e instanceof Error ? e.message : String(e)}`);
        const i = q.indexOf(entry);
        if (i >= 0) q.splice(i, 1);
        if (st.sent.get(c.id) === entry.seq) st.sent.delete(c.id);
        this.encoder.forget(slot);
        // Try again shortly (the connector may have a new frame by then), even if nothing flips.
        setTimeout(() => this.sendTo(client, st, c), 250).unref();
      },
    );
  }

  /** Stops the encoder; clients get nothing more. */
  async close(): Promise<void> {
    this.closing = true;
    for (const client of [...this.clients.keys()]) this.removeClient(client);
    await this.encoder.close();
  }

  figures(): ConnectorFigures[] {
    return [...this.connectors.values()].map((c) => {
      const d = c.describe();
      return { ...d, presented: c.presented, painted: c.painted, skipped: c.skipped, latencies: c.latencies.slice(), bytes: c.bytes, encodeMs: c.encodeMs, encoded: c.encoded };
    });
  }

  /** Current frames, for snapshots. */
  frames(): { name: string; frame: Frame; width: number; height: number }[] {
    const out = [];
    for (const c of this.connectors.values()) {
      const s = c.current();
      if (s) out.push({ name: c.name, frame: s.frame, width: s.width, height: s.height });
    }
    return out;
  }
}

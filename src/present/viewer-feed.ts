/**
 * What the browser viewer shows, independent of the network: a Presenter whose outputs record
 * each connector's current frame (presenting never waits: frame-done is never delayed by a
 * viewer), and per client a flow-controlled feed of changed tiles. A client has at most one frame
 * in flight per connector; when it acknowledges that frame as painted, it gets the newest frame
 * if one was presented meanwhile (frames in between are skipped for it, never queued), so a slow
 * page costs nothing but its own frame rate. Frames are captured (copied out of the guest's
 * buffer) only when a client can take one.
 *
 * Message to a client for one frame (binary, little-endian):
 *   u8 1, u8 0, u16 connector id, u32 seq, f64 flip time (ms since the epoch), u16 width,
 *   u16 height, u32 tile count, then per tile: u16 x, u16 y, u16 w, u16 h, u8 encoding
 *   (0 raw RGBA, 1 RLE RGBA, see tiles.ts), u32 length, bytes.
 */
import type { ConnectorInfo, ConnectorOutput, Frame, OutputConfig, Presenter } from '../back/presenter.js';
import { changedTiles, copyTiles, encodeTile, frameRaster } from './tiles.js';

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

function now(): number {
  return performance.timeOrigin + performance.now();
}

interface ClientState {
  /** The frame in flight per connector id: its seq and when it was flipped. */
  readonly inflight: Map<number, { readonly seq: number; readonly flipTime: number }>;
  /** What the client has, per connector id (native packed rows). */
  readonly shadow: Map<number, { key: string; data: Uint8Array }>;
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
  /** Bytes sent for painted frames. */
  readonly bytes: number;
  /** Server time spent capturing and encoding, ms. */
  readonly encodeMs: number;
}

class FeedConnector implements ConnectorOutput {
  frame: Frame | undefined;
  config: OutputConfig | undefined;
  flipTime = 0;
  /** Increments with every presented frame. */
  seq = 0;
  presented = 0;
  painted = 0;
  skipped = 0;
  lastCountedSeq = 0;
  bytes = 0;
  encodeMs = 0;
  latencies: number[] = [];

  constructor(
    readonly id: number,
    readonly info: ConnectorInfo,
    readonly name: string,
    private readonly feed: ViewerFeed,
  ) {}

  configure(config: OutputConfig | undefined): void {
    this.config = config;
    this.frame = config?.frame;
    this.flipTime = now();
    this.seq++;
    this.feed.changed(this, true);
  }

  present(frame: Frame): void {
    this.frame = frame;
    this.flipTime = now();
    this.seq++;
    this.presented++;
    this.feed.changed(this, false);
  }

  close(): void {
    this.frame = undefined;
    this.config = undefined;
    this.feed.removed(this);
  }

  /** What is shown: width and height of the mode, the frame's format. */
  get shown(): { width: number; height: number; format: string } | undefined {
    if (!this.config || !this.frame) return undefined;
    return { width: Math.min(this.config.width, this.frame.width), height: Math.min(this.config.height, this.frame.height), format: this.frame.format.name };
  }

  describe(): ViewerConnectorInfo {
    const s = this.shown;
    return { id: this.id, name: this.name, width: s?.width ?? this.info.width, height: s?.height ?? this.info.height, format: s?.format ?? '' };
  }
}

export class ViewerFeed implements Presenter {
  private nextId = 1;
  private readonly connectors = new Map<number, FeedConnector>();
  private readonly clients = new Map<ViewerClient, ClientState>();
  /** Names connectors: default "d<domid>/<devid>/<index> <uniqueId>". */
  constructor(private readonly nameOf: (info: ConnectorInfo) => string = (i) => `d${i.frontendDomid} vdispl${i.devid} #${i.index} (${i.uniqueId})`) {}

  openConnector(info: ConnectorInfo): ConnectorOutput {
    const c = new FeedConnector(this.nextId++, info, this.nameOf(info), this);
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
      for (const conn of cs) for (const [client, st] of this.clients) if (!st.inflight.has(conn.id)) this.sendTo(client, st, conn);
    });
  }

  /** @internal */
  removed(c: FeedConnector): void {
    this.connectors.delete(c.id);
    for (const st of this.clients.values()) {
      st.inflight.delete(c.id);
      st.shadow.delete(c.id);
    }
    this.broadcastList();
  }

  list(): ViewerConnectorInfo[] {
    return [...this.connectors.values()].map((c) => c.describe());
  }

  private broadcastList(): void {
    for (const client of this.clients.keys()) client.sendJson({ type: 'connectors', connectors: this.list() });
  }

  addClient(client: ViewerClient): void {
    const st: ClientState = { inflight: new Map(), shadow: new Map() };
    this.clients.set(client, st);
    client.sendJson({ type: 'connectors', connectors: this.list() });
    for (const c of this.connectors.values()) this.sendTo(client, st, c);
  }

  removeClient(client: ViewerClient): void {
    this.clients.delete(client);
  }

  /** The client painted frame `seq` of connector `id` at `paintedAt` (ms since the epoch). */
  ack(client: ViewerClient, id: number, seq: number, paintedAt: number): void {
    const st = this.clients.get(client);
    const c = this.connectors.get(id);
    const sent = st?.inflight.get(id);
    if (!st || sent?.seq !== seq) return;
    st.inflight.delete(id);
    if (!c) return;
    c.painted++;
    if (Number.isFinite(paintedAt)) {
      c.latencies.push(paintedAt - sent.flipTime);
      if (c.latencies.length > 600) c.latencies.splice(0, c.latencies.length - 600);
    }
    if (c.seq !== seq) this.sendTo(client, st, c);
  }

  private sendTo(client: ViewerClient, st: ClientState, c: FeedConnector): void {
    const shown = c.shown;
    const frame = c.frame;
    if (!shown || !frame) return;
    const t0 = performance.now();
    const raster = frameRaster(frame, shown.width, shown.height);
    const key = `${shown.width}x${shown.height}/${frame.format.name}/${raster.pitch}`;
    const prev = st.shadow.get(c.id);
    const same = prev?.key === key ? prev.data : undefined;
    const rects = changedTiles(raster, same);
    const tiles = rects.map((r) => encodeTile(raster, r));
    if (same) copyTiles(raster, same, rects);
    else {
      const shadow = new Uint8Array(raster.pitch * shown.height);
      shadow.set(raster.data);
      st.shadow.set(c.id, { key, data: shadow });
    }
    let size = 24;
    for (const t of tiles) size += 13 + t.data.length;
    const msg = new Uint8Array(size);
    const dv = new DataView(msg.buffer);
    msg[0] = 1;
    dv.setUint16(2, c.id, true);
    dv.setUint32(4, c.seq, true);
    dv.setFloat64(8, c.flipTime, true);
    dv.setUint16(16, shown.width, true);
    dv.setUint16(18, shown.height, true);
    dv.setUint32(20, tiles.length, true);
    let o = 24;
    for (const t of tiles) {
      dv.setUint16(o, t.x, true);
      dv.setUint16(o + 2, t.y, true);
      dv.setUint16(o + 4, t.w, true);
      dv.setUint16(o + 6, t.h, true);
      msg[o + 8] = t.encoding;
      dv.setUint32(o + 9, t.data.length, true);
      msg.set(t.data, o + 13);
      o += 13 + t.data.length;
    }
    // Frames presented since the last one any client was sent were skipped.
    if (c.seq > c.lastCountedSeq) {
      c.skipped += Math.max(0, c.seq - c.lastCountedSeq - 1);
      c.lastCountedSeq = c.seq;
    }
    st.inflight.set(c.id, { seq: c.seq, flipTime: c.flipTime });
    c.bytes += size;
    c.encodeMs += performance.now() - t0;
    client.sendFrame(msg);
  }

  figures(): ConnectorFigures[] {
    return [...this.connectors.values()].map((c) => {
      const d = c.describe();
      return { ...d, presented: c.presented, painted: c.painted, skipped: c.skipped, latencies: c.latencies.slice(), bytes: c.bytes, encodeMs: c.encodeMs };
    });
  }

  /** Current frames, for snapshots. */
  frames(): { name: string; frame: Frame; width: number; height: number }[] {
    const out = [];
    for (const c of this.connectors.values()) {
      const s = c.shown;
      if (s && c.frame) out.push({ name: c.name, frame: c.frame, width: s.width, height: s.height });
    }
    return out;
  }
}

/**
 * The XenStore client library: typed, promise-based requests over any byte transport (the unix
 * socket, a guest's ring page, an in-process pipe to an embedded daemon). Replies are matched by
 * req_id; XS_ERROR replies reject with an XsError carrying the error name; transactions retry
 * the whole body on EAGAIN; watches deliver events to a callback or an async iterator.
 */
import {
  encodeXsMessage, xsErrorName, type XsErrorName, type XsMessage, xsPayload, XsStreamParser, xsStringList,
  XS_DIRECTORY, XS_ERROR, XS_GET_DOMAIN_PATH, XS_GET_PERMS, XS_INTRODUCE, XS_IS_DOMAIN_INTRODUCED, XS_MKDIR, XS_READ,
  XS_RELEASE, XS_RESET_WATCHES, XS_RM, XS_SET_PERMS, XS_TRANSACTION_END, XS_TRANSACTION_START, XS_UNWATCH, XS_WATCH,
  XS_WATCH_EVENT, XS_WRITE, XS_TYPE_NAMES, XS_DIRECTORY_PART,
} from '../abi/xs-wire.js';
import { formatPerm, parsePerms, type XsPerms } from './perms.js';

/** A byte stream to xenstored. */
export interface XsTransport {
  send(bytes: Uint8Array): void;
  /** Sets where incoming bytes go (called once, before the first send). */
  onData(receive: (bytes: Uint8Array) => void): void;
  /** Called when the transport is gone (peer closed, error). */
  onClose(closed: (reason: string) => void): void;
  close(): void;
}

export class XsError extends Error {
  constructor(
    readonly code: XsErrorName | 'ECLOSED' | 'EPROTO',
    readonly op: string,
    readonly path?: string,
  ) {
    super(`xenstore ${op}${path !== undefined ? ` ${path}` : ''}: ${code}`);
    this.name = 'XsError';
  }
}

export interface WatchEvent {
  readonly path: string;
  readonly token: string;
}

/** A registered watch: events go to the callback given at creation and to async iterators. */
export class XsWatch implements AsyncIterable<WatchEvent> {
  private readonly waiters: ((r: IteratorResult<WatchEvent>) => void)[] = [];
  private readonly queue: WatchEvent[] = [];
  private ended = false;
  /** Events not yet taken by an iterator are kept up to this many (older ones dropped). */
  static readonly MAX_QUEUED = 4096;

  constructor(
    private readonly client: XsClient,
    readonly path: string,
    readonly token: string,
    private readonly callback: ((e: WatchEvent) => void) | undefined,
  ) {}

  /** @internal */
  deliver(e: WatchEvent): void {
    if (this.ended) return;
    if (this.callback) {
      try {
        this.callback(e);
      } catch (err) {
        // Like an EventEmitter listener: the error surfaces in the caller's process (a domain
        // crashes), never inside whoever caused the event or the client's reply parsing.
        setImmediate(() => {
          throw err;
        });
      }
    }
    const w = this.waiters.shift();
    if (w) w({ value: e, done: false });
    else if (!this.callback) {
      this.queue.push(e);
      if (this.queue.length > XsWatch.MAX_QUEUED) this.queue.shift();
    }
  }

  /** @internal */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const w of this.waiters.splice(0)) w({ value: undefined, done: true });
  }

  get active(): boolean {
    return !this.ended;
  }

  /** Removes the watch (XS_UNWATCH) and ends iterators. */
  async unwatch(): Promise<void> {
    if (this.ended) return;
    this.end();
    await this.client.unwatchInternal(this);
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchEvent> {
    return {
      next: () => {
        const e = this.queue.shift();
        if (e) return Promise.resolve({ value: e, done: false });
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((r) => this.waiters.push(r));
      },
      return: async () => {
        await this.unwatch();
        return { value: undefined, done: true };
      },
    };
  }
}

interface Pending {
  readonly type: number;
  readonly path: string | undefined;
  resolve(m: XsMessage): void;
  reject(e: Error): void;
}

const decoder = new TextDecoder();
let clientInstances = 0;
const MAX_TX_ATTEMPTS = 32;

/** Operations that can run inside a transaction. */
export interface XsOps {
  read(path: string): Promise<Uint8Array>;
  readString(path: string): Promise<string>;
  /** The value, or undefined if the node does not exist. */
  tryRead(path: string): Promise<string | undefined>;
  write(path: string, value: string | Uint8Array): Promise<void>;
  mkdir(path: string): Promise<void>;
  rm(path: string): Promise<void>;
  directory(path: string): Promise<string[]>;
  getPerms(path: string): Promise<XsPerms>;
  setPerms(path: string, perms: XsPerms | readonly string[]): Promise<void>;
}

/** The operations, bound to one transaction (0: none). */
class OpsIn implements XsOps {
  constructor(
    private readonly c: XsClient,
    private readonly tx: number,
  ) {}

  read(path: string): Promise<Uint8Array> {
    return this.c.request(XS_READ, [path], { tx: this.tx, path });
  }

  async readString(path: string): Promise<string> {
    return decoder.decode(await this.read(path));
  }

  async tryRead(path: string): Promise<string | undefined> {
    try {
      return await this.readString(path);
    } catch (e) {
      if (e instanceof XsError && e.code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async write(path: string, value: string | Uint8Array): Promise<void> {
    await this.c.request(XS_WRITE, [path], { tx: this.tx, value, path });
  }

  async mkdir(path: string): Promise<void> {
    await this.c.request(XS_MKDIR, [path], { tx: this.tx, path });
  }

  async rm(path: string): Promise<void> {
    await this.c.request(XS_RM, [path], { tx: this.tx, path });
  }

  async directory(path: string): Promise<string[]> {
    const tx = this.tx;
    try {
      return xsStringList(await this.c.request(XS_DIRECTORY, [path], { tx, path }));
    } catch (e) {
      if (!(e instanceof XsError) || e.code !== 'E2BIG') throw e;
    }
    // Too many children for one reply: page through XS_DIRECTORY_PART.
    const out: string[] = [];
    let offset = 0;
    let gen: string | undefined;
    for (;;) {
      const [g = '', ...names] = xsStringList(await this.c.request(XS_DIRECTORY_PART, [path, String(offset)], { tx, path }));
      if (gen !== undefined && g !== gen) return this.directory(path); // changed meanwhile: restart
      gen = g;
      const done = names.length > 0 && names[names.length - 1] === '';
      const got = done ? names.slice(0, -1) : names;
      out.push(...got);
      offset += got.reduce((n, s) => n + Buffer.byteLength(s) + 1, 0);
      if (done || got.length === 0) return out;
    }
  }

  async getPerms(path: string): Promise<XsPerms> {
    const perms = parsePerms(xsStringList(await this.c.request(XS_GET_PERMS, [path], { tx: this.tx, path })));
    if (!perms) throw new XsError('EPROTO', 'XS_GET_PERMS', path);
    return perms;
  }

  async setPerms(path: string, perms: XsPerms | readonly string[]): Promise<void> {
    const texts = perms.map((p) => (typeof p === 'string' ? p : formatPerm(p)));
    await this.c.request(XS_SET_PERMS, [path, ...texts], { tx: this.tx, path });
  }
}

export class XsClient implements XsOps {
  private readonly parser = new XsStreamParser();
  private readonly pending = new Map<number, Pending>();
  private readonly watches = new Map<string, XsWatch>();
  private nextReq = 1;
  private nextToken = 1;
  /** Tokens are unique per client, so several clients of one connection's domain never collide. */
  private readonly tokenPrefix = `vdispl-${(clientInstances++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  private closedReason: string | undefined;

  constructor(private readonly transport: XsTransport) {
    transport.onData((bytes) => this.receive(bytes));
    transport.onClose((reason) => this.fail(reason));
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  private receive(bytes: Uint8Array): void {
    const r = this.parser.push(bytes);
    for (const m of r.messages) {
      if (m.type === XS_WATCH_EVENT) {
        const [path, token] = xsStringList(m.payload);
        if (path !== undefined && token !== undefined) this.watches.get(token)?.deliver({ path, token });
        continue;
      }
      const p = this.pending.get(m.req_id);
      if (!p) continue;
      this.pending.delete(m.req_id);
      p.resolve(m);
    }
    if (r.error) {
      this.fail(`bad reply stream: ${r.error.message}`);
      this.transport.close();
    }
  }

  private fail(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    for (const p of this.pending.values()) p.reject(new XsError('ECLOSED', XS_TYPE_NAMES[p.type] ?? String(p.type), p.path));
    this.pending.clear();
    for (const w of this.watches.values()) w.end();
    this.watches.clear();
  }

  /** Sends one request; resolves with the reply payload or rejects with XsError. */
  request(type: number, strings: readonly string[], opts: { tx?: number; value?: Uint8Array | string; path?: string } = {}): Promise<Uint8Array> {
    const op = XS_TYPE_NAMES[type] ?? String(type);
    if (this.closedReason !== undefined) return Promise.reject(new XsError('ECLOSED', op, opts.path));
    let req = this.nextReq;
    this.nextReq = (this.nextReq + 1) >>> 0 || 1;
    while (this.pending.has(req)) req = (req + 1) >>> 0 || 1;
    return new Promise<Uint8Array>((resolve, reject) => {
      this.pending.set(req, {
        type,
        path: opts.path,
        resolve: (m) => {
          if (m.type === XS_ERROR) reject(new XsError(xsErrorName(m.payload) ?? 'EPROTO', op, opts.path));
          else if (m.type !== type) reject(new XsError('EPROTO', op, opts.path));
          else resolve(m.payload);
        },
        reject,
      });
      let bytes: Uint8Array;
      try {
        bytes = encodeXsMessage({ type, req_id: req, tx_id: opts.tx ?? 0, payload: xsPayload(strings, opts.value) });
      } catch {
        this.pending.delete(req);
        reject(new XsError('E2BIG', op, opts.path));
        return;
      }
      this.transport.send(bytes);
    });
  }

  private readonly root = new OpsIn(this, 0);

  read(path: string): Promise<Uint8Array> {
    return this.root.read(path);
  }

  readString(path: string): Promise<string> {
    return this.root.readString(path);
  }

  tryRead(path: string): Promise<string | undefined> {
    return this.root.tryRead(path);
  }

  write(path: string, value: string | Uint8Array): Promise<void> {
    return this.root.write(path, value);
  }

  mkdir(path: string): Promise<void> {
    return this.root.mkdir(path);
  }

  rm(path: string): Promise<void> {
    return this.root.rm(path);
  }

  directory(path: string): Promise<string[]> {
    return this.root.directory(path);
  }

  getPerms(path: string): Promise<XsPerms> {
    return this.root.getPerms(path);
  }

  setPerms(path: string, perms: XsPerms | readonly string[]): Promise<void> {
    return this.root.setPerms(path, perms);
  }

  async getDomainPath(domid: number): Promise<string> {
    return xsStringList(await this.request(XS_GET_DOMAIN_PATH, [String(domid)]))[0] ?? '';
  }

  async introduceDomain(domid: number, gfn: number, port: number): Promise<void> {
    await this.request(XS_INTRODUCE, [String(domid), String(gfn), String(port)]);
  }

  async releaseDomain(domid: number): Promise<void> {
    await this.request(XS_RELEASE, [String(domid)]);
  }

  async isDomainIntroduced(domid: number): Promise<boolean> {
    return xsStringList(await this.request(XS_IS_DOMAIN_INTRODUCED, [String(domid)]))[0] === 'T';
  }

  /** XS_RESET_WATCHES: drops this connection's watches (those registered before this call) and transactions. */
  async resetWatches(): Promise<void> {
    const dropped = [...this.watches.values()];
    await this.request(XS_RESET_WATCHES, ['']);
    for (const w of dropped) {
      w.end();
      this.watches.delete(w.token);
    }
  }

  /**
   * Runs `body` in a transaction and commits; on EAGAIN runs it again (up to 32 times), as libxl
   * and Linux do. Throwing from `body` aborts the transaction and rethrows.
   */
  async transaction<T>(body: (tx: XsOps) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const id = Number(xsStringList(await this.request(XS_TRANSACTION_START, ['']))[0]);
      let result: T;
      try {
        result = await body(new OpsIn(this, id));
      } catch (e) {
        await this.request(XS_TRANSACTION_END, ['F'], { tx: id }).catch(() => undefined);
        throw e;
      }
      try {
        await this.request(XS_TRANSACTION_END, ['T'], { tx: id });
        return result;
      } catch (e) {
        if (!(e instanceof XsError) || e.code !== 'EAGAIN' || attempt >= MAX_TX_ATTEMPTS) throw e;
      }
    }
  }

  /**
   * Watches `path` (and below it). The first event arrives at once, as xenstored sends one on
   * registration. Events go to `callback` if given, else to `for await (const e of watch)`.
   */
  async watch(path: string, callback?: (e: WatchEvent) => void, opts: { token?: string; depth?: number } = {}): Promise<XsWatch> {
    const token = opts.token ?? `${this.tokenPrefix}-${this.nextToken++}`;
    if (this.watches.has(token)) throw new XsError('EEXIST', 'XS_WATCH', path);
    const w = new XsWatch(this, path, token, callback);
    this.watches.set(token, w);
    try {
      await this.request(XS_WATCH, opts.depth !== undefined ? [path, token, String(opts.depth)] : [path, token], { path });
    } catch (e) {
      this.watches.delete(token);
      w.end();
      throw e;
    }
    return w;
  }

  /** @internal */
  async unwatchInternal(w: XsWatch): Promise<void> {
    this.watches.delete(w.token);
    if (!this.closed) await this.request(XS_UNWATCH, [w.path, w.token], { path: w.path });
  }

  /** Closes the transport; pending requests reject with ECLOSED and watches end. */
  close(): void {
    this.fail('closed');
    this.transport.close();
  }
}

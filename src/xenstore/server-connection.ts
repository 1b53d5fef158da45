/**
 * One xenstored connection on the wire (any transport): reassembles `xsd_sockmsg` packets,
 * decodes each request's payload, runs it on the connection's store session and encodes the
 * reply with the request's req_id and tx_id. Errors are XS_ERROR replies carrying the error name;
 * unsupported types get ENOSYS, as in xenstored. A header announcing more than 4096 payload
 * bytes is a protocol error: the transport is told to close the connection. Watch events (req_id
 * 0, tx_id 0) raised while a request runs are sent after its reply.
 */
import {
  encodeXsMessage, XENSTORE_PAYLOAD_MAX, XS_CONTROL, XS_DIRECTORY, XS_DIRECTORY_PART, XS_ERROR, XS_GET_DOMAIN_PATH,
  XS_GET_PERMS, XS_INTRODUCE, XS_IS_DOMAIN_INTRODUCED, XS_MKDIR, XS_READ, XS_RELEASE, XS_RESET_WATCHES, XS_RM,
  XS_SET_PERMS, XS_TRANSACTION_END, XS_TRANSACTION_START, XS_TYPE_NAMES, XS_UNWATCH, XS_WATCH, XS_WATCH_EVENT, XS_WRITE,
  type XsErrorName, type XsMessage, XsStreamParser,
} from '../abi/xs-wire.js';
import { DOMID_FIRST_RESERVED } from '../abi/event-channel.js';
import { domainPath } from './path.js';
import { formatPerms, parsePerms } from './perms.js';
import type { XenStore, XsResult, XsSession } from './store.js';

/** Domain management requests, answered by the daemon (which can map rings). */
export interface DomainControl {
  introduce(domid: number, gfn: number, port: number): XsErrorName | undefined;
  release(domid: number): XsErrorName | undefined;
  isIntroduced(domid: number): boolean;
}

/** Where a connection's output goes. */
export interface ConnectionSink {
  /** One encoded message: a reply, or a watch event (which the transport may drop under quota). */
  send(bytes: Uint8Array, kind: 'reply' | 'event'): void;
  /** The stream is broken (protocol error): close the transport. */
  close(reason: string): void;
}

export interface ConnectionOptions {
  readonly domid: number;
  readonly privileged: boolean;
  readonly control?: DomainControl;
  readonly log?: (text: string) => void;
  /** True while the transport cannot take more replies: requests already read wait (bounded by one read's worth). */
  readonly paused?: () => boolean;
}

const OK = bytesOf('OK\0');

function bytesOf(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'latin1'));
}

/** The NUL-terminated strings of a payload, or undefined if it does not end with a NUL. */
function strings(payload: Uint8Array): string[] | undefined {
  if (payload.length === 0 || payload[payload.length - 1] !== 0) return undefined;
  return Buffer.from(payload.buffer, payload.byteOffset, payload.length - 1).toString('latin1').split('\0');
}

function list(items: readonly string[]): Uint8Array {
  return bytesOf(items.map((s) => `${s}\0`).join(''));
}

const DECIMAL = /^\d{1,10}$/;

function parseDomid(s: string | undefined): number | undefined {
  if (s === undefined || !DECIMAL.test(s)) return undefined;
  const n = Number(s);
  return n < DOMID_FIRST_RESERVED ? n : undefined;
}

function parseU32(s: string | undefined): number | undefined {
  if (s === undefined || !DECIMAL.test(s)) return undefined;
  const n = Number(s);
  return n <= 0xffff_ffff ? n : undefined;
}

type Reply = Uint8Array | XsErrorName;

/** The request types this daemon implements; others get ENOSYS. */
const HANDLED = new Set([
  XS_CONTROL, XS_DIRECTORY, XS_READ, XS_GET_PERMS, XS_WATCH, XS_UNWATCH, XS_TRANSACTION_START, XS_TRANSACTION_END,
  XS_INTRODUCE, XS_RELEASE, XS_GET_DOMAIN_PATH, XS_WRITE, XS_MKDIR, XS_RM, XS_SET_PERMS, XS_IS_DOMAIN_INTRODUCED,
  XS_RESET_WATCHES, XS_DIRECTORY_PART,
]);
/** dom0 only (XS_FLAG_PRIV). */
const PRIVILEGED = new Set([XS_CONTROL, XS_INTRODUCE, XS_RELEASE, XS_IS_DOMAIN_INTRODUCED]);

export class XsConnection {
  readonly session: XsSession;
  private readonly parser = new XsStreamParser();
  private deferred: Uint8Array[] | undefined;
  private closed = false;

  constructor(
    store: XenStore,
    private readonly opts: ConnectionOptions,
    private readonly sink: ConnectionSink,
  ) {
    this.session = store.connect({
      domid: opts.domid,
      privileged: opts.privileged,
      onWatchEvent: (path, token) => this.event(path, token),
      onClose: () => {
        if (this.closed) return;
        this.closed = true;
        sink.close('domain released');
      },
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Bytes from the transport. */
  receive(chunk: Uint8Array): void {
    if (this.closed) return;
    const r = this.parser.push(chunk);
    this.held.push(...r.messages);
    if (r.error) this.brokenStream = r.error.message;
    this.drain();
  }

  /**
   * Runs held requests until `paused()` says the transport's output is backed up (the rest wait
   * for `resume`), then acts on a stream error found after them.
   */
  private drain(): void {
    while (this.held.length > 0 && !this.closed) {
      if (this.opts.paused?.()) return;
      this.handle(this.held.shift()!);
    }
    if (this.brokenStream !== undefined && !this.closed) {
      this.opts.log?.(`xenstored: closing connection of domain ${this.opts.domid}: ${this.brokenStream}`);
      this.close();
      this.sink.close(this.brokenStream);
    }
  }

  /** The transport's output drained: run requests held back by `paused`. */
  resume(): void {
    this.drain();
  }

  private readonly held: XsMessage[] = [];
  private brokenStream: string | undefined;

  /** Runs one request and sends its reply (then any watch events it raised). */
  handle(m: XsMessage): void {
    this.deferred = [];
    let reply: Reply;
    let after: (() => void) | undefined;
    try {
      [reply, after] = this.dispatch(m);
    } catch (err) {
      // A bug, not bad input: answer EIO and keep serving everyone else.
      this.opts.log?.(`xenstored: ${XS_TYPE_NAMES[m.type] ?? m.type} failed: ${err instanceof Error ? err.stack : String(err)}`);
      reply = 'EIO';
    }
    const events = this.deferred;
    this.deferred = undefined;
    if (typeof reply !== 'string' && reply.length > XENSTORE_PAYLOAD_MAX) reply = 'E2BIG'; // send_reply
    const error = typeof reply === 'string';
    const payload = typeof reply === 'string' ? bytesOf(`${reply}\0`) : reply;
    this.sink.send(encodeXsMessage({ type: error ? XS_ERROR : m.type, req_id: m.req_id, tx_id: m.tx_id, payload }), 'reply');
    for (const e of events) this.sink.send(e, 'event');
    after?.();
  }

  private event(path: string, token: string): void {
    const payload = list([path, token]);
    if (payload.length > XENSTORE_PAYLOAD_MAX) {
      // xenstored's send_event: "Don't try to send over-long events."
      this.opts.log?.(`xenstored: dropping an over-long watch event for domain ${this.opts.domid}`);
      return;
    }
    const bytes = encodeXsMessage({ type: XS_WATCH_EVENT, req_id: 0, tx_id: 0, payload });
    if (this.deferred) this.deferred.push(bytes);
    else this.sink.send(bytes, 'event');
  }

  private dispatch(m: XsMessage): [Reply, (() => void)?] {
    const s = this.session;
    const tx = m.tx_id;
    const args = strings(m.payload);
    const one = args?.length === 1 ? args[0]! : undefined;
    const done = (r: XsResult<unknown>): Reply => (r.ok ? OK : r.error);
    // In xenstored's order (process_message): unknown type, privilege, then the transaction id,
    // which must exist for every request but (UN)WATCH.
    if (!HANDLED.has(m.type)) return ['ENOSYS'];
    if (PRIVILEGED.has(m.type) && !this.opts.privileged) return ['EACCES'];
    if (tx !== 0 && m.type !== XS_WATCH && m.type !== XS_UNWATCH && !s.hasTransaction(tx)) return ['ENOENT'];
    switch (m.type) {
      case XS_READ: {
        if (one === undefined) return ['EINVAL'];
        const r = s.read(one, tx);
        return [r.ok ? r.value : r.error];
      }
      case XS_DIRECTORY: {
        if (one === undefined) return ['EINVAL'];
        const r = s.directory(one, tx);
        if (!r.ok) return [r.error];
        const out = list(r.value);
        return [out.length > XENSTORE_PAYLOAD_MAX ? 'E2BIG' : out];
      }
      case XS_DIRECTORY_PART:
        return [this.directoryPart(args, tx)];
      case XS_GET_PERMS: {
        if (one === undefined) return ['EINVAL'];
        const r = s.getPerms(one, tx);
        return [r.ok ? list(formatPerms(r.value)) : r.error];
      }
      case XS_WRITE: {
        const nul = m.payload.indexOf(0);
        if (nul < 0) return ['EINVAL'];
        const path = Buffer.from(m.payload.buffer, m.payload.byteOffset, nul).toString('latin1');
        return [done(s.write(path, m.payload.subarray(nul + 1), tx)) /* the store copies */];
      }
      case XS_MKDIR:
        return [one === undefined ? 'EINVAL' : done(s.mkdir(one, tx))];
      case XS_RM:
        return [one === undefined ? 'EINVAL' : done(s.rm(one, tx))];
      case XS_SET_PERMS: {
        if (!args || args.length < 2) return ['EINVAL'];
        const perms = parsePerms(args.slice(1));
        return [perms ? done(s.setPerms(args[0]!, perms, tx)) : 'EINVAL'];
      }
      case XS_WATCH: {
        if (!args || args.length < 2 || args.length > 3) return ['EINVAL'];
        let depth: number | undefined;
        if (args.length === 3) {
          depth = parseU32(args[2]);
          if (depth === undefined) return ['EINVAL'];
        }
        const r = s.watch(args[0]!, args[1]!, depth);
        if (!r.ok) return [r.error];
        return [OK, () => s.initialEvent(r.value)];
      }
      case XS_UNWATCH:
        return [args?.length === 2 ? done(s.unwatch(args[0]!, args[1]!)) : 'EINVAL'];
      case XS_TRANSACTION_START: {
        if (tx !== 0) return ['EBUSY'];
        if (one === undefined) return ['EINVAL'];
        const r = s.transactionStart();
        return [r.ok ? bytesOf(`${r.value}\0`) : r.error];
      }
      case XS_TRANSACTION_END: {
        if (one !== 'T' && one !== 'F') return ['EINVAL'];
        return [done(s.transactionEnd(tx, one === 'T'))];
      }
      case XS_GET_DOMAIN_PATH: {
        const d = parseDomid(one);
        return [d === undefined ? 'EINVAL' : bytesOf(`${domainPath(d)}\0`)];
      }
      case XS_IS_DOMAIN_INTRODUCED: {
        const d = parseDomid(one);
        if (d === undefined) return ['EINVAL'];
        const yes = d === 0 || (this.opts.control?.isIntroduced(d) ?? false);
        return [bytesOf(yes ? 'T\0' : 'F\0')];
      }
      case XS_INTRODUCE: {
        if (!args || args.length !== 3) return ['EINVAL'];
        const d = parseDomid(args[0]);
        const gfn = parseU32(args[1]);
        const port = parseU32(args[2]);
        if (d === undefined || d === 0 || gfn === undefined || port === undefined) return ['EINVAL'];
        if (!this.opts.control) return ['ENOSYS'];
        return [this.opts.control.introduce(d, gfn, port) ?? OK];
      }
      case XS_RELEASE: {
        const d = parseDomid(one);
        if (d === undefined || d === 0) return ['EINVAL'];
        if (!this.opts.control) return ['ENOSYS'];
        return [this.opts.control.release(d) ?? OK];
      }
      case XS_RESET_WATCHES:
        s.resetWatches();
        return [OK];
      case XS_CONTROL:
        return [this.control(args)];
      default:
        // Types this daemon does not implement, server-to-client types, XS_INVALID and garbage.
        return ['ENOSYS'];
    }
  }

  /** `path\0offset\0` -> `gen\0` + children from byte `offset`, and a final empty name when complete. */
  private directoryPart(args: string[] | undefined, tx: number): Reply {
    if (!args || args.length !== 2) return 'EINVAL';
    const offset = parseU32(args[1]);
    if (offset === undefined) return 'EINVAL';
    const r = this.session.directoryGen(args[0]!, tx);
    if (!r.ok) return r.error;
    const all = list(r.value.children);
    const head = bytesOf(`${r.value.gen}\0`);
    if (offset >= all.length) return bytesOf(`${r.value.gen}\0\0`); // nothing (more): the final empty name
    const room = XENSTORE_PAYLOAD_MAX - head.length - 1;
    let end = offset;
    for (let i = offset; i < all.length && i - offset < room; i++) if (all[i] === 0) end = i + 1;
    const complete = end === all.length;
    const out = new Uint8Array(head.length + (end - offset) + (complete ? 1 : 0));
    out.set(head);
    out.set(all.subarray(offset, end), head.length);
    return out;
  }

  /** XS_CONTROL, minimal: `help`, `print <text>`, `quota`. dom0 only. */
  private control(args: string[] | undefined): Reply {
    const [cmd = '', ...rest] = args ?? [];
    switch (cmd) {
      case 'help':
        return bytesOf('help\nprint <text>\nquota\n\0');
      case 'print':
        this.opts.log?.(`xenstored: ${rest.join(' ')}`);
        return OK;
      case 'quota': {
        const q = this.session.store.quotas;
        return bytesOf(`${Object.entries(q).map(([k, v]) => `${k} ${v}`).join('\n')}\n\0`);
      }
      default:
        return 'EINVAL';
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.session.close();
  }
}

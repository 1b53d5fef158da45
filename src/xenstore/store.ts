/**
 * The XenStore core, pure and synchronous: the tree, permissions, transactions, watches and
 * quotas, with one `XsSession` per connection. Transports decode packets and call a session;
 * watch events leave through the session's `onWatchEvent`. Semantics follow the C xenstored
 * (`tools/xenstored/xenstored_core.c`, `_transaction.c`, `_watch.c`, `_domain.c`).
 */
import type { XsErrorName } from '../abi/xs-wire.js';
import { baseName, childPath, INTRODUCE_DOMAIN, parentPath, RELEASE_DOMAIN, type ResolvedPath, resolvePath } from './path.js';
import { accessFor, type Caller, canRead, type XsPerms } from './perms.js';
import { DEFAULT_XS_QUOTAS, type XsQuotas } from './quotas.js';
import { Transaction, type TxOp } from './transaction.js';
import { Tree, type TreeView, type XsNode } from './tree.js';
import { type Change, eventPath, matchWatch, type Watch } from './watches.js';

export type XsResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: XsErrorName };

const EMPTY = new Uint8Array(0);
const ok = <T>(value: T): XsResult<T> => ({ ok: true, value });
const err = <T = never>(error: XsErrorName): XsResult<T> => ({ ok: false, error });

export interface StoreOptions {
  readonly quotas?: Partial<XsQuotas>;
}

export interface SessionOptions {
  readonly domid: number;
  /** dom0 and the unix socket: every permission and quota check passes. */
  readonly privileged?: boolean;
  /** Called for every watch event this connection receives (path as the watch reports it). */
  readonly onWatchEvent?: (path: string, token: string) => void;
  /** Called if the store closes the session itself (its domain was released). */
  readonly onClose?: () => void;
}

/** Counters for tests and leak checks. */
export interface StoreStats {
  readonly nodes: number;
  readonly sessions: number;
  readonly watches: number;
  readonly transactions: number;
}

const ROOT_PERMS: XsPerms = [{ domid: 0, access: 'n' }];

export class XenStore {
  readonly tree = new Tree();
  readonly quotas: XsQuotas;
  private readonly sessions = new Set<XsSession>();
  private readonly specialPerms = new Map<string, XsPerms>([
    [INTRODUCE_DOMAIN, ROOT_PERMS],
    [RELEASE_DOMAIN, ROOT_PERMS],
  ]);

  constructor(opts: StoreOptions = {}) {
    this.quotas = { ...DEFAULT_XS_QUOTAS, ...opts.quotas };
    // xenstored's initial tree.
    this.tree.set('/', { value: EMPTY, perms: ROOT_PERMS, children: ['tool'] });
    this.tree.set('/tool', { value: EMPTY, perms: ROOT_PERMS, children: ['xenstored'] });
    this.tree.set('/tool/xenstored', { value: EMPTY, perms: ROOT_PERMS, children: [] });
  }

  connect(opts: SessionOptions): XsSession {
    const s = new XsSession(this, { domid: opts.domid, privileged: opts.privileged ?? false }, opts.onWatchEvent, opts.onClose);
    this.sessions.add(s);
    return s;
  }

  get stats(): StoreStats {
    let watches = 0;
    let transactions = 0;
    for (const s of this.sessions) {
      watches += s.watchCount;
      transactions += s.transactionCount;
    }
    return { nodes: this.tree.size, sessions: this.sessions.size, watches, transactions };
  }

  /** A domain was introduced: fires @introduceDomain. */
  domainIntroduced(): void {
    this.fire([{ path: INTRODUCE_DOMAIN, perms: this.specialPerms.get(INTRODUCE_DOMAIN)! }]);
  }

  /**
   * A domain is gone: every node it owns is removed (with what lies below), its entries in other
   * nodes' permissions are dropped, its connections' watches and transactions are dropped, and
   * @releaseDomain fires (xenstored's domain_tree_remove and ACL cleanup).
   */
  domainReleased(domid: number): void {
    for (const s of this.sessions) if (s.caller.domid === domid) s.close(true);
    const owned = [...this.tree.paths()].filter((p) => this.tree.get(p)!.perms[0]!.domid === domid && p !== '/');
    owned.sort((a, b) => a.length - b.length);
    const changes: Change[] = [];
    for (const p of owned) if (this.tree.get(p)) removeSubtree(this.tree, p, changes);
    // Its entries in other nodes' ACLs go too, so a later domain reusing the domid inherits nothing.
    for (const p of [...this.tree.paths()]) {
      const n = this.tree.get(p)!;
      if (n.perms.some((e, i) => i > 0 && e.domid === domid)) {
        const perms = n.perms.filter((e, i) => i === 0 || e.domid !== domid);
        this.tree.set(p, { value: n.value, perms, children: n.children });
        changes.push({ path: p, perms: n.perms, permsAfter: perms });
      }
    }
    changes.push({ path: RELEASE_DOMAIN, perms: this.specialPerms.get(RELEASE_DOMAIN)! });
    this.fire(changes);
  }

  /** @internal */
  special(path: string): XsPerms {
    return this.specialPerms.get(path) ?? ROOT_PERMS;
  }

  /** @internal */
  setSpecial(path: string, perms: XsPerms): void {
    this.specialPerms.set(path, perms);
    this.fire([{ path, perms }]);
  }

  /** @internal */
  detach(s: XsSession): void {
    this.sessions.delete(s);
    this.watching.delete(s);
  }

  /** Sessions with at least one watch: a change costs nothing per idle connection. */
  private readonly watching = new Set<XsSession>();

  /** @internal */
  setWatching(s: XsSession, on: boolean): void {
    if (on) this.watching.add(s);
    else this.watching.delete(s);
  }

  /** @internal Delivers `changes` to every matching watch whose connection may see them. */
  fire(changes: readonly Change[]): void {
    if (changes.length === 0) return;
    for (const s of this.watching) {
      try {
        s.deliver(changes);
      } catch {
        // A connection's event sink failed: that is its transport's problem, not the writer's
        // nor the other watchers'.
      }
    }
  }
}

function removeSubtree(view: TreeView, abs: string, changes: Change[]): void {
  const node = view.get(abs)!;
  const stack = [abs];
  while (stack.length > 0) {
    const p = stack.pop()!;
    const n = view.get(p);
    if (!n) continue;
    for (const c of n.children) stack.push(childPath(p, c));
    view.delete(p);
  }
  const parent = parentPath(abs);
  const pn = view.get(parent);
  if (pn) {
    const name = baseName(abs);
    view.set(parent, { value: pn.value, perms: pn.perms, children: pn.children.filter((c) => c !== name) });
  }
  changes.push({ path: abs, perms: node.perms, removed: true });
}

/** One connection's view of the store. Every method returns an XsResult; none throws on bad input. */
export class XsSession {
  private readonly watches: Watch[] = [];
  private readonly transactions = new Map<number, Transaction>();
  private nextTx = 1;
  private closed = false;

  constructor(
    readonly store: XenStore,
    readonly caller: Caller,
    private readonly onWatchEvent: ((path: string, token: string) => void) | undefined,
    private readonly onClosed?: () => void,
  ) {}

  get watchCount(): number {
    return this.watches.length;
  }

  hasTransaction(id: number): boolean {
    return this.transactions.has(id);
  }

  get transactionCount(): number {
    return this.transactions.size;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private get quotas(): XsQuotas {
    return this.store.quotas;
  }

  private get privileged(): boolean {
    return this.caller.privileged;
  }

  // ---- helpers ----

  private resolve(path: string, allowSpecial = false): ResolvedPath | undefined {
    return resolvePath(path, this.caller.domid, {
      allowSpecial,
      maxRelative: this.privileged ? Number.POSITIVE_INFINITY : this.quotas.pathLength,
    });
  }

  private view(tx: number): TreeView | Transaction | undefined {
    if (this.closed) return undefined;
    return tx === 0 ? this.store.tree : this.transactions.get(tx);
  }

  /**
   * Why `abs` cannot be used: ENOENT if the nearest existing ancestor grants the access asked
   * for, else EACCES, so existence does not leak (errno_from_parents).
   */
  private missing(view: TreeView, abs: string, want: 'read' | 'write'): XsErrorName {
    let p = parentPath(abs);
    let n = view.get(p);
    while (!n && p !== '/') {
      p = parentPath(p);
      n = view.get(p);
    }
    if (!n) return 'EACCES';
    const a = accessFor(n.perms, this.caller);
    return (want === 'read' ? a.read : a.write) ? 'ENOENT' : 'EACCES';
  }

  private lookup(view: TreeView, abs: string, want: 'read' | 'write'): XsResult<XsNode> {
    const n = view.get(abs);
    if (!n) return err(this.missing(view, abs, want));
    const a = accessFor(n.perms, this.caller);
    return (want === 'read' ? a.read : a.write) ? ok(n) : err('EACCES');
  }

  /** Runs a modifying operation on the live tree (firing watches) or records it in a transaction. */
  private modify(tx: number, op: TxOp, run: (view: TreeView, changes: Change[]) => XsResult<void>): XsResult<void> {
    const view = this.view(tx);
    if (!view) return err('ENOENT');
    if (view instanceof Transaction) {
      const rollback = view.checkpoint();
      const r = run(view, []);
      if (view.overQuota) {
        rollback?.();
        return err('ENOSPC');
      }
      if (r.ok) view.log.push(op);
      return r;
    }
    const changes: Change[] = [];
    const r = run(view, changes);
    this.store.fire(changes);
    return r;
  }

  private inherit(perms: XsPerms): XsPerms {
    if (this.privileged) return perms;
    return [{ domid: this.caller.domid, access: perms[0]!.access }, ...perms.slice(1)];
  }

  private create(view: TreeView, abs: string, value: Uint8Array, changes: Change[]): XsResult<void> {
    const chain = [abs];
    let top = parentPath(abs);
    let anc = view.get(top);
    while (!anc) {
      chain.push(top);
      top = parentPath(top);
      anc = view.get(top);
    }
    if (!accessFor(anc.perms, this.caller).write) return err('EACCES');
    if (!this.privileged && view.ownedBy(this.caller.domid) + chain.length > this.quotas.nodesPerDomain) {
      return err('ENOSPC');
    }
    let parent = top;
    let pnode: Omit<XsNode, 'gen'> = anc;
    for (let i = chain.length - 1; i >= 0; i--) {
      const path = chain[i]!;
      const node = { value: i === 0 ? value : EMPTY, perms: this.inherit(pnode.perms), children: [] };
      view.set(parent, { value: pnode.value, perms: pnode.perms, children: [...pnode.children, baseName(path)] });
      view.set(path, node);
      parent = path;
      pnode = node;
    }
    changes.push({ path: abs, perms: pnode.perms });
    return ok(undefined);
  }

  private doWrite(view: TreeView, abs: string, value: Uint8Array, changes: Change[]): XsResult<void> {
    const n = view.get(abs);
    if (!n) {
      const why = this.missing(view, abs, 'write');
      return why === 'ENOENT' ? this.create(view, abs, value, changes) : err(why);
    }
    if (!accessFor(n.perms, this.caller).write) return err('EACCES');
    view.set(abs, { value, perms: n.perms, children: n.children });
    changes.push({ path: abs, perms: n.perms });
    return ok(undefined);
  }

  private doMkdir(view: TreeView, abs: string, changes: Change[]): XsResult<void> {
    const n = view.get(abs);
    if (n) return accessFor(n.perms, this.caller).write ? ok(undefined) : err('EACCES');
    const why = this.missing(view, abs, 'write');
    return why === 'ENOENT' ? this.create(view, abs, EMPTY, changes) : err(why);
  }

  private doRm(view: TreeView, abs: string, changes: Change[]): XsResult<void> {
    if (abs === '/') return err('EINVAL');
    const n = view.get(abs);
    if (!n) {
      const why = this.missing(view, abs, 'write');
      // A missing node is fine if its parent exists.
      if (why === 'ENOENT' && view.get(parentPath(abs))) return ok(undefined);
      return err(why);
    }
    if (!accessFor(n.perms, this.caller).write) return err('EACCES');
    removeSubtree(view, abs, changes);
    return ok(undefined);
  }

  private doSetPerms(view: TreeView, abs: string, perms: XsPerms, changes: Change[]): XsResult<void> {
    const n = view.get(abs);
    if (!n) return err(this.missing(view, abs, 'write'));
    if (!accessFor(n.perms, this.caller).owner) return err('EACCES');
    if (!this.privileged && perms[0]!.domid !== n.perms[0]!.domid) return err('EPERM');
    if (!this.privileged && perms.length > this.quotas.permsPerNode) return err('ENOSPC');
    view.set(abs, { value: n.value, perms, children: n.children });
    changes.push({ path: abs, perms: n.perms, permsAfter: perms });
    return ok(undefined);
  }

  // ---- requests ----

  /** The node's value (a copy: the store's own bytes never leave it). */
  read(path: string, tx = 0): XsResult<Uint8Array> {
    return this.observe(path, tx, (n) => n.value.slice());
  }

  directory(path: string, tx = 0): XsResult<string[]> {
    return this.observe(path, tx, (n) => [...n.children]);
  }

  /** Children with the node's generation (for XS_DIRECTORY_PART). */
  directoryGen(path: string, tx = 0): XsResult<{ gen: number; children: readonly string[] }> {
    return this.observe(path, tx, (n) => ({ gen: n.gen, children: n.children }));
  }

  getPerms(path: string, tx = 0): XsResult<XsPerms> {
    const r = this.resolve(path, true);
    if (r?.abs.startsWith('@')) {
      if (!this.view(tx)) return err('ENOENT');
      return canRead(this.store.special(r.abs), this.caller) ? ok(this.store.special(r.abs)) : err('EACCES');
    }
    return this.observe(path, tx, (n) => n.perms);
  }

  private observe<T>(path: string, tx: number, pick: (n: XsNode) => T): XsResult<T> {
    const r = this.resolve(path);
    if (!r) return err('EINVAL');
    const view = this.view(tx);
    if (!view) return err('ENOENT');
    const rollback = view instanceof Transaction ? view.checkpoint() : undefined;
    if (view instanceof Transaction) view.markRead(r.abs);
    const n = this.lookup(view, r.abs, 'read');
    if (view instanceof Transaction && view.overQuota) {
      rollback?.();
      return err('ENOSPC');
    }
    return n.ok ? ok(pick(n.value)) : n;
  }

  write(path: string, value: Uint8Array, tx = 0): XsResult<void> {
    const r = this.resolve(path);
    if (!r) return err('EINVAL');
    if (!this.privileged && value.length > this.quotas.valueSize) return err('ENOSPC');
    const own = value.slice(); // the caller may reuse its buffer
    return this.modify(tx, { op: 'write', path: r.abs, value: own }, (v, c) => this.doWrite(v, r.abs, own, c));
  }

  mkdir(path: string, tx = 0): XsResult<void> {
    const r = this.resolve(path);
    if (!r) return err('EINVAL');
    return this.modify(tx, { op: 'mkdir', path: r.abs }, (v, c) => this.doMkdir(v, r.abs, c));
  }

  rm(path: string, tx = 0): XsResult<void> {
    const r = this.resolve(path);
    if (!r) return err('EINVAL');
    return this.modify(tx, { op: 'rm', path: r.abs }, (v, c) => this.doRm(v, r.abs, c));
  }

  setPerms(path: string, perms: XsPerms, tx = 0): XsResult<void> {
    const r = this.resolve(path, true);
    if (!r) return err('EINVAL');
    if (perms.length === 0) return err('EINVAL');
    if (r.abs.startsWith('@')) {
      if (!this.privileged) return err('EACCES');
      if (!this.view(tx)) return err('ENOENT');
      this.store.setSpecial(r.abs, perms);
      return ok(undefined);
    }
    return this.modify(tx, { op: 'setPerms', path: r.abs, perms }, (v, c) => this.doSetPerms(v, r.abs, perms, c));
  }

  // ---- transactions ----

  transactionStart(): XsResult<number> {
    if (this.closed) return err('EINVAL');
    if (!this.privileged && this.transactions.size >= this.quotas.transactionsPerConnection) return err('ENOSPC');
    let id = this.nextTx;
    while (id === 0 || this.transactions.has(id)) id = (id + 1) >>> 0;
    this.nextTx = (id + 1) >>> 0;
    const limit = this.privileged ? Number.POSITIVE_INFINITY : this.quotas.nodesPerTransaction;
    this.transactions.set(id, new Transaction(id, this.store.tree, limit));
    return ok(id);
  }

  /** Commits (`commit`) or discards transaction `id`. EAGAIN: a node it read changed; retry it. */
  transactionEnd(id: number, commit: boolean): XsResult<void> {
    const t = this.transactions.get(id);
    if (!t || this.closed) return err('ENOENT');
    this.transactions.delete(id);
    if (!commit) return ok(undefined);
    if (t.conflicts()) return err('EAGAIN');
    // Two transactions may each stay under the node quota and exceed it together.
    if (!this.privileged && this.store.tree.ownedBy(this.caller.domid) + t.ownedDelta(this.caller.domid) > this.quotas.nodesPerDomain) {
      return err('ENOSPC');
    }
    const tree = this.store.tree;
    // Nodes the transaction only wrote, or consulted for permissions, may have changed meanwhile
    // (a device directory removed, an owner changed). Replay every operation, with its checks,
    // against the live tree in a scratch overlay first: if any now fails, the transaction's view
    // is stale and it gets EAGAIN (xenstored, which checks every node it consulted, answers the
    // same), so a commit can never do what the same requests outside a transaction could not.
    if (!this.replay(t.log, new Transaction(0, tree), [])) return err('EAGAIN');
    const changes: Change[] = [];
    this.replay(t.log, tree, changes);
    this.store.fire(changes);
    return ok(undefined);
  }

  private replay(log: readonly TxOp[], view: TreeView, changes: Change[]): boolean {
    for (const op of log) {
      const r =
        op.op === 'write' ? this.doWrite(view, op.path, op.value, changes)
        : op.op === 'mkdir' ? this.doMkdir(view, op.path, changes)
        : op.op === 'rm' ? this.doRm(view, op.path, changes)
        : this.doSetPerms(view, op.path, op.perms, changes);
      if (!r.ok) return false;
    }
    return true;
  }

  // ---- watches ----

  /**
   * Adds a watch. The caller must then send the reply and call `initialEvent` (a new watch fires
   * once at once, after the reply).
   */
  watch(path: string, token: string, depth?: number): XsResult<Watch> {
    if (this.closed) return err('EINVAL');
    const r = this.resolve(path, true);
    if (!r) return err('EINVAL');
    if (depth !== undefined && (!Number.isInteger(depth) || depth < 0)) return err('EINVAL');
    if (this.watches.some((w) => w.path === r.abs && w.token === token)) return err('EEXIST');
    if (!this.privileged && this.watches.length >= this.quotas.watchesPerConnection) return err('E2BIG');
    const w: Watch = { path: r.abs, token, relative: r.relative, depth };
    this.watches.push(w);
    this.store.setWatching(this, true);
    return ok(w);
  }

  initialEvent(w: Watch): void {
    if (this.watches.includes(w)) this.onWatchEvent?.(eventPath(w, w.path, this.caller.domid), w.token);
  }

  unwatch(path: string, token: string): XsResult<void> {
    const r = this.resolve(path, true);
    if (!r) return err('EINVAL');
    const i = this.watches.findIndex((w) => w.path === r.abs && w.token === token);
    if (i < 0) return err('ENOENT');
    this.watches.splice(i, 1);
    if (this.watches.length === 0) this.store.setWatching(this, false);
    return ok(undefined);
  }

  /** XS_RESET_WATCHES: drops every watch and transaction of this connection. */
  resetWatches(): void {
    this.watches.length = 0;
    this.store.setWatching(this, false);
    this.transactions.clear();
  }

  /** @internal */
  deliver(changes: readonly Change[]): void {
    if (this.watches.length === 0 || !this.onWatchEvent) return;
    for (const c of changes) {
      if (!this.privileged && !canRead(c.perms, this.caller) && !(c.permsAfter && canRead(c.permsAfter, this.caller))) continue;
      for (const w of this.watches) {
        const abs = matchWatch(w, c);
        if (abs !== undefined) this.onWatchEvent(eventPath(w, abs, this.caller.domid), w.token);
      }
    }
  }

  /** Drops watches and transactions and detaches from the store (`byStore`: tell the owner). */
  close(byStore = false): void {
    if (this.closed) return;
    this.closed = true;
    this.resetWatches();
    this.store.detach(this);
    if (byStore) this.onClosed?.();
  }
}

/**
 * A transaction as xenstored runs one: reads and writes go through an overlay on the live tree,
 * each node fixed at its first access (not at the start: a node first touched late shows its
 * value then; a commit fails if a node read was changed meanwhile anyway). Its changes
 * are logged as operations and replayed on the live tree at commit, which fails with EAGAIN
 * exactly when a node the transaction *read* (READ, DIRECTORY, GET_PERMS) was changed by someone
 * else since; nodes it only wrote are not checked (xenstored's rule). A request that would make it
 * touch more than `limit` nodes (reads included) fails with ENOSPC and is rolled back.
 */
import type { XsPerms } from './perms.js';
import { ABSENT, type Tree, type TreeView, type XsNode } from './tree.js';

export type TxOp =
  | { readonly op: 'write'; readonly path: string; readonly value: Uint8Array }
  | { readonly op: 'mkdir'; readonly path: string }
  | { readonly op: 'rm'; readonly path: string }
  | { readonly op: 'setPerms'; readonly path: string; readonly perms: XsPerms };

const TX_GEN = -2;

function restore<K, V>(m: Map<K, V>, saved: Map<K, V>): void {
  m.clear();
  for (const [k, v] of saved) m.set(k, v);
}

function restoreSet<K>(set: Set<K>, saved: Set<K>): void {
  set.clear();
  for (const k of saved) set.add(k);
}

export class Transaction implements TreeView {
  private readonly overlay = new Map<string, XsNode | null>();
  private readonly original = new Map<string, number>();
  private readonly reads = new Set<string>();
  private readonly written = new Set<string>();
  private readonly ownedDeltas = new Map<number, number>();
  readonly log: TxOp[] = [];

  /** Set when a request made the transaction touch more than `limit` nodes (see checkpoint). */
  overQuota = false;

  constructor(
    readonly id: number,
    private readonly tree: Tree,
    private readonly limit = Number.POSITIVE_INFINITY,
  ) {}

  get(path: string): XsNode | undefined {
    const cached = this.overlay.get(path);
    if (cached !== undefined) return cached ?? undefined;
    const n = this.tree.get(path);
    if (this.overlay.size >= this.limit) this.overQuota = true;
    this.overlay.set(path, n ?? null);
    this.original.set(path, n?.gen ?? ABSENT);
    return n;
  }

  set(path: string, node: Omit<XsNode, 'gen'>): void {
    const old = this.get(path);
    if (old) this.count(old.perms[0]!.domid, -1);
    this.count(node.perms[0]!.domid, 1);
    this.overlay.set(path, { ...node, gen: TX_GEN });
    this.written.add(path);
  }

  delete(path: string): void {
    const old = this.get(path);
    if (old) this.count(old.perms[0]!.domid, -1);
    this.overlay.set(path, null);
    this.written.add(path);
  }

  ownedBy(domid: number): number {
    return this.tree.ownedBy(domid) + this.ownedDelta(domid);
  }

  /** Nodes this transaction adds to (or removes from) `domid`'s count. */
  ownedDelta(domid: number): number {
    return this.ownedDeltas.get(domid) ?? 0;
  }

  /**
   * Saves the state before a request of a limited transaction; `rollback` restores it if the
   * request went over the node limit. Returns undefined when there is no limit.
   */
  checkpoint(): (() => void) | undefined {
    if (this.limit === Number.POSITIVE_INFINITY) return undefined;
    const overlay = new Map(this.overlay);
    const original = new Map(this.original);
    const reads = new Set(this.reads);
    const written = new Set(this.written);
    const owned = new Map(this.ownedDeltas);
    const log = this.log.length;
    return () => {
      restore(this.overlay, overlay);
      restore(this.original, original);
      restore(this.ownedDeltas, owned);
      restoreSet(this.reads, reads);
      restoreSet(this.written, written);
      this.log.length = log;
      this.overQuota = false;
    };
  }

  /** Records that the caller observed `path` (its value, children or permissions). */
  markRead(path: string): void {
    this.get(path);
    if (!this.written.has(path)) this.reads.add(path);
  }

  /** Whether someone else changed a node this transaction read. */
  conflicts(): boolean {
    for (const p of this.reads) if (this.tree.genOf(p) !== this.original.get(p)) return true;
    return false;
  }

  private count(domid: number, d: number): void {
    this.ownedDeltas.set(domid, this.ownedDelta(domid) + d);
  }
}

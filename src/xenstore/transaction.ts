/**
 * A transaction as xenstored runs one: reads and writes go through an overlay on the live tree,
 * each node fixed at its first access, so the transaction sees a consistent view. Its changes
 * are logged as operations and replayed on the live tree at commit, which fails with EAGAIN
 * exactly when a node the transaction *read* (READ, DIRECTORY, GET_PERMS) was changed by someone
 * else since; nodes it only wrote are not checked (xenstored's rule).
 */
import type { XsPerms } from './perms.js';
import { ABSENT, type Tree, type TreeView, type XsNode } from './tree.js';

export type TxOp =
  | { readonly op: 'write'; readonly path: string; readonly value: Uint8Array }
  | { readonly op: 'mkdir'; readonly path: string }
  | { readonly op: 'rm'; readonly path: string }
  | { readonly op: 'setPerms'; readonly path: string; readonly perms: XsPerms };

const TX_GEN = -2;

export class Transaction implements TreeView {
  private readonly overlay = new Map<string, XsNode | null>();
  private readonly original = new Map<string, number>();
  private readonly reads = new Set<string>();
  private readonly written = new Set<string>();
  private readonly ownedDelta = new Map<number, number>();
  readonly log: TxOp[] = [];

  constructor(
    readonly id: number,
    private readonly tree: Tree,
  ) {}

  /** Nodes this transaction has touched (read or written). */
  get touched(): number {
    return this.overlay.size;
  }

  get(path: string): XsNode | undefined {
    const cached = this.overlay.get(path);
    if (cached !== undefined) return cached ?? undefined;
    const n = this.tree.get(path);
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
    return this.tree.ownedBy(domid) + (this.ownedDelta.get(domid) ?? 0);
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
    this.ownedDelta.set(domid, (this.ownedDelta.get(domid) ?? 0) + d);
  }
}

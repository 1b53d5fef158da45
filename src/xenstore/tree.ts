/**
 * The node tree: immutable node records in a map keyed by absolute path, each with a value, its
 * permissions, its children's names in creation order and a generation number that changes with
 * every modification of the record (a child added or removed modifies the parent). A transaction
 * reads and writes through the same `TreeView` interface as the live tree.
 */
import type { XsPerms } from './perms.js';

export interface XsNode {
  readonly value: Uint8Array;
  readonly perms: XsPerms;
  readonly children: readonly string[];
  /** Generation: unique per modification; -1 never appears on a node (it means "absent"). */
  readonly gen: number;
}

export const ABSENT = -1;

export interface TreeView {
  get(path: string): XsNode | undefined;
  /** Stores a new record for `path` (the view assigns its generation). */
  set(path: string, node: Omit<XsNode, 'gen'>): void;
  delete(path: string): void;
  /** Nodes owned by `domid` as this view sees them. */
  ownedBy(domid: number): number;
}

/** The live tree. */
export class Tree implements TreeView {
  private readonly nodes = new Map<string, XsNode>();
  private readonly owned = new Map<number, number>();
  private generation = 0;

  get size(): number {
    return this.nodes.size;
  }

  get(path: string): XsNode | undefined {
    return this.nodes.get(path);
  }

  set(path: string, node: Omit<XsNode, 'gen'>): void {
    const old = this.nodes.get(path);
    if (old) this.count(old.perms[0]!.domid, -1);
    this.count(node.perms[0]!.domid, 1);
    this.nodes.set(path, { ...node, gen: ++this.generation });
  }

  delete(path: string): void {
    const old = this.nodes.get(path);
    if (!old) return;
    this.count(old.perms[0]!.domid, -1);
    this.nodes.delete(path);
  }

  ownedBy(domid: number): number {
    return this.owned.get(domid) ?? 0;
  }

  /** Current generation of `path`, ABSENT if missing. */
  genOf(path: string): number {
    return this.nodes.get(path)?.gen ?? ABSENT;
  }

  paths(): IterableIterator<string> {
    return this.nodes.keys();
  }

  private count(domid: number, d: number): void {
    const n = (this.owned.get(domid) ?? 0) + d;
    if (n === 0) this.owned.delete(domid);
    else this.owned.set(domid, n);
  }
}

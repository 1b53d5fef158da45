/**
 * Watch matching: a watch on `wpath` fires for a change at `wpath` or anywhere below it (within
 * `depth` levels when given), and, when a subtree is removed, for watches below the removed path
 * (reported with the watch's own path, as xenstored does). Special paths (`@releaseDomain`...)
 * match only watches on exactly that path. Relative watches get relative event paths.
 */
import { depthOf, isAtOrBelow, relativeTo } from './path.js';
import type { XsPerms } from './perms.js';

export interface Watch {
  /** Absolute path or special path. */
  readonly path: string;
  readonly token: string;
  /** Registered with a relative path: events are reported relative to the domain's home. */
  readonly relative: boolean;
  /** Only changes at most this many levels below `path` (undefined: any depth). */
  readonly depth: number | undefined;
}

/** One modification, as watches see it. */
export interface Change {
  readonly path: string;
  /** Permissions before the change (or of the new node); a watcher must be able to read with them or `permsAfter`. */
  readonly perms: XsPerms;
  readonly permsAfter?: XsPerms;
  /** A subtree was removed: watches below `path` fire too. */
  readonly removed?: boolean;
}

/** The absolute event path `w` reports for `c`, or undefined if it does not fire. */
export function matchWatch(w: Watch, c: Change): string | undefined {
  if (c.path.startsWith('@') || w.path.startsWith('@')) return c.path === w.path ? c.path : undefined;
  if (isAtOrBelow(c.path, w.path)) {
    if (w.depth !== undefined && depthOf(c.path) - depthOf(w.path) > w.depth) return undefined;
    return c.path;
  }
  if (c.removed && isAtOrBelow(w.path, c.path)) return w.path;
  return undefined;
}

/** The path as the watcher gets it. */
export function eventPath(w: Watch, abs: string, domid: number): string {
  return w.relative ? relativeTo(abs, domid) : abs;
}

/**
 * XenStore paths as xenstored checks them (`is_valid_nodename`, `canonicalize`): absolute paths
 * start with `/`, relative ones are resolved against `/local/domain/<domid>`, only ASCII
 * alphanumerics and `-/_@` are allowed, no empty components, no trailing slash but on the root.
 * `@introduceDomain` and `@releaseDomain` are the special paths, valid only where a caller says so
 * (watches and their permissions).
 */
import { XENSTORE_ABS_PATH_MAX, XENSTORE_REL_PATH_MAX } from '../abi/xs-wire.js';

export const INTRODUCE_DOMAIN = '@introduceDomain';
export const RELEASE_DOMAIN = '@releaseDomain';
export const SPECIAL_PATHS: readonly string[] = [INTRODUCE_DOMAIN, RELEASE_DOMAIN];

export function domainPath(domid: number): string {
  return `/local/domain/${domid}`;
}

const VALID = /^[A-Za-z0-9\-/_@]+$/;
const LOCAL = /^\/local\/domain\/\d{1,5}\//;

export interface ResolvedPath {
  /** The absolute path (or the special path itself). */
  readonly abs: string;
  /** The caller gave a relative path: events for it are reported relative too. */
  readonly relative: boolean;
}

/**
 * Validates `path` as sent by domain `domid` and makes it absolute. `maxRelative` caps the length
 * below `/local/domain/<n>/` (xenstored's path-length quota: REL_PATH_MAX by default, not applied
 * to privileged callers). Returns undefined for an invalid path (the daemon answers EINVAL).
 */
export function resolvePath(
  path: string,
  domid: number,
  opts: { allowSpecial?: boolean; maxRelative?: number } = {},
): ResolvedPath | undefined {
  if (path.length === 0) return undefined;
  if (path.startsWith('@')) {
    return opts.allowSpecial && SPECIAL_PATHS.includes(path) ? { abs: path, relative: false } : undefined;
  }
  const relative = !path.startsWith('/');
  const abs = relative ? `${domainPath(domid)}/${path}` : path;
  if (abs.length > XENSTORE_ABS_PATH_MAX) return undefined;
  if (!VALID.test(abs) || abs.includes('//') || abs.includes('@')) return undefined;
  if (abs.length > 1 && abs.endsWith('/')) return undefined;
  const local = LOCAL.exec(abs);
  const maxRel = opts.maxRelative ?? XENSTORE_REL_PATH_MAX;
  if (abs.length - (local ? local[0].length : 0) > maxRel) return undefined;
  return { abs, relative };
}

/** The parent of an absolute path ('/' for top-level nodes and the root itself). */
export function parentPath(abs: string): string {
  const i = abs.lastIndexOf('/');
  return i <= 0 ? '/' : abs.slice(0, i);
}

/** The last component. */
export function baseName(abs: string): string {
  return abs.slice(abs.lastIndexOf('/') + 1);
}

export function childPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

/** Whether `path` is `ancestor` or below it. */
export function isAtOrBelow(path: string, ancestor: string): boolean {
  if (ancestor === '/') return path.startsWith('/');
  return path === ancestor || (path.startsWith(ancestor) && path.charCodeAt(ancestor.length) === 47);
}

/** Number of components below the root ('/' is 0, '/a/b' is 2). */
export function depthOf(abs: string): number {
  if (abs === '/') return 0;
  let n = 0;
  for (let i = 0; i < abs.length; i++) if (abs.charCodeAt(i) === 47) n++;
  return n;
}

/** How a path is shown to a caller that gave it relative: without the domain prefix. */
export function relativeTo(abs: string, domid: number): string {
  const prefix = `${domainPath(domid)}/`;
  return abs.startsWith(prefix) ? abs.slice(prefix.length) : abs;
}

/**
 * XenStore node permissions: a list of `<letter><domid>` entries. Entry 0 names the owner, who
 * always has full access, and its letter is what every domain without an entry of its own gets.
 * Letters: `n` none, `r` read, `w` write, `b` both. Privileged connections (dom0) pass every check.
 */
import { DOMID_FIRST_RESERVED } from '../abi/event-channel.js';

export type XsAccess = 'n' | 'r' | 'w' | 'b';

export interface XsPerm {
  readonly domid: number;
  readonly access: XsAccess;
}

export type XsPerms = readonly XsPerm[];

const PERM = /^([nrwb])(\d{1,5})$/;

export function parsePerm(text: string): XsPerm | undefined {
  const m = PERM.exec(text);
  if (!m) return undefined;
  const domid = Number(m[2]);
  if (domid >= DOMID_FIRST_RESERVED) return undefined;
  return { access: m[1] as XsAccess, domid };
}

export function formatPerm(p: XsPerm): string {
  return `${p.access}${p.domid}`;
}

export function formatPerms(perms: XsPerms): string[] {
  return perms.map(formatPerm);
}

/** Parses a whole list; undefined if any entry is malformed or the list is empty. */
export function parsePerms(texts: readonly string[]): XsPerms | undefined {
  if (texts.length === 0) return undefined;
  const out: XsPerm[] = [];
  for (const t of texts) {
    const p = parsePerm(t);
    if (!p) return undefined;
    out.push(p);
  }
  return out;
}

export interface Caller {
  readonly domid: number;
  readonly privileged: boolean;
}

/** What `caller` may do with a node carrying `perms` (xenstored's perm_for_conn). */
export function accessFor(perms: XsPerms, caller: Caller): { read: boolean; write: boolean; owner: boolean } {
  if (caller.privileged || perms[0]?.domid === caller.domid) return { read: true, write: true, owner: true };
  let access: XsAccess = perms[0]?.access ?? 'n';
  for (let i = 1; i < perms.length; i++) {
    if (perms[i]!.domid === caller.domid) {
      access = perms[i]!.access;
      break;
    }
  }
  return { read: access === 'r' || access === 'b', write: access === 'w' || access === 'b', owner: false };
}

export function canRead(perms: XsPerms, caller: Caller): boolean {
  return accessFor(perms, caller).read;
}

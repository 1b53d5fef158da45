/**
 * Shared helpers for the XenStore unit tests: a store with a dom0 session, guest home
 * directories, event recorders and XsResult unwrapping.
 */
import type { XsQuotas } from '../../../src/xenstore/quotas.js';
import { type XsResult, XenStore, type XsSession } from '../../../src/xenstore/store.js';
import type { XsPerms } from '../../../src/xenstore/perms.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const enc = (s: string): Uint8Array => encoder.encode(s);
export const dec = (b: Uint8Array): string => decoder.decode(b);

/** xenstored's initial tree: /, /tool, /tool/xenstored. */
export const INITIAL_NODES = 3;

/** The value of an ok result; throws (failing the test) on an error result. */
export function val<T>(r: XsResult<T>): T {
  if (!r.ok) throw new Error(`expected ok, got ${r.error}`);
  return r.value;
}

/** The error name, or 'OK'. */
export function code(r: XsResult<unknown>): string {
  return r.ok ? 'OK' : r.error;
}

/** A read's value as a string, or the error name prefixed with '!'. */
export function readStr(s: XsSession, path: string, tx = 0): string {
  const r = s.read(path, tx);
  return r.ok ? dec(r.value) : `!${r.error}`;
}

export function newStore(quotas?: Partial<XsQuotas>): { store: XenStore; dom0: XsSession } {
  const store = new XenStore(quotas ? { quotas } : {});
  const dom0 = store.connect({ domid: 0, privileged: true });
  return { store, dom0 };
}

/** dom0 creates /local/domain/<domid> owned by the guest (perms `[n<domid>]` unless given). */
export function makeHome(dom0: XsSession, domid: number, perms: XsPerms = [{ domid, access: 'n' }]): string {
  const home = `/local/domain/${domid}`;
  val(dom0.mkdir(home));
  val(dom0.setPerms(home, perms));
  return home;
}

export interface Recorder {
  readonly session: XsSession;
  readonly events: [string, string][];
  /** Returns and clears the events seen so far. */
  take(): [string, string][];
}

export function recorder(store: XenStore, domid: number, privileged: boolean): Recorder {
  const events: [string, string][] = [];
  const session = store.connect({ domid, privileged, onWatchEvent: (p, t) => events.push([p, t]) });
  return {
    session,
    events,
    take: () => events.splice(0),
  };
}

/** Registers a watch and delivers its initial event, as the wire layer does. */
export function watchNow(s: XsSession, path: string, token: string, depth?: number): string {
  const r = s.watch(path, token, depth);
  if (r.ok) s.initialEvent(r.value);
  return code(r);
}

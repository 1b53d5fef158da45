/**
 * The whole platform layers 5-8 use: the hypervisor interface (memory, grants, grant maps, event
 * channels) plus a XenStore client. On the emulated machine the client runs over the domain's
 * xenstore ring (or, for dom0, a pipe to the embedded daemon); on real Xen it would be
 * /dev/xen/xenbus or the daemon's socket. Frontends and backends take nothing else.
 */
import type { DomainContext } from '../hypervisor/domain-context.js';
import type { Platform } from '../hypervisor/platform.js';
import type { XsClient } from '../xenstore/client.js';
import { connectGuest } from '../xenstore/client-transports.js';

export interface XenPlatform extends Platform {
  readonly xenstore: XsClient;
}

export function withXenstore(platform: Platform, xenstore: XsClient): XenPlatform {
  const p: Platform = Object.create(platform) as Platform;
  return Object.assign(p, { xenstore });
}

/** A domain's platform with a xenstore client over the ring its builder set up. */
export function domainPlatform(ctx: Pick<DomainContext, 'platform' | 'startInfo'>): XenPlatform {
  return withXenstore(ctx.platform, connectGuest(ctx.platform, ctx.startInfo));
}

/**
 * Per-domain limits, with xenstored's defaults (`tools/xenstored/domain.c`, `xenstored_core.c`).
 * They bind unprivileged connections only; dom0 is never limited. Exceeding one is an error with
 * the standard name, never unbounded memory.
 */
export interface XsQuotas {
  /** Nodes a domain may own (ENOSPC). */
  readonly nodesPerDomain: number;
  /** Watches per connection (E2BIG). */
  readonly watchesPerConnection: number;
  /** Open transactions per connection (ENOSPC). */
  readonly transactionsPerConnection: number;
  /** Nodes one transaction may touch (ENOSPC). */
  readonly nodesPerTransaction: number;
  /** Permission entries per node (ENOSPC). */
  readonly permsPerNode: number;
  /** Bytes in a node's value (ENOSPC). */
  readonly valueSize: number;
  /** Path length below /local/domain/<n>/ (EINVAL, as an invalid path). */
  readonly pathLength: number;
  /** Requests read but not yet answered, per connection: reading stops until replies drain. */
  readonly outstandingRequests: number;
  /** Watch events queued for a connection that is not reading them: further ones are dropped. */
  readonly queuedWatchEvents: number;
}

export const DEFAULT_XS_QUOTAS: XsQuotas = {
  nodesPerDomain: 1000,
  watchesPerConnection: 128,
  transactionsPerConnection: 10,
  nodesPerTransaction: 1024,
  permsPerNode: 5,
  valueSize: 2048,
  pathLength: 2048,
  outstandingRequests: 20,
  queuedWatchEvents: 1024,
};

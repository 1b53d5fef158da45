/**
 * What a domain's code receives, in a worker or in the current thread alike: the default export
 * of the domain's ES module (or the `main` given for a local domain) is called with it.
 *
 * The domain runs until `main` settles or the domain is destroyed: returning powers it off,
 * throwing crashes it; either way the hypervisor then reclaims everything it held.
 */
import type { EmulatedPlatform } from './emulated-platform.js';

/**
 * What the domain builder tells a domain at boot (Xen's start_info / HVM params): where its
 * xenstore ring page is and the event channel to xenstored.
 */
export interface StartInfo {
  readonly store?: { readonly gfn: number; readonly port: number };
}

export interface DomainContext {
  readonly domid: number;
  readonly name: string;
  /** The domain's hypervisor interface. */
  readonly platform: EmulatedPlatform;
  /** Whatever the builder passed (structured-cloned into a worker). */
  readonly args: unknown;
  /** Set up by the domain builder before the domain ran ({} if nothing was). */
  readonly startInfo: StartInfo;
  /** Aborted when the toolstack asks the domain to shut down (then return from main). */
  readonly signal: AbortSignal;
  readonly log: (...parts: unknown[]) => void;
}

export type DomainMain = (ctx: DomainContext) => unknown;

/** How a domain ended. */
export interface DomainExit {
  /** poweroff: main returned; crash: main threw or the worker died; destroyed: by the toolstack. */
  readonly reason: 'poweroff' | 'crash' | 'destroyed';
  /** main's return value (poweroff), for local domains; undefined otherwise. */
  readonly value?: unknown;
  /** The error and its stack (crash). */
  readonly error?: string;
}

/** Loads a domain module's default export. */
export async function loadDomainMain(href: string): Promise<DomainMain> {
  const mod = (await import(href)) as { default?: unknown };
  if (typeof mod.default !== 'function') throw new Error(`domain module ${href} has no default export function`);
  return mod.default as DomainMain;
}

export function formatError(err: unknown): string {
  if (err instanceof Error) return err.stack ?? `${err.name}: ${err.message}`;
  return String(err);
}

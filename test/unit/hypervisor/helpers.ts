/** Shared scaffolding for the hypervisor unit tests: machines, local guests, accounting lookups. */
import { expect } from 'vitest';
import type { DomainAccounting, DomainHandle, DomainLimits, EmulatedPlatform, EmulatedPlatformOptions } from '../../../src/hypervisor/index.js';
import { Machine } from '../../../src/hypervisor/index.js';

export function newMachine(memoryMiB = 16, maxDomains?: number): Machine {
  return new Machine({ memoryMiB, log: () => {}, ...(maxDomains !== undefined ? { maxDomains } : {}) });
}

export interface GuestOptions {
  readonly limits?: Partial<DomainLimits>;
  readonly domid?: number;
  readonly platform?: Omit<EmulatedPlatformOptions, 'spinMicros' | 'autoStart'>;
  readonly privileged?: boolean;
}

/** A local guest in this thread whose event loop is driven by poll(). */
export async function guest(m: Machine, name: string, o: GuestOptions = {}): Promise<DomainHandle & { platform: EmulatedPlatform }> {
  const h = await m.createDomain({
    mode: 'local',
    name,
    ...(o.limits ? { limits: o.limits } : {}),
    ...(o.domid !== undefined ? { domid: o.domid } : {}),
    ...(o.privileged !== undefined ? { privileged: o.privileged } : {}),
    platform: { autoStart: false, deferred: { retryMs: 0 }, ...o.platform },
  });
  if (!h.platform) throw new Error('local domain without a platform');
  return h as DomainHandle & { platform: EmulatedPlatform };
}

/** The accounting of one domain (throws if it has no slot). */
export function acct(m: Machine, domid: number): DomainAccounting {
  const d = m.accounting().domains.find((x) => x.domid === domid);
  if (!d) throw new Error(`d${domid} has no slot`);
  return d;
}

/** Whether `domid` still has a slot (running, dying or zombie). */
export function hasSlot(m: Machine, domid: number): boolean {
  return m.accounting().domains.some((x) => x.domid === domid);
}

/** Pages from allocPages, failing the test on an errno. */
export function pages(p: EmulatedPlatform, n: number, contiguous = false): Int32Array {
  const g = p.memory.allocPages(n, contiguous);
  if (typeof g === 'number') throw new Error(`allocPages(${n}) failed: ${g}`);
  return g;
}

/** Ballooned gfns, failing the test on an errno. */
export function ballooned(p: EmulatedPlatform, n: number): Int32Array {
  const g = p.memory.allocBallooned(n);
  if (typeof g === 'number') throw new Error(`allocBallooned(${n}) failed: ${g}`);
  return g;
}

/** A grant ref, failing the test on an errno. */
export function grant(p: EmulatedPlatform, to: number, gfn: number, readonly = false): number {
  const r = p.grants.grantAccess(to, gfn, readonly);
  if (r < 0) throw new Error(`grantAccess failed: ${r}`);
  return r;
}

/** The page view of an own or mapped gfn, failing the test when absent. */
export function view(p: EmulatedPlatform, gfn: number): Uint8Array {
  const v = p.memory.page(gfn);
  if (!v) throw new Error(`gfn ${gfn} has no page`);
  return v;
}

/** Destroys the given domains and checks nothing leaked against `base`. */
export async function destroyAndCheck(m: Machine, base: ReturnType<Machine['accounting']>, ...domids: number[]): Promise<void> {
  for (const d of domids) await m.destroyDomain(d);
  expect(m.leaks(base)).toEqual([]);
}

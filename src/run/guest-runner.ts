/**
 * A guest domain that runs a guest program: connects its first vdispl device with the frontend,
 * waits for the card, and calls the program's default export `main(ctx)` with
 * `{ card, signal, log, args }`. When the domain is asked to shut down, `ctx.signal` aborts; once
 * main returns the runner closes the card and removes the device cleanly. It measures every
 * page flip (request -> frame-done, per connector) and posts figures on the MessagePort in
 * ctx.args.port once a second: { type: 'figures', connectors: [{ index, flips, p50, p99 }] }.
 * A program that cannot be loaded or throws is reported as { type: 'error', stage, message, stack }
 * and the domain ends with the error.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Card, Connector, Framebuffer } from '../front/card.js';
import { XenFront } from '../front/xen-front.js';
import type { DomainContext } from '../hypervisor/domain-context.js';
import { domainPlatform } from '../xenbus/xen-platform.js';
import { percentile } from './percentile.js';

export interface GuestRunnerArgs {
  /** URL of the guest program's module. */
  readonly program: string;
  readonly programArgs?: unknown;
  readonly port?: MessagePort;
  readonly device?: string;
}

export interface GuestProgramContext {
  /** The guest's display card (the frontend's KMS-like API). */
  readonly card: Card;
  /** Aborted when the guest is asked to shut down: return from main then. */
  readonly signal: AbortSignal;
  readonly log: (...parts: unknown[]) => void;
  /** Whatever the launcher passed. */
  readonly args?: unknown;
}

export type GuestProgram = (ctx: GuestProgramContext) => unknown;

/** Wraps card.pageFlip to time each flip per connector. */
function measureFlips(card: Card): { take(): { index: number; flips: number; p50: number; p99: number }[] } {
  const flips = card.connectors.map(() => 0);
  const window: number[][] = card.connectors.map(() => []);
  const flip = card.pageFlip.bind(card);
  card.pageFlip = async (connector: Connector | number, fb: Framebuffer): Promise<void> => {
    const i = typeof connector === 'number' ? connector : connector.index;
    const t = performance.now();
    await flip(connector, fb);
    if (flips[i] !== undefined) {
      flips[i]++;
      window[i]!.push(performance.now() - t);
    }
  };
  return {
    take: () =>
      card.connectors.map((c, i) => {
        const s = window[i]!.splice(0).sort((a, b) => a - b);
        return { index: c.index, flips: flips[i]!, p50: percentile(s, 0.5), p99: percentile(s, 0.99) };
      }),
  };
}

export default async function main(ctx: DomainContext): Promise<void> {
  const a = ctx.args as GuestRunnerArgs;
  const port = a.port;
  const report = (m: unknown): void => port?.postMessage(m);
  let program: GuestProgram;
  try {
    const mod = (await import(a.program)) as { default?: unknown };
    if (typeof mod.default !== 'function') throw new Error('its default export is not a function (export default async function main(ctx) { ... })');
    program = mod.default as GuestProgram;
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    report({ type: 'error', stage: 'load', message: err.message, stack: err.stack });
    throw err;
  }
  const platform = domainPlatform(ctx);
  const front = await XenFront.open(platform, a.device ?? 'device/vdispl/0', { log: (t) => ctx.log(t) });
  let card: Card;
  try {
    card = await front.waitCard({ timeoutMs: 15_000, signal: ctx.signal });
  } catch (e) {
    await front.close();
    platform.xenstore.close();
    if (ctx.signal.aborted) return;
    throw e;
  }
  const meter = measureFlips(card);
  const timer = setInterval(() => report({ type: 'figures', connectors: meter.take() }), 1000);
  try {
    await program({ card, signal: ctx.signal, log: ctx.log, args: a.programArgs });
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    report({ type: 'error', stage: 'run', message: err.message, stack: err.stack });
    throw err;
  } finally {
    clearInterval(timer);
    report({ type: 'figures', connectors: meter.take() });
    await card.close().catch(() => undefined);
    await front.close().catch(() => undefined);
    platform.xenstore.close();
    port?.close();
  }
}

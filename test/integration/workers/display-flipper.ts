/**
 * A well-behaved display guest for the conformance suite: a domain module (default export
 * main(ctx)) that opens its first vdispl device with XenFront, makes two XRGB8888 framebuffers
 * of connector 0's size, sets the mode and then flips between them until the domain is asked to
 * shut down. Progress goes into a SharedArrayBuffer of counters (FLIPS = frame-done events seen,
 * ERRORS = flips that failed, READY = 1 once flipping); failures are also reported as text on the
 * MessagePort in args (transfer it). While another guest of the same backend misbehaves, FLIPS
 * must keep increasing and ERRORS stay 0.
 */
import type { MessagePort } from 'node:worker_threads';
import { DRM_FORMAT_XRGB8888 } from '../../../src/abi/fourcc.js';
import type { Framebuffer } from '../../../src/front/card.js';
import { XenFront } from '../../../src/front/xen-front.js';
import type { DomainContext } from '../../../src/hypervisor/index.js';
import { domainPlatform } from '../../../src/xenbus/xen-platform.js';

/** Counter words (Int32) in args.counters. */
export const FLIPS = 0;
export const ERRORS = 1;
export const READY = 2;
export const COUNTER_WORDS = 4;

export interface FlipperArgs {
  /** COUNTER_WORDS Int32 words. */
  readonly counters: SharedArrayBuffer;
  /** Receives { type: 'ready' } and { type: 'error', text }. */
  readonly port: MessagePort;
  /** Pause between flips (default 2 ms): keeps a 2-core machine responsive. */
  readonly intervalMs?: number;
}

export type FlipperMessage = { readonly type: 'ready' } | { readonly type: 'error'; readonly text: string };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export default async function main(ctx: DomainContext): Promise<void> {
  const a = ctx.args as FlipperArgs;
  const counters = new Int32Array(a.counters);
  const post = (m: FlipperMessage): void => a.port.postMessage(m);
  const p = domainPlatform(ctx);
  const front = await XenFront.open(p, 'device/vdispl/0', { log: (t) => ctx.log(`flipper: ${t}`) });
  try {
    const card = await front.waitCard({ timeoutMs: 10_000, signal: ctx.signal });
    const out = card.connectors[0]!;
    const fbs: Framebuffer[] = [];
    for (const fill of [0x11, 0x22]) {
      const buf = await card.createDumb({ width: out.width, height: out.height, format: DRM_FORMAT_XRGB8888 });
      buf.pixels.fill(fill);
      fbs.push(await card.addFramebuffer(buf));
    }
    await card.setMode(out, fbs[0]!);
    Atomics.store(counters, READY, 1);
    post({ type: 'ready' });
    const interval = a.intervalMs ?? 2;
    for (let i = 1; !ctx.signal.aborted; i++) {
      try {
        await card.pageFlip(out, fbs[i & 1]!);
        Atomics.add(counters, FLIPS, 1);
      } catch (e) {
        if (ctx.signal.aborted) break;
        Atomics.add(counters, ERRORS, 1);
        post({ type: 'error', text: e instanceof Error ? e.message : String(e) });
        if (card.unplugged || card.isClosed) break;
      }
      await sleep(interval);
    }
    await card.close();
  } catch (e) {
    if (!ctx.signal.aborted) {
      Atomics.add(counters, ERRORS, 1);
      post({ type: 'error', text: `setting up: ${e instanceof Error ? e.message : String(e)}` });
    }
  } finally {
    await front.close().catch(() => undefined);
    p.xenstore.close();
    a.port.close();
  }
}

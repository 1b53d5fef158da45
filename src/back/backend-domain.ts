/**
 * A display backend domain (a driver domain, or displ_be's process in dom0): the default export
 * is a domain's main(ctx). It connects to XenStore over the domain's ring, serves every vdispl
 * device whose backend it is, and stops cleanly (every device to Closed, everything unmapped)
 * when the domain is asked to shut down.
 *
 * ctx.args (all optional): { presenter: 'null' | 'memory', hold, limits, port }. With a
 * MessagePort in `port` (transfer it), the domain answers control messages, which is how tests
 * and tools look at what a backend in another worker shows:
 *   { id, type: 'status' }                       -> { id, result: BackendStatus }
 *   { id, type: 'snapshot', domid, devid, index } -> { id, result: PixelCopy | undefined }
 *   { id, type: 'hold', value }                  -> memory presenter: hold presents or not
 *   { id, type: 'complete', domid, devid, index, n } -> completes held presents
 */
import type { MessagePort } from 'node:worker_threads';
import type { DomainContext } from '../hypervisor/domain-context.js';
import { domainPlatform } from '../xenbus/xen-platform.js';
import { DisplayBackend } from './backend.js';
import type { DisplayLimits } from './buffers.js';
import { MemoryPresenter, type PixelCopy } from './memory-presenter.js';
import { NullPresenter, type Presenter } from './presenter.js';

export interface BackendDomainArgs {
  readonly presenter?: 'null' | 'memory';
  readonly hold?: boolean;
  readonly limits?: Partial<DisplayLimits>;
  readonly port?: MessagePort;
}

export interface ConnectorStatus {
  readonly index: number;
  readonly width: number;
  readonly height: number;
  readonly configured: boolean;
  readonly requests: number;
  readonly errors: number;
  readonly flips: number;
  readonly events: number;
  readonly waitingEvents: number;
  readonly presented?: number;
}

export interface FrontendStatus {
  readonly key: string;
  readonly state: number;
  readonly binds: number;
  readonly usage: { buffers: number; framebuffers: number; bytes: number } | undefined;
  readonly connectors: readonly ConnectorStatus[];
}

export interface BackendStatus {
  readonly domid: number;
  readonly frontends: readonly FrontendStatus[];
}

export function backendStatus(b: DisplayBackend): BackendStatus {
  const mem = b.presenter instanceof MemoryPresenter ? b.presenter : undefined;
  return {
    domid: b.platform.domid,
    frontends: [...b.frontends].map(([key, h]) => ({
      key,
      state: h.dev.state,
      binds: h.binds,
      usage: h.bufferUsage,
      connectors: h.boundConnectors.map((c) => {
        const m = mem?.get(c.info.frontendDomid, c.info.devid, c.index);
        return {
          index: c.index,
          width: c.info.width,
          height: c.info.height,
          configured: c.config !== undefined,
          requests: c.stats.requests,
          errors: c.stats.errors,
          flips: c.stats.flips,
          events: c.stats.events,
          waitingEvents: c.waitingEvents,
          ...(m ? { presented: m.presented } : {}),
        };
      }),
    })),
  };
}

interface ControlMessage {
  readonly id: number;
  readonly type: 'status' | 'snapshot' | 'hold' | 'complete';
  readonly domid?: number;
  readonly devid?: number;
  readonly index?: number;
  readonly value?: boolean;
  readonly n?: number;
}

export default async function main(ctx: DomainContext): Promise<void> {
  const args = (ctx.args ?? {}) as BackendDomainArgs;
  const platform = domainPlatform(ctx);
  const presenter: Presenter = args.presenter === 'memory' ? new MemoryPresenter({ hold: args.hold ?? false }) : new NullPresenter();
  const backend = await DisplayBackend.start({ platform, presenter, ...(args.limits ? { limits: args.limits } : {}), log: (t) => ctx.log(t) });
  const port = args.port;
  if (port) {
    port.on('message', (m: ControlMessage) => {
      let result: unknown;
      let error: string | undefined;
      const mem = presenter instanceof MemoryPresenter ? presenter : undefined;
      try {
        if (m.type === 'status') result = backendStatus(backend);
        else if (m.type === 'snapshot') result = mem?.get(m.domid ?? -1, m.devid ?? 0, m.index ?? 0)?.snapshot();
        else if (m.type === 'hold' && mem) mem.hold = m.value ?? false;
        else if (m.type === 'complete') result = mem?.get(m.domid ?? -1, m.devid ?? 0, m.index ?? 0)?.complete(m.n ?? Infinity);
      } catch (e) {
        // A bad query must never take the backend (and every guest it serves) down.
        error = e instanceof Error ? e.message : String(e);
        ctx.log(`control message ${m.type}: ${error}`);
      }
      port.postMessage({ id: m.id, result, ...(error !== undefined ? { error } : {}) });
    });
  }
  await new Promise<void>((resolve) => {
    if (ctx.signal.aborted) resolve();
    else ctx.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  port?.close();
  await backend.stop();
  platform.xenstore.close();
}

/** The parent's side of the control port: `request(msg)` resolves with the domain's answer. */
export class BackendControl {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  constructor(private readonly port: MessagePort) {
    port.on('message', (m: { id: number; result: unknown; error?: string }) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.error !== undefined) w?.reject(new Error(m.error));
      else w?.resolve(m.result);
    });
    port.unref();
  }
  private request<T>(msg: Omit<ControlMessage, 'id'>): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.port.postMessage({ ...msg, id });
    });
  }
  status(): Promise<BackendStatus> {
    return this.request({ type: 'status' });
  }
  snapshot(domid: number, devid: number, index: number): Promise<PixelCopy | undefined> {
    return this.request({ type: 'snapshot', domid, devid, index });
  }
  hold(value: boolean): Promise<void> {
    return this.request({ type: 'hold', value });
  }
  complete(domid: number, devid: number, index: number, n = Infinity): Promise<number> {
    return this.request({ type: 'complete', domid, devid, index, n });
  }
  close(): void {
    this.port.close();
  }
}

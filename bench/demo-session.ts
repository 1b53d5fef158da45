/**
 * The demo (two connectors: 1920x1080 XRGB8888 and 1024x768 RGB565, 60 Hz) run in this process
 * for the output benchmarks, with the viewer and/or VNC on free ports.
 */
import { DEMO_PROGRAM, demoDevices } from '../src/cli/run-command.js';
import type { ViewerFeed } from '../src/present/viewer-feed.js';
import type { VncServer } from '../src/present/vnc-server.js';
import { runSession } from '../src/run/session.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface RunningDemo {
  readonly feed: ViewerFeed;
  readonly url: string | undefined;
  readonly vnc: VncServer | undefined;
  readonly stop: () => Promise<number>;
}

export async function startDemo(o: { viewer?: boolean; vnc?: boolean } = {}): Promise<RunningDemo> {
  let interrupt!: () => void;
  const interrupted = new Promise<void>((r) => (interrupt = r));
  type Ready = { feed: ViewerFeed; viewerUrl: string | undefined; vnc: VncServer | undefined };
  let ready!: (s: Ready) => void;
  const isReady = new Promise<Ready>((r) => (ready = r));
  const errors: string[] = [];
  const done = runSession({
    guestName: 'demo',
    devices: demoDevices(false),
    program: DEMO_PROGRAM,
    viewerPort: o.viewer ? 0 : undefined,
    vnc: o.vnc ? { basePort: 0 } : undefined,
    json: true,
    io: { stdout: () => undefined, stderr: (t) => errors.push(t), tty: false },
    interrupt: interrupted,
    onReady: ready,
  });
  const s = await Promise.race([isReady, done.then((r) => Promise.reject(new Error(`the demo ended at once (${r.code}): ${errors.join('')}`)))]);
  return {
    feed: s.feed,
    url: s.viewerUrl,
    vnc: s.vnc,
    stop: async () => {
      interrupt();
      const r = await done;
      if (r.code !== 0) throw new Error(`the demo failed (${r.code}): ${errors.join('')}`);
      return r.code;
    },
  };
}

/** Waits until every connector has presented (and, with `painted`, been painted) `n` frames. */
export async function waitFrames(feed: ViewerFeed, n: number, painted: boolean): Promise<void> {
  const until = performance.now() + 30_000;
  for (;;) {
    const f = feed.figures();
    if (f.length >= 2 && f.every((c) => c.presented >= n && (!painted || c.painted >= n))) return;
    if (performance.now() > until) throw new Error(`the demo did not reach ${n} frames: ${JSON.stringify(f.map((c) => [c.name, c.presented, c.painted]))}`);
    await sleep(50);
  }
}

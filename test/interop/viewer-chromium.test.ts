/**
 * The browser viewer in Debian's Chromium (playwright-core): every pixel of every canvas equals
 * the guest's framebuffer converted exactly (toRgba), for every pixel format Linux xen-front
 * advertises, including odd widths; the page reconnects by itself after the server restarts; and
 * a screenshot of the demo for the README (docs/viewer.png).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dumbLayout, XEN_FRONT_FORMATS } from '../../src/abi/fourcc.js';
import { toRgba } from '../../src/present/pixels.js';
import { changedTiles, ENC_RAW, ENC_RLE, encodeTile } from '../../src/present/tiles.js';
import { runSession, type SessionResult } from '../../src/run/session.js';
import { parseVdisplSpec } from '../../src/toolstack/vdispl-spec.js';
import { formatPattern } from './guests/formats.js';

const CHROMIUM = '/usr/bin/chromium';
const FORMATS_GUEST = new URL('./guests/formats.ts', import.meta.url).href;
const DEMO = new URL('../../src/demo/demo-program.ts', import.meta.url).href;
const SIZES = ['67x33', '64x64', '33x17', '130x9', '1x1', '96x40', '17x3', '40x41', '66x20'];

let browser: Browser;
beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`missing ${CHROMIUM}: install the Debian package chromium (.ci/run does)`);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
});
afterAll(async () => {
  await browser?.close();
});

interface Running {
  url: Promise<string>;
  stop: () => void;
  done: Promise<SessionResult>;
  out: string[];
}

function start(program: string, spec: string, port: number, name = 'viewer-test'): Running {
  let stop!: () => void;
  const interrupt = new Promise<void>((r) => (stop = r));
  const out: string[] = [];
  let gotUrl!: (u: string) => void;
  const url = new Promise<string>((r) => (gotUrl = r));
  const done = runSession({
    guestName: name,
    devices: [parseVdisplSpec(spec)],
    program,
    viewerPort: port,
    io: {
      tty: false,
      stdout: (t) => {
        out.push(t);
        const m = /viewer: (http:\/\/\S+)/.exec(t);
        if (m) gotUrl(m[1]!);
      },
      stderr: (t) => out.push(t),
    },
    interrupt,
  });
  return { url, stop, done, out };
}

/** The few DOM pieces the page callbacks use (they run in Chromium, not here). */
interface PageGlobals {
  vdispl?: { painted: Record<string, number>; connected: boolean; frames: number };
  document: { querySelectorAll(sel: string): ArrayLike<PageCanvas> };
}
interface PageCanvas {
  width: number;
  height: number;
  getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } } | null;
}

async function waitPainted(page: Page, count: number): Promise<void> {
  await page.waitForFunction((n) => {
    const v = (globalThis as unknown as PageGlobals).vdispl;
    return v !== undefined && Object.keys(v.painted).length >= n;
  }, count, { timeout: 30_000 });
}

async function canvasPixels(page: Page, index: number): Promise<{ width: number; height: number; data: number[] }> {
  return page.evaluate((i) => {
    const c = (globalThis as unknown as PageGlobals).document.querySelectorAll('canvas')[i]!;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height);
    return { width: c.width, height: c.height, data: Array.from(d.data) };
  }, index);
}

describe('browser viewer in Chromium', () => {
  it('shows every xen-front pixel format exactly (odd widths included), from raw and run-length encoded tiles', async () => {
    const spec = `backend=0,connectors=${SIZES.map((s, i) => `c${i}:${s}`).join(';')}`;
    const run = start(FORMATS_GUEST, spec, 0);
    const page = await browser.newPage();
    try {
      await page.goto(await run.url);
      await waitPainted(page, SIZES.length);
      const encodings: number[] = [];
      for (let i = 0; i < SIZES.length; i++) {
        const [w, h] = SIZES[i]!.split('x').map(Number) as [number, number];
        const format = XEN_FRONT_FORMATS[i]!;
        const lay = dumbLayout(w, h, format.bpp);
        if (!lay.ok) throw new Error(lay.error.message);
        const bytes = formatPattern(i, lay.value.size, lay.value.pitch);
        const expected = Array.from(toRgba({ bytes, offset: 0, pitch: lay.value.pitch, width: w, height: h, format }));
        const tiles = changedTiles({ format, width: w, height: h, pitch: lay.value.pitch, data: bytes }, undefined).map((t) => encodeTile({ format, width: w, height: h, pitch: lay.value.pitch, data: bytes }, t).encoding);
        encodings.push(...tiles);
        const got = await canvasPixels(page, i);
        expect([got.width, got.height], format.name).toEqual([w, h]);
        const firstBad = got.data.findIndex((v, k) => v !== expected[k]);
        expect(firstBad, `${format.name} ${w}x${h}: first differing byte ${firstBad} (pixel ${Math.floor(firstBad / 4)})`).toBe(-1);
      }
      // The server sent both encodings (it encodes exactly as encodeTile does here).
      expect(encodings).toContain(ENC_RAW);
      expect(encodings).toContain(ENC_RLE);
    } finally {
      await page.close();
      run.stop();
      expect((await run.done).code).toBe(0);
    }
  });

  it('reconnects by itself after the server restarts and shows the new session', async () => {
    const first = start(FORMATS_GUEST, 'backend=0,connectors=a:32x16', 0);
    const url = await first.url;
    const port = Number(new URL(url).port);
    const page = await browser.newPage();
    try {
      await page.goto(url);
      await waitPainted(page, 1);
      first.stop();
      expect((await first.done).code).toBe(0);
      await page.waitForFunction(() => !(globalThis as unknown as PageGlobals).vdispl?.connected, null, { timeout: 10_000 });
      const second = start(FORMATS_GUEST, 'backend=0,connectors=b:48x24', port);
      try {
        await second.url;
        await page.waitForFunction(() => {
          const c = (globalThis as unknown as PageGlobals).document.querySelectorAll('canvas');
          return c.length === 1 && c[0]!.width === 48;
        }, null, { timeout: 15_000 });
        await waitPainted(page, 1);
        const got = await canvasPixels(page, 0);
        const format = XEN_FRONT_FORMATS[0]!;
        const lay = dumbLayout(48, 24, format.bpp);
        if (!lay.ok) throw new Error(lay.error.message);
        const expected = Array.from(toRgba({ bytes: formatPattern(0, lay.value.size, lay.value.pitch), offset: 0, pitch: lay.value.pitch, width: 48, height: 24, format }));
        expect(got.data).toEqual(expected);
      } finally {
        second.stop();
        expect((await second.done).code).toBe(0);
      }
    } finally {
      await page.close();
    }
  });

  it('screenshot of the demo for the README (docs/viewer.png)', async () => {
    const run = start(DEMO, 'backend=0,connectors=DP-1:1920x1080;DP-2:1024x768', 0, 'demo');
    const page = await browser.newPage({ viewport: { width: 3020, height: 1140 } });
    try {
      await page.goto(await run.url);
      await waitPainted(page, 2);
      await page.waitForFunction(() => ((globalThis as unknown as PageGlobals).vdispl?.frames ?? 0) > 10, null, { timeout: 30_000 });
      await page.screenshot({ path: fileURLToPath(new URL('../../docs/viewer.png', import.meta.url)), fullPage: true });
    } finally {
      await page.close();
      run.stop();
      expect((await run.done).code).toBe(0);
    }
  });
});

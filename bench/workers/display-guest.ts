/**
 * The guest of the displif benchmarks (a worker domain using the frontend card):
 * - 'flip-rtt': one 1920x1080 XRGB8888 connector, two framebuffers, `rounds` page flips one after
 *   the other; each latency is PG_FLIP request -> response -> frame-done, as card.pageFlip sees it;
 * - 'flips': every connector flips as fast as it can for `seconds`, all at once; logs the total;
 * - 'dbuf': createDumb of width x height XRGB8888 `rounds` times (then destroyed, untimed).
 * Results are logged as `RESULT <json>`.
 */
import { DRM_FORMAT_XRGB8888 } from '../../src/abi/fourcc.js';
import { XenFront } from '../../src/front/xen-front.js';
import type { DomainContext } from '../../src/hypervisor/index.js';
import { domainPlatform } from '../../src/xenbus/xen-platform.js';

interface Args {
  readonly mode: 'flip-rtt' | 'flips' | 'dbuf';
  readonly rounds?: number;
  readonly seconds?: number;
  readonly width?: number;
  readonly height?: number;
}

export default async function main(ctx: DomainContext): Promise<void> {
  const a = ctx.args as Args;
  const p = domainPlatform(ctx);
  const front = await XenFront.open(p);
  const card = await front.waitCard({ timeoutMs: 10_000 });
  let result: unknown;
  if (a.mode === 'dbuf') {
    const lat: number[] = [];
    for (let i = 0; i < (a.rounds ?? 50); i++) {
      const t = performance.now();
      const b = await card.createDumb({ width: a.width!, height: a.height!, format: DRM_FORMAT_XRGB8888 });
      lat.push(performance.now() - t);
      await b.destroy();
    }
    result = lat;
  } else {
    const setups = await Promise.all(
      card.connectors.map(async (c) => {
        const fbs = [];
        for (let k = 0; k < 2; k++) {
          const b = await card.createDumb({ width: c.width, height: c.height, format: DRM_FORMAT_XRGB8888 });
          b.pixels.fill(0x40 * (k + 1));
          fbs.push(await card.addFramebuffer(b));
        }
        await card.setMode(c, fbs[0]!);
        return { c, fbs };
      }),
    );
    if (a.mode === 'flip-rtt') {
      const { c, fbs } = setups[0]!;
      const lat = new Float64Array(a.rounds ?? 3000);
      for (let i = 0; i < lat.length; i++) {
        const t = performance.now();
        await card.pageFlip(c, fbs[i & 1]!);
        lat[i] = (performance.now() - t) * 1000;
      }
      result = Array.from(lat);
    } else {
      const end = performance.now() + (a.seconds ?? 2) * 1000;
      const counts = await Promise.all(
        setups.map(async ({ c, fbs }) => {
          let n = 0;
          while (performance.now() < end) await card.pageFlip(c, fbs[n++ & 1]!);
          return n;
        }),
      );
      result = { flips: counts.reduce((x, y) => x + y, 0), perConnector: counts, seconds: a.seconds ?? 2 };
    }
  }
  ctx.log(`RESULT ${JSON.stringify(result)}`);
  await card.close();
  await front.close();
  p.xenstore.close();
}

import { afterEach, describe, expect, it } from 'vitest';
import { DRM_FORMAT_XRGB8888 } from '../../src/abi/fourcc.js';
import { DisplayBackend } from '../../src/back/backend.js';
import { MemoryPresenter } from '../../src/back/memory-presenter.js';
import { XenFront } from '../../src/front/xen-front.js';
import type { DomainContext } from '../../src/hypervisor/index.js';
import { Toolstack } from '../../src/toolstack/toolstack.js';
import { parseVdisplSpec } from '../../src/toolstack/vdispl-spec.js';
import { domainPlatform } from '../../src/xenbus/xen-platform.js';

let ts: Toolstack | undefined;
afterEach(async () => {
  await ts?.close();
  ts = undefined;
});

describe('displif smoke', () => {
  for (const beAlloc of [false, true]) {
    it(`flips a frame (be-alloc ${beAlloc})`, async () => {
      const logs: string[] = [];
      ts = await Toolstack.start({ log: (t) => logs.push(t) });
      const presenter = new MemoryPresenter();
      const backend = await DisplayBackend.start({ platform: ts.dom0, presenter, log: (t) => logs.push(t) });
      const g = await ts.createDomain({
        mode: 'local',
        name: 'guest',
        vdispl: [parseVdisplSpec(`backend=0,be-alloc=${beAlloc ? 1 : 0},connectors=c0:64x32;c1:33x17`)],
        main: async (ctx: DomainContext) => {
          const p = domainPlatform(ctx);
          const front = await XenFront.open(p, 'device/vdispl/0', { log: (t) => logs.push(`front: ${t}`) });
          const card = await front.waitCard({ timeoutMs: 5000 });
          const out = card.connectors[0]!;
          const buf = await card.createDumb({ width: out.width, height: out.height, format: DRM_FORMAT_XRGB8888 });
          for (let i = 0; i < buf.pixels.length; i++) buf.pixels[i] = i & 0xff;
          const fb = await card.addFramebuffer(buf);
          await card.setMode(out, fb);
          await card.pageFlip(out, fb);
          const snap = presenter.get(ctx.domid, 0, 0)!.snapshot()!;
          expect(snap.data).toEqual(buf.pixels.slice(0, snap.data.length));
          buf.pixels[5] = 0xee;
          expect(presenter.get(ctx.domid, 0, 0)!.snapshot()!.data[5]).toBe(0xee);
          await card.close();
          await front.close();
          p.xenstore.close();
        },
      });
      await g.handle.exited;
      expect(g.handle.exit?.error).toBeUndefined();
      await backend.stop();
      await ts.settled();
    });
  }
});

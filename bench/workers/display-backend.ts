/**
 * The backend domain of the displif benchmarks: a DisplayBackend whose presenter presents at
 * once (like the null presenter) and checks, for every frame, whether the pixels it was handed
 * are the guest's own pages (a view on machine memory) or a copy; it logs the count of frames
 * and of bytes that would have had to be copied when asked to stop.
 */
import { DisplayBackend } from '../../src/back/backend.js';
import type { ConnectorOutput, Frame, Presenter } from '../../src/back/presenter.js';
import type { DomainContext } from '../../src/hypervisor/index.js';
import { domainPlatform } from '../../src/xenbus/xen-platform.js';

export default async function main(ctx: DomainContext): Promise<void> {
  const platform = domainPlatform(ctx);
  let frames = 0;
  let copied = 0;
  const presenter: Presenter = {
    openConnector(): ConnectorOutput {
      return {
        configure: () => undefined,
        present: (f: Frame) => {
          frames++;
          // Zero-copy: the view must be the machine's shared memory itself (the guest's pages).
          if (!f.view || !(f.view.buffer instanceof SharedArrayBuffer)) copied += f.size;
        },
        close: () => undefined,
      };
    },
  };
  const backend = await DisplayBackend.start({ platform, presenter });
  ctx.log('READY');
  await new Promise<void>((r) => ctx.signal.addEventListener('abort', () => r(), { once: true }));
  ctx.log(`PRESENTED ${JSON.stringify({ frames, copied })}`);
  await backend.stop();
  platform.xenstore.close();
}

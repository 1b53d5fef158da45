/**
 * The backend domain of the displif benchmarks: a DisplayBackend whose presenter presents at
 * once (like the null presenter) and checks, for every frame, that what it was handed (one view,
 * or each page) is a view on the machine's memory itself (the guest's pages, mapped), not a copy
 * elsewhere; what is not counts as copied bytes. It logs frames and copied bytes when asked to stop.
 */
import { DisplayBackend } from '../../src/back/backend.js';
import type { ConnectorOutput, Frame, Presenter } from '../../src/back/presenter.js';
import type { DomainContext } from '../../src/hypervisor/index.js';
import { domainPlatform } from '../../src/xenbus/xen-platform.js';

export default async function main(ctx: DomainContext): Promise<void> {
  const platform = domainPlatform(ctx);
  const memory = ctx.platform.state.shared.memory;
  let frames = 0;
  let copied = 0;
  const presenter: Presenter = {
    openConnector(): ConnectorOutput {
      return {
        configure: () => undefined,
        present: (f: Frame) => {
          frames++;
          // One view over adjacent machine frames, or else each page: either way machine memory itself.
          if (f.view) {
            if (f.view.buffer !== memory) copied += f.size;
          } else {
            const pages = Math.ceil(f.size / 4096);
            for (let i = 0; i < pages; i++) if (f.page(i).buffer !== memory) copied += 4096;
          }
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

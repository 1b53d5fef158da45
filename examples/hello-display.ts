/**
 * A small guest program: fills each connector with a colour that cycles, flipping between two
 * buffers at 30 Hz until the guest is asked to stop.
 *
 *   npx vdispl run --config examples/hello.cfg --guest examples/hello-display.ts --viewer
 *   npx vdispl demo --guest examples/hello-display.ts
 */
import { DRM_FORMAT_XRGB8888, type GuestProgramContext } from 'vdispl';

export default async function main({ card, signal, log }: GuestProgramContext): Promise<void> {
  await Promise.all(
    card.connectors.map(async (out) => {
      const bufs = [0, 1].map(() => card.createDumb({ width: out.width, height: out.height, format: DRM_FORMAT_XRGB8888 }));
      const buffers = await Promise.all(bufs);
      const fbs = await Promise.all(buffers.map((b) => card.addFramebuffer(b)));
      await card.setMode(out, fbs[0]!);
      log(`connector ${out.index}: ${out.width}x${out.height}`);
      for (let frame = 0; !signal.aborted; frame++) {
        const b = buffers[frame & 1]!;
        const px = new Uint32Array(b.pixels.buffer, b.pixels.byteOffset, b.size / 4);
        const hue = (frame * 4 + out.index * 120) % 360;
        px.fill(hsvToXrgb(hue));
        await card.pageFlip(out, fbs[frame & 1]!);
        await new Promise((r) => setTimeout(r, 33));
      }
      await card.disable(out);
      for (const fb of fbs) await fb.remove();
      for (const b of buffers) await b.destroy();
    }),
  );
}

function hsvToXrgb(h: number): number {
  const f = (n: number): number => {
    const k = (n + h / 60) % 6;
    return Math.round(255 * (1 - Math.max(0, Math.min(k, 4 - k, 1))));
  };
  return ((f(5) << 16) | (f(3) << 8) | f(1)) >>> 0;
}

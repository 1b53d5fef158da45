/**
 * A guest program for the viewer tests: connector i shows one frame in XEN_FRONT_FORMATS[i % 9]
 * filled with formatPattern(), then waits until stopped.
 */
import { XEN_FRONT_FORMATS } from '../../../src/abi/fourcc.js';
import type { GuestProgramContext } from '../../../src/run/guest-runner.js';

/**
 * Deterministic bytes for connector `index`: bands of 8 rows, alternately varying in every byte
 * (sent raw) and flat (run-length encoded), so the page decodes both tile encodings.
 */
export function formatPattern(index: number, size: number, pitch: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    const y = Math.floor(i / pitch);
    const x = i % pitch;
    out[i] = ((y >> 3) & 1) === 1 ? (index * 37 + (y >> 4) * 11) & 0xff : (x * 7 + y * 13 + index * 31 + ((x * y) >> 3)) & 0xff;
  }
  return out;
}

export default async function main({ card, signal }: GuestProgramContext): Promise<void> {
  const made = await Promise.all(
    card.connectors.map(async (c, i) => {
      const format = XEN_FRONT_FORMATS[i % XEN_FRONT_FORMATS.length]!;
      const buf = await card.createDumb({ width: c.width, height: c.height, format });
      buf.pixels.set(formatPattern(i, buf.size, buf.pitch));
      const fb = await card.addFramebuffer(buf);
      await card.setMode(c, fb);
      await card.pageFlip(c, fb);
      return { c, fb, buf };
    }),
  );
  await new Promise<void>((r) => (signal.aborted ? r() : signal.addEventListener('abort', () => r(), { once: true })));
  for (const { c, fb, buf } of made) {
    await card.disable(c);
    await fb.remove();
    await buf.destroy();
  }
}

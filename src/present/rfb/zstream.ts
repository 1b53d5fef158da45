/**
 * One persistent zlib stream of an RFB connection (Zlib and ZRLE each have their own, for the
 * whole connection: the client inflates every rectangle's data with the same stream). Each
 * `compress` call ends with a sync flush, so the client can inflate that rectangle completely;
 * calls complete in order. Uses node:zlib's native deflate on the thread pool, collecting the
 * output emitted before each flush's callback (as the ws package does for permessage-deflate).
 */
import { constants, createDeflate, type Deflate } from 'node:zlib';

interface Waiting {
  readonly resolve: (b: Buffer) => void;
  readonly reject: (e: Error) => void;
}

export class ZStream {
  private readonly deflate: Deflate;
  private chunks: Buffer[] = [];
  private failed: Error | undefined;
  private readonly waiting = new Set<Waiting>();

  constructor(readonly level: number) {
    this.deflate = createDeflate({ level });
    this.deflate.on('data', (c: Buffer) => this.chunks.push(c));
    this.deflate.on('error', (e: Error) => {
      this.failed = e;
      for (const w of this.waiting) w.reject(e);
      this.waiting.clear();
    });
  }

  /** Compresses `data` and sync-flushes; resolves with exactly the bytes for it. */
  compress(data: Uint8Array): Promise<Buffer> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise<Buffer>((resolve, reject) => {
      const w: Waiting = { resolve, reject };
      this.waiting.add(w);
      this.deflate.write(data);
      this.deflate.flush(constants.Z_SYNC_FLUSH, () => {
        this.waiting.delete(w);
        if (this.failed) return;
        const out = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
        this.chunks = [];
        resolve(out);
      });
    });
  }

  close(): void {
    this.deflate.close();
    for (const w of this.waiting) w.reject(new Error('the zlib stream is closed'));
    this.waiting.clear();
  }
}

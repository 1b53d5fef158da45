/**
 * A presenter that keeps each connector's state in memory, for tests and tools: the mode set,
 * the frame currently shown (zero-copy: reading it later sees what the guest wrote since), how
 * many frames were presented, and exact copies of the visible pixels on request. With
 * `hold: true` presents do not complete until `complete()` is called, so a test can make
 * frame-done events back up.
 */
import { pixelRowBytes } from '../abi/fourcc.js';
import type { ConnectorInfo, ConnectorOutput, Frame, OutputConfig, Presenter } from './presenter.js';

/** The visible pixels of a frame, rows packed (pitch = ceil(width * bpp / 8)). */
export interface PixelCopy {
  readonly width: number;
  readonly height: number;
  readonly fourcc: number;
  readonly pitch: number;
  readonly data: Uint8Array;
}

/** Copies rows [0, height) of `frame`, `rowBytes` each, out of its (possibly non-contiguous) pages. */
export function copyFramePixels(frame: Frame, width = frame.width, height = frame.height): PixelCopy {
  const rowBytes = pixelRowBytes(frame.format, width);
  const out = new Uint8Array(rowBytes * height);
  for (let y = 0; y < height; y++) {
    readBytes(frame, frame.offset + y * frame.pitch, out.subarray(y * rowBytes, (y + 1) * rowBytes));
  }
  return { width, height, fourcc: frame.format.fourcc, pitch: rowBytes, data: out };
}

/** Reads `dst.length` bytes of the frame's buffer at byte `at`. */
export function readBytes(frame: Frame, at: number, dst: Uint8Array): void {
  if (frame.view) {
    dst.set(frame.view.subarray(at, at + dst.length));
    return;
  }
  let done = 0;
  while (done < dst.length) {
    const pos = at + done;
    const page = frame.page(Math.floor(pos / 4096));
    const o = pos % 4096;
    const n = Math.min(4096 - o, dst.length - done);
    dst.set(page.subarray(o, o + n), done);
    done += n;
  }
}

export class MemoryConnector implements ConnectorOutput {
  config: OutputConfig | undefined;
  /** The frame last flipped to (or set by the mode). */
  current: Frame | undefined;
  presented = 0;
  configures = 0;
  closed = false;
  private readonly held: (() => void)[] = [];

  constructor(
    readonly info: ConnectorInfo,
    private readonly hold: () => boolean,
  ) {}

  configure(config: OutputConfig | undefined): void {
    this.configures++;
    this.config = config;
    this.current = config?.frame;
  }

  present(frame: Frame): void | Promise<void> {
    this.current = frame;
    if (!this.hold()) {
      this.presented++;
      return;
    }
    return new Promise<void>((resolve) =>
      this.held.push(() => {
        this.presented++;
        resolve();
      }),
    );
  }

  /** Presents waiting in hold mode. */
  get waiting(): number {
    return this.held.length;
  }

  /** Completes up to `n` held presents (all by default); returns how many. */
  complete(n = Infinity): number {
    let k = 0;
    while (k < n && this.held.length > 0) {
      this.held.shift()!();
      k++;
    }
    return k;
  }

  /** An exact copy of what the connector shows now: the configured area of the current frame. */
  snapshot(): PixelCopy | undefined {
    if (!this.current || !this.config) return undefined;
    return copyFramePixels(this.current, Math.min(this.config.width, this.current.width), Math.min(this.config.height, this.current.height));
  }

  close(): void {
    this.closed = true;
    this.complete();
    this.current = undefined;
    this.config = undefined;
  }
}

export interface MemoryPresenterOptions {
  /** Hold presents until complete() (default false). */
  readonly hold?: boolean;
}

export class MemoryPresenter implements Presenter {
  hold: boolean;
  /** Every connector opened, by `<frontend domid>/<devid>/<index>`; a reconnect replaces the entry. */
  readonly connectors = new Map<string, MemoryConnector>();

  constructor(opts: MemoryPresenterOptions = {}) {
    this.hold = opts.hold ?? false;
  }

  static key(domid: number, devid: number, index: number): string {
    return `${domid}/${devid}/${index}`;
  }

  openConnector(info: ConnectorInfo): MemoryConnector {
    const c = new MemoryConnector(info, () => this.hold);
    this.connectors.set(MemoryPresenter.key(info.frontendDomid, info.devid, info.index), c);
    return c;
  }

  get(domid: number, devid: number, index: number): MemoryConnector | undefined {
    return this.connectors.get(MemoryPresenter.key(domid, devid, index));
  }
}

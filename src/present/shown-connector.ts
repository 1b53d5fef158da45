/**
 * What an output keeps of a connector the backend presents to: the mode (SET_CONFIG), the frame
 * last flipped to, a sequence number that moves with every flip and mode change, and when that
 * happened. The viewer feed and the VNC server both build on it; presenting only records, so
 * frame-done never waits for them.
 */
import type { ConnectorOutput, Frame, OutputConfig } from '../back/presenter.js';

/** Now, in ms since the epoch (comparable across threads and processes). */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

export abstract class ShownConnector implements ConnectorOutput {
  frame: Frame | undefined;
  config: OutputConfig | undefined;
  /** Increments with every flip and mode change. */
  seq = 0;
  /** When the current seq began (ms since the epoch). */
  flipTime = 0;
  /** Frames presented (flips) since start. */
  presented = 0;

  /** Called after a flip or mode change (`mode`), never waiting. */
  protected abstract changed(mode: boolean): void;
  /** Called when the connector goes away. */
  protected abstract gone(): void;

  configure(config: OutputConfig | undefined): void {
    this.config = config;
    this.frame = config?.frame;
    this.flipTime = epochMs();
    this.seq++;
    this.changed(true);
  }

  present(frame: Frame): void {
    this.frame = frame;
    this.flipTime = epochMs();
    this.seq++;
    this.presented++;
    this.changed(false);
  }

  close(): void {
    this.config = undefined;
    this.frame = undefined;
    this.seq++;
    this.gone();
  }

  /** The frame shown and its visible size (the mode's, within the frame), or undefined when nothing is. */
  current(): { frame: Frame; width: number; height: number } | undefined {
    if (!this.config || !this.frame) return undefined;
    return { frame: this.frame, width: Math.min(this.config.width, this.frame.width), height: Math.min(this.config.height, this.frame.height) };
  }
}

/**
 * The display interface of the backend (libxenbe/displ_be's DisplayItf): where frames go. The
 * backend opens one output per connector and hands it the connector's current framebuffer as
 * zero-copy views of the guest's (or the backend's own) pages, with everything needed to read
 * the pixels: format, width, height, pitch and the byte offset of the first pixel. The output
 * says when a frame has been presented; only then does the frontend get its frame-done event.
 *
 * Views stay valid while the frame is current or being presented: the backend keeps the buffer
 * mapped until the connector has moved to another framebuffer (or been disabled) and every
 * present() it started has completed.
 */
import type { PixelFormat } from '../abi/fourcc.js';
import type { DmaBuf } from '../dmabuf/dmabuf.js';

/** The pixels of one framebuffer, zero-copy. */
export interface Frame {
  readonly fbCookie: bigint;
  readonly format: PixelFormat;
  readonly width: number;
  readonly height: number;
  /** Bytes from the start of one row to the next. */
  readonly pitch: number;
  /** Byte offset of pixel (0, 0) in the buffer (the DBUF_CREATE data_ofs). */
  readonly offset: number;
  /** Bytes in the buffer (the DBUF_CREATE buffer_sz). */
  readonly size: number;
  /** The whole buffer as one view when its pages are adjacent in machine memory. */
  readonly view: Uint8Array | undefined;
  /** Page `i` of the buffer (always available). */
  page(i: number): Uint8Array;
  /** The buffer as a dma-buf, for outputs that take one (hold a reference with get() to keep it). */
  readonly dmabuf: DmaBuf | undefined;
}

/** Where the connector shows which part of its frame (SET_CONFIG). */
export interface OutputConfig {
  readonly frame: Frame;
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

export interface ConnectorInfo {
  readonly frontendDomid: number;
  readonly devid: number;
  /** Index of the connector in the device (0, 1, ...). */
  readonly index: number;
  readonly uniqueId: string;
  /** The connector's resolution from XenStore. */
  readonly width: number;
  readonly height: number;
}

export interface ConnectorOutput {
  /** The mode set (undefined: disabled). */
  configure(config: OutputConfig | undefined): void;
  /**
   * Shows `frame` (a page flip). Return nothing when it is presented at once, or a promise that
   * settles when it has been presented (a rejection counts as presented: the event is never lost).
   */
  present(frame: Frame): void | Promise<void>;
  /** The connector is going away (frontend disconnected); views must not be used afterwards. */
  close(): void;
}

export interface Presenter {
  openConnector(info: ConnectorInfo): ConnectorOutput;
}

/** Presents nothing, at once: for benchmarks and headless backends. */
export class NullPresenter implements Presenter {
  openConnector(): ConnectorOutput {
    return { configure: () => undefined, present: () => undefined, close: () => undefined };
  }
}

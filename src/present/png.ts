/** PNG snapshots of frames (fast-png): the exact RGBA the viewer shows (see pixels.ts). */
import { encode } from 'fast-png';
import type { Frame } from '../back/presenter.js';
import { toRgba } from './pixels.js';
import { frameRaster } from './tiles.js';

/** RGBA8888 of a frame's visible `width` x `height` (default: the whole framebuffer). */
export function frameToRgba(frame: Frame, width = frame.width, height = frame.height): Uint8Array {
  const r = frameRaster(frame, width, height);
  return toRgba({ bytes: r.data, offset: 0, pitch: r.pitch, width, height, format: r.format }) as Uint8Array;
}

/** A PNG (8-bit RGBA) of `rgba`, `width` x `height`. */
export function encodePng(rgba: Uint8Array, width: number, height: number): Uint8Array {
  return encode({ width, height, data: rgba, channels: 4, depth: 8 });
}

/** A PNG of what a frame shows. */
export function framePng(frame: Frame, width = frame.width, height = frame.height): Uint8Array {
  return encodePng(frameToRgba(frame, width, height), width, height);
}

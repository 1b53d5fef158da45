/** PNG snapshots of frames (fast-png): the exact RGBA the viewer shows (see pixels.ts). */
import { encode } from 'fast-png';
import type { Frame } from '../back/presenter.js';
import { copyFramePixels } from '../back/memory-presenter.js';
import { toRgba } from './pixels.js';

/** RGBA8888 of a frame's visible `width` x `height` (default: the whole framebuffer). */
export function frameToRgba(frame: Frame, width = frame.width, height = frame.height): Uint8Array {
  const copy = copyFramePixels(frame, width, height);
  return toRgba({ bytes: copy.data, offset: 0, pitch: copy.pitch, width, height, format: frame.format }) as Uint8Array;
}

/** A PNG (8-bit RGBA) of `rgba`, `width` x `height`. */
export function encodePng(rgba: Uint8Array, width: number, height: number): Uint8Array {
  return encode({ width, height, data: rgba, channels: 4, depth: 8 });
}

/** A PNG of what a frame shows. */
export function framePng(frame: Frame, width = frame.width, height = frame.height): Uint8Array {
  return encodePng(frameToRgba(frame, width, height), width, height);
}

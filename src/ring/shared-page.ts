/**
 * A shared page as the ring classes see it: its bytes, and 32-bit words for the Atomics on its
 * indices. Checks that the page lies inside the view and is 4-byte aligned (Atomics need it).
 */
import { AbiError, HOST_IS_LITTLE_ENDIAN } from '../abi/bytes.js';

if (!HOST_IS_LITTLE_ENDIAN) {
  throw new Error('vdispl rings need a little-endian host (Xen shared pages are little-endian)');
}

export interface SharedPage {
  readonly page: Uint8Array;
  /** The first `words` 32-bit words of the page. */
  readonly words: Uint32Array;
}

export function sharedPage(view: Uint8Array, offset: number, size: number, words: number, what: string): SharedPage {
  if (!Number.isInteger(offset) || offset < 0 || offset + size > view.byteLength) {
    throw new AbiError('short', `${what}: ${size} bytes at offset ${offset} do not fit in a view of ${view.byteLength}`);
  }
  const abs = view.byteOffset + offset;
  if (abs % 4 !== 0) throw new AbiError('range', `${what}: address ${abs} is not 4-byte aligned`);
  return { page: new Uint8Array(view.buffer, abs, size), words: new Uint32Array(view.buffer, abs, words) };
}

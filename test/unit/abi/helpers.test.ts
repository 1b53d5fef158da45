/**
 * The small public helpers of the ABI layer, by example: names of errnos, XenBus states and
 * GNTST statuses (including values outside their tables), xenstore payload building and
 * splitting, directory-page arithmetic, fourcc lookups and the event slot formula.
 */
import { describe, expect, it } from 'vitest';
import {
  DISPLIF_OPERATION_NAMES,
  describeStatus,
  directoryPagesFor,
  directoryPagesForBuffer,
  fourccString,
  GNTST_bad_gntref,
  GNTST_general_error,
  gntstMessage,
  isKnownReq,
  maskXenstoreIdx,
  pagesForBytes,
  parseXenbusState,
  pixelFormatByFourcc,
  pixelFormatByName,
  splitAtNul,
  XenbusState,
  xenbusStateName,
  xendisplInRingRef,
  xenErrnoName,
  xsErrorName,
  xsPayload,
  xsStringList,
} from '../../../src/abi/index.js';

const bytes = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));

describe('names and statuses', () => {
  it('Xen errno names, canonical over aliases, either sign', () => {
    expect(xenErrnoName(22)).toBe('EINVAL');
    expect(xenErrnoName(-22)).toBe('EINVAL');
    expect(xenErrnoName(11)).toBe('EAGAIN'); // not EWOULDBLOCK
    expect(xenErrnoName(35)).toBe('EDEADLK'); // not EDEADLOCK
    expect(xenErrnoName(4)).toBeUndefined(); // EINTR is Xen-internal
    expect(describeStatus(0)).toBe('0 (OK)');
    expect(describeStatus(-2)).toBe('-2 (ENOENT)');
    expect(describeStatus(-1000)).toBe('-1000 (unknown errno)');
  });

  it('GNTST messages as Xen prints them', () => {
    expect(gntstMessage(0)).toBe('okay');
    expect(gntstMessage(GNTST_general_error)).toBe('undefined error');
    expect(gntstMessage(GNTST_bad_gntref)).toBe('invalid grant reference');
    expect(gntstMessage(-14)).toBe('bad status -14');
    expect(gntstMessage(1)).toBe('bad status 1');
  });

  it('XenBus states: names, and parsing the state node like Linux', () => {
    expect(xenbusStateName(XenbusState.Connected)).toBe('Connected');
    expect(xenbusStateName(9)).toBe('invalid state 9');
    expect(parseXenbusState('4')).toBe(XenbusState.Connected);
    expect(parseXenbusState(' 6 ')).toBe(XenbusState.Closed);
    for (const bad of ['', 'x', '-1', '9', '4.0', '1e1']) expect(parseXenbusState(bad), bad).toBe(XenbusState.Unknown);
  });

  it('displif operation names and the known/unknown request split', () => {
    expect(DISPLIF_OPERATION_NAMES[0x15]).toBe('PG_FLIP');
    expect(DISPLIF_OPERATION_NAMES[0x0f]).toBeUndefined();
    expect(isKnownReq({ operation: 0x15, id: 1, fb_cookie: 1n })).toBe(true);
    expect(isKnownReq({ unknown: true, operation: 0x99, id: 1, op: new Uint8Array(56) })).toBe(false);
  });
});

describe('xenstore payloads', () => {
  it('builds NUL-terminated strings followed by a raw value', () => {
    expect(Buffer.from(xsPayload(['/a/b'], 'v')).toString('latin1')).toBe('/a/b\0v');
    expect(Buffer.from(xsPayload(['wpath', 'token'])).toString('latin1')).toBe('wpath\0token\0');
    expect(xsPayload([])).toEqual(new Uint8Array(0));
  });

  it('splits at every NUL, and reads NUL-terminated lists', () => {
    expect(splitAtNul(bytes('a\0')).map((b) => Buffer.from(b).toString())).toEqual(['a', '']);
    expect(splitAtNul(bytes('')).map((b) => b.length)).toEqual([0]);
    expect(xsStringList(bytes('backend\0device\0'))).toEqual(['backend', 'device']);
    expect(xsStringList(bytes(''))).toEqual([]);
    expect(xsStringList(bytes('a\0b'))).toEqual(['a', 'b']);
  });

  it('recognises XS_ERROR payloads', () => {
    expect(xsErrorName(bytes('ENOENT\0'))).toBe('ENOENT');
    expect(xsErrorName(bytes('EAGAIN'))).toBe('EAGAIN');
    expect(xsErrorName(bytes('OK\0'))).toBeUndefined();
  });

  it('masks ring indices to the 1024-byte rings', () => {
    expect(maskXenstoreIdx(1024)).toBe(0);
    expect(maskXenstoreIdx(0xffff_ffff)).toBe(1023);
  });
});

describe('buffers and slots', () => {
  it('counts buffer and directory pages', () => {
    expect(pagesForBytes(0)).toBe(0);
    expect(pagesForBytes(1)).toBe(1);
    expect(pagesForBytes(1920 * 1080 * 4)).toBe(2025);
    expect(directoryPagesFor(2025)).toBe(2);
    expect(directoryPagesFor(1023)).toBe(1);
    expect(directoryPagesFor(1024)).toBe(2);
    expect(directoryPagesFor(3840 * 2160 * 4 / 4096)).toBe(8);
    expect(directoryPagesForBuffer(0)).toBe(1); // "at least one page exists"
    expect(() => pagesForBytes(-1)).toThrow();
    expect(() => directoryPagesFor(1.5)).toThrow();
  });

  it('places event idx at 64 + 64 * (idx mod 63), in u32 arithmetic', () => {
    expect(xendisplInRingRef(0)).toBe(64);
    expect(xendisplInRingRef(62)).toBe(64 + 64 * 62);
    expect(xendisplInRingRef(63)).toBe(64);
    expect(xendisplInRingRef(0xffff_ffff)).toBe(64 + 64 * 3); // 2^32 - 1 = 3 (mod 63)
    expect(xendisplInRingRef(-1)).toBe(64 + 64 * 3);
  });

  it('looks pixel formats up by fourcc and by name', () => {
    expect(fourccString(0x34325258)).toBe('XR24');
    expect(pixelFormatByFourcc(0x34325258)?.name).toBe('XRGB8888');
    expect(pixelFormatByFourcc(0)).toBeUndefined();
    expect(pixelFormatByName('drm_format_argb8888')?.code).toBe('AR24');
    expect(pixelFormatByName('NV12')).toBeUndefined();
  });
});

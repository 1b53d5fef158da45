/** Parsing of the configuration nodes both ends read: resolution and be-alloc. */
import { describe, expect, it } from 'vitest';
import { parseBeAlloc, parseResolution } from '../../../src/abi/displif-constants.js';

describe('displif configuration nodes', () => {
  it.each([
    ['1920x1080', 8192, { width: 1920, height: 1080 }],
    ['8192x8192', 8192, { width: 8192, height: 8192 }],
    ['8193x1', 8192, undefined],
    ['0x10', 8192, undefined],
    ['10x', 8192, undefined],
    [' 10x10', 8192, undefined],
    ['10X10', 8192, undefined],
    ['-1x5', 8192, undefined],
    ['123456x1', 999_999, undefined],
    [undefined, 8192, undefined],
  ])('resolution %j (max %d) -> %j', (text, max, want) => {
    expect(parseResolution(text, max)).toEqual(want);
  });

  it.each([
    ['1', true],
    ['2', true],
    ['0', false],
    ['', false],
    ['true', false],
    ['-1', false],
    [undefined, false],
  ])('be-alloc %j -> %j', (text, want) => {
    expect(parseBeAlloc(text)).toBe(want);
  });
});

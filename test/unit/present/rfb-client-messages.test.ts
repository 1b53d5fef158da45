/**
 * The client-message parser (src/present/rfb/client-messages.ts): every message type parses to
 * the right fields and size (alone, followed by more bytes, and inside a larger buffer at an
 * offset); every strict prefix of every message returns undefined (more bytes needed); a stream
 * of all messages back to back parses in order.
 *
 * Bad inputs tried (each throws RfbProtocolError, some from the header alone, before the body
 * arrives): an unknown type (1, 7, 127, 149, 249, 250, 252, 255); SetEncodings with 513 and 5000
 * entries; ClientCutText of 1 MiB + 1 bytes and of 0xFFFFFFFF bytes (the extended-clipboard
 * negative length); a ClientFence payload of 65 and 255 bytes; flags other than 0/1 in
 * FramebufferUpdateRequest, KeyEvent and EnableContinuousUpdates; SetDesktopSize with 0 and 17
 * screens; SetPixelFormat with a colour map, 24 bpp, a channel past the pixel, a max of 0.
 */
import { describe, expect, it } from 'vitest';
import {
  type ClientMessage,
  clientMessageNeeds,
  MAX_CUT_TEXT,
  MAX_ENCODINGS,
  MAX_MESSAGE_BYTES,
  MAX_SCREENS,
  parseClientMessage,
  RfbProtocolError,
} from '../../../src/present/rfb/client-messages.js';
import { encodePixelFormat, RFB_XRGB8888, type RfbPixelFormat } from '../../../src/present/rfb/pixel-format.js';

type Part = number | readonly number[] | Uint8Array;

/** Bytes: a number is one byte. */
function bytes(...parts: Part[]): Uint8Array {
  const arrays = parts.map((p) => (typeof p === 'number' ? Uint8Array.of(p) : Uint8Array.from(p)));
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}
const u16 = (v: number): number[] => [(v >>> 8) & 0xff, v & 0xff];
const u32 = (v: number): number[] => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
const s32 = (v: number): number[] => u32(v >>> 0);

const PF565: RfbPixelFormat = { bitsPerPixel: 16, depth: 16, bigEndian: true, trueColour: true, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 };

const setPixelFormat = (pf: RfbPixelFormat): Uint8Array => bytes(0, [0, 0, 0], encodePixelFormat(pf));
const setEncodings = (list: number[]): Uint8Array => bytes(2, 0, u16(list.length), ...list.map(s32));
const updateRequest = (incremental: number, x: number, y: number, w: number, h: number): Uint8Array => bytes(3, incremental, u16(x), u16(y), u16(w), u16(h));
const keyEvent = (down: number, keysym: number): Uint8Array => bytes(4, down, [0, 0], u32(keysym));
const pointerEvent = (buttons: number, x: number, y: number): Uint8Array => bytes(5, buttons, u16(x), u16(y));
const cutText = (text: Uint8Array, claimed = text.length): Uint8Array => bytes(6, [0, 0, 0], u32(claimed), text);
const enableCu = (enable: number, x: number, y: number, w: number, h: number): Uint8Array => bytes(150, enable, u16(x), u16(y), u16(w), u16(h));
const fence = (flags: number, payload: Uint8Array, claimed = payload.length): Uint8Array => bytes(248, [0, 0, 0], u32(flags), claimed, payload);
function setDesktopSize(w: number, h: number, screens: number, claimed = screens): Uint8Array {
  const s: Part[] = [];
  for (let i = 0; i < screens; i++) s.push(bytes(u32(i), u16(i * 10), u16(0), u16(w), u16(h), u32(0)));
  return bytes(251, 0, u16(w), u16(h), claimed, 0, ...s);
}

const GOOD: [string, Uint8Array, ClientMessage][] = [
  ['SetPixelFormat', setPixelFormat(PF565), { type: 'setPixelFormat', pf: PF565 }],
  ['SetPixelFormat XRGB8888', setPixelFormat(RFB_XRGB8888), { type: 'setPixelFormat', pf: RFB_XRGB8888 }],
  ['SetEncodings', setEncodings([16, 6, 1, 0, -223, -224, -308, -312, -313, -247]), { type: 'setEncodings', encodings: [16, 6, 1, 0, -223, -224, -308, -312, -313, -247] }],
  ['SetEncodings (none)', setEncodings([]), { type: 'setEncodings', encodings: [] }],
  ['SetEncodings (512)', setEncodings(Array.from({ length: MAX_ENCODINGS }, (_, i) => i - 256)), { type: 'setEncodings', encodings: Array.from({ length: MAX_ENCODINGS }, (_, i) => i - 256) }],
  ['FramebufferUpdateRequest incremental', updateRequest(1, 1, 2, 3, 4), { type: 'updateRequest', incremental: true, area: { x: 1, y: 2, w: 3, h: 4 } }],
  ['FramebufferUpdateRequest whole', updateRequest(0, 0xffff, 0x1234, 0x8000, 0), { type: 'updateRequest', incremental: false, area: { x: 0xffff, y: 0x1234, w: 0x8000, h: 0 } }],
  ['KeyEvent down', keyEvent(1, 0xff0d), { type: 'key', down: true, keysym: 0xff0d }],
  ['KeyEvent up', keyEvent(0, 0xffffffff), { type: 'key', down: false, keysym: 0xffffffff }],
  ['PointerEvent', pointerEvent(0xff, 640, 0xffff), { type: 'pointer', buttons: 0xff, x: 640, y: 0xffff }],
  ['ClientCutText', cutText(new TextEncoder().encode('hello')), { type: 'cutText', length: 5 }],
  ['ClientCutText (empty)', cutText(new Uint8Array(0)), { type: 'cutText', length: 0 }],
  ['EnableContinuousUpdates on', enableCu(1, 0, 0, 1920, 1080), { type: 'enableContinuousUpdates', enable: true, area: { x: 0, y: 0, w: 1920, h: 1080 } }],
  ['EnableContinuousUpdates off', enableCu(0, 5, 6, 7, 8), { type: 'enableContinuousUpdates', enable: false, area: { x: 5, y: 6, w: 7, h: 8 } }],
  ['ClientFence', fence(0x80000007, Uint8Array.of(1, 2, 3)), { type: 'fence', flags: 0x80000007, payload: Uint8Array.of(1, 2, 3) }],
  ['ClientFence (empty)', fence(2, new Uint8Array(0)), { type: 'fence', flags: 2, payload: new Uint8Array(0) }],
  ['ClientFence (64)', fence(1, new Uint8Array(64).fill(9)), { type: 'fence', flags: 1, payload: new Uint8Array(64).fill(9) }],
  ['SetDesktopSize', setDesktopSize(800, 600, 1), { type: 'setDesktopSize', width: 800, height: 600, screens: 1 }],
  ['SetDesktopSize (16 screens)', setDesktopSize(1024, 768, MAX_SCREENS), { type: 'setDesktopSize', width: 1024, height: 768, screens: MAX_SCREENS }],
];

describe('parseClientMessage: valid messages', () => {
  it.each(GOOD)('%s: parses to its fields and size', (_name, b, msg) => {
    expect(parseClientMessage(b)).toEqual({ msg, size: b.length });
  });

  it.each(GOOD)('%s: followed by more bytes, takes only its own', (_name, b, msg) => {
    const more = bytes(b, [3, 0, 0, 0, 0, 0, 0, 1, 0, 1], [0xff, 0xff]);
    expect(parseClientMessage(more)).toEqual({ msg, size: b.length });
  });

  it.each(GOOD)('%s: inside a larger buffer (non-zero byteOffset)', (_name, b, msg) => {
    const big = new Uint8Array(b.length + 20).fill(0xee);
    big.set(b, 13);
    expect(parseClientMessage(big.subarray(13, 13 + b.length))).toEqual({ msg, size: b.length });
  });

  it.each(GOOD)('%s: every strict prefix (cut at every byte offset) needs more bytes', (_name, b) => {
    for (let n = 0; n < b.length; n++) expect(parseClientMessage(b.subarray(0, n)), `${n} of ${b.length} bytes`).toBeUndefined();
  });

  it('the fence payload is a copy (the input buffer may be reused)', () => {
    const b = fence(0x80000000, Uint8Array.of(7, 8));
    const r = parseClientMessage(b)!;
    b.fill(0);
    expect(r.msg).toEqual({ type: 'fence', flags: 0x80000000, payload: Uint8Array.of(7, 8) });
  });

  it('a stream of every message back to back parses in order, whatever the cut', () => {
    const stream = bytes(...GOOD.map((g) => g[1]));
    const got: ClientMessage[] = [];
    let o = 0;
    while (o < stream.length) {
      const r = parseClientMessage(stream.subarray(o))!;
      got.push(r.msg);
      o += r.size;
    }
    expect(got).toEqual(GOOD.map((g) => g[2]));
  });

  it('ClientCutText of exactly 1 MiB: waits for all of it, then parses', () => {
    const text = new Uint8Array(MAX_CUT_TEXT).fill(0x41);
    const b = cutText(text);
    expect(b.length).toBe(MAX_MESSAGE_BYTES);
    expect(parseClientMessage(b.subarray(0, 8))).toBeUndefined();
    expect(parseClientMessage(b.subarray(0, b.length - 1))).toBeUndefined();
    expect(parseClientMessage(b)).toEqual({ msg: { type: 'cutText', length: MAX_CUT_TEXT }, size: MAX_MESSAGE_BYTES });
  });
});

describe('parseClientMessage: bad input throws RfbProtocolError', () => {
  function expectProtocolError(b: Uint8Array, why: RegExp): void {
    let err: unknown;
    try {
      parseClientMessage(b);
    } catch (e) {
      err = e;
    }
    expect(err, 'it should throw').toBeInstanceOf(RfbProtocolError);
    expect((err as Error).message).toMatch(why);
  }

  it.each([1, 7, 8, 127, 149, 151, 247, 249, 250, 252, 255])('unknown message type %i (from its first byte alone)', (t) => {
    expectProtocolError(Uint8Array.of(t), new RegExp(`unknown client message type ${t}`));
    expectProtocolError(bytes(t, new Uint8Array(30)), new RegExp(`unknown client message type ${t}`));
  });

  it('SetEncodings with 513 entries (header alone, and whole)', () => {
    const b = setEncodings(Array.from({ length: 513 }, () => 0));
    expectProtocolError(b.subarray(0, 4), /SetEncodings with 513 encodings \(at most 512\)/);
    expectProtocolError(b, /513 encodings/);
  });

  it('SetEncodings with 5000 entries (header alone) and 65535', () => {
    expectProtocolError(bytes(2, 0, u16(5000)), /5000 encodings/);
    expectProtocolError(bytes(2, 0, u16(65535)), /65535 encodings/);
  });

  it('ClientCutText over 1 MiB and claiming 0xFFFFFFFF bytes (header alone)', () => {
    expectProtocolError(bytes(6, [0, 0, 0], u32(MAX_CUT_TEXT + 1)), /ClientCutText of 1048577 bytes \(at most 1048576\)/);
    expectProtocolError(bytes(6, [0, 0, 0], u32(0xffffffff)), /ClientCutText of 4294967295 bytes/);
    expectProtocolError(bytes(6, [0, 0, 0], u32(0x80000000)), /ClientCutText of 2147483648 bytes/);
  });

  it('ClientFence payload over 64 bytes (header alone)', () => {
    expectProtocolError(bytes(248, [0, 0, 0], u32(0x80000000), 65), /65-byte payload \(at most 64\)/);
    expectProtocolError(bytes(248, [0, 0, 0], u32(0), 255, new Uint8Array(255)), /255-byte payload/);
  });

  it.each([2, 3, 0x80, 0xff])('flag %i in FramebufferUpdateRequest, KeyEvent and EnableContinuousUpdates', (flag) => {
    expectProtocolError(updateRequest(flag, 0, 0, 1, 1), new RegExp(`FramebufferUpdateRequest: incremental flag ${flag}`));
    expectProtocolError(keyEvent(flag, 0x61), new RegExp(`KeyEvent: down flag ${flag}`));
    expectProtocolError(enableCu(flag, 0, 0, 1, 1), new RegExp(`EnableContinuousUpdates: enable flag ${flag}`));
  });

  it('SetDesktopSize with 0 and 17 screens (header alone)', () => {
    expectProtocolError(setDesktopSize(640, 480, 0).subarray(0, 8), /SetDesktopSize with 0 screens/);
    expectProtocolError(setDesktopSize(640, 480, 0, 17).subarray(0, 8), /SetDesktopSize with 17 screens/);
    expectProtocolError(setDesktopSize(640, 480, 0, 255).subarray(0, 8), /255 screens/);
  });

  it.each<[string, RfbPixelFormat, RegExp]>([
    ['a colour map', { ...RFB_XRGB8888, trueColour: false }, /SetPixelFormat: .*colour-map/],
    ['24 bpp', { ...RFB_XRGB8888, bitsPerPixel: 24 as 32 }, /SetPixelFormat: 24 bits per pixel/],
    ['a channel past the pixel', { ...PF565, redShift: 12 }, /SetPixelFormat: red max 31 at shift 12 does not fit in 16 bits/],
    ['green max 0', { ...PF565, greenMax: 0 }, /SetPixelFormat: green max 0/],
  ])('SetPixelFormat with %s (only once all 20 bytes are there)', (_name, pf, why) => {
    const b = setPixelFormat(pf);
    for (let n = 0; n < 20; n++) expect(parseClientMessage(b.subarray(0, n))).toBeUndefined();
    expectProtocolError(b, why);
  });

  it('a valid message followed by a bad one: the first parses, the second throws', () => {
    const b = bytes(keyEvent(1, 0x41), 99);
    const r = parseClientMessage(b)!;
    expect(r.size).toBe(8);
    expectProtocolError(b.subarray(r.size), /unknown client message type 99/);
  });
});

describe('clientMessageNeeds', () => {
  it('says how many bytes a cut message needs in all, so a receiver joins its chunks once', () => {
    const cut = new Uint8Array(8);
    const dv = new DataView(cut.buffer);
    cut[0] = 6;
    dv.setUint32(4, 1 << 20);
    expect(clientMessageNeeds(cut.subarray(0, 3))).toBe(8);
    expect(clientMessageNeeds(cut)).toBe(8 + (1 << 20));
    expect(clientMessageNeeds(Uint8Array.of(2, 0))).toBe(4);
    expect(clientMessageNeeds(Uint8Array.of(2, 0, 0, 3))).toBe(16);
    expect(clientMessageNeeds(Uint8Array.of(0))).toBe(20);
    expect(clientMessageNeeds(Uint8Array.of(248, 0, 0, 0, 0, 0, 0, 0, 10))).toBe(19);
    expect(clientMessageNeeds(Uint8Array.of(251, 0, 0, 0, 0, 0, 2))).toBe(8);
    expect(clientMessageNeeds(Uint8Array.of(251, 0, 0, 0, 0, 0, 2, 0))).toBe(40);
    expect(clientMessageNeeds(new Uint8Array(0))).toBe(1);
    // Always more than a cut message has (the receiver waits for at least one more byte).
    for (const [type, size] of [[3, 10], [4, 8], [5, 6], [150, 10]] as const) {
      for (let n = 1; n < size; n++) {
        const b = new Uint8Array(n);
        b[0] = type;
        expect(parseClientMessage(b)).toBeUndefined();
        expect(clientMessageNeeds(b)).toBe(size);
      }
    }
  });
});

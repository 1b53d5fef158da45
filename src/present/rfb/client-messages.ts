/**
 * The client-to-server messages of an RFB session after initialisation, parsed from a byte
 * queue: `parseClientMessage` returns one message and its size, `undefined` when more bytes are
 * needed, or throws `RfbProtocolError` for anything malformed. Limits keep a client's memory
 * bounded: a message never needs more than `MAX_MESSAGE_BYTES` buffered.
 */
import { decodePixelFormat, type RfbPixelFormat } from './pixel-format.js';
import {
  CLIENT_CUT_TEXT,
  CLIENT_ENABLE_CONTINUOUS_UPDATES,
  CLIENT_FENCE,
  CLIENT_FRAMEBUFFER_UPDATE_REQUEST,
  CLIENT_KEY_EVENT,
  CLIENT_POINTER_EVENT,
  CLIENT_SET_DESKTOP_SIZE,
  CLIENT_SET_ENCODINGS,
  CLIENT_SET_PIXEL_FORMAT,
  FENCE_MAX_PAYLOAD,
} from './protocol.js';

export class RfbProtocolError extends Error {}

/** Most encodings a SetEncodings may list (real clients send 10-40). */
export const MAX_ENCODINGS = 512;
/** Most bytes of ClientCutText accepted (the text is dropped: displif has no clipboard). */
export const MAX_CUT_TEXT = 1 << 20;
/** Most screens in a SetDesktopSize. */
export const MAX_SCREENS = 16;
/** The largest message the limits allow (a ClientCutText of MAX_CUT_TEXT). */
export const MAX_MESSAGE_BYTES = 8 + MAX_CUT_TEXT;

export interface Area {
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}

export type ClientMessage =
  | { readonly type: 'setPixelFormat'; readonly pf: RfbPixelFormat }
  | { readonly type: 'setEncodings'; readonly encodings: readonly number[] }
  | { readonly type: 'updateRequest'; readonly incremental: boolean; readonly area: Area }
  | { readonly type: 'key'; readonly down: boolean; readonly keysym: number }
  | { readonly type: 'pointer'; readonly buttons: number; readonly x: number; readonly y: number }
  | { readonly type: 'cutText'; readonly length: number }
  | { readonly type: 'enableContinuousUpdates'; readonly enable: boolean; readonly area: Area }
  | { readonly type: 'fence'; readonly flags: number; readonly payload: Uint8Array }
  | { readonly type: 'setDesktopSize'; readonly width: number; readonly height: number; readonly screens: number };

function area(dv: DataView, at: number): Area {
  return { x: dv.getUint16(at), y: dv.getUint16(at + 2), w: dv.getUint16(at + 4), h: dv.getUint16(at + 6) };
}

/**
 * How many bytes the message starting at `b` needs in all, as far as `b` tells (a lower bound
 * when its header is cut; at least b.length + 1 when parseClientMessage returned undefined), so a
 * caller can wait for that many before joining what it received. Throws like parseClientMessage.
 */
export function clientMessageNeeds(b: Uint8Array): number {
  if (b.length < 1) return 1;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const fixed = (n: number): number => n;
  switch (b[0]!) {
    case CLIENT_SET_PIXEL_FORMAT:
      return fixed(20);
    case CLIENT_SET_ENCODINGS:
      return b.length < 4 ? 4 : 4 + 4 * dv.getUint16(2);
    case CLIENT_FRAMEBUFFER_UPDATE_REQUEST:
    case CLIENT_ENABLE_CONTINUOUS_UPDATES:
      return fixed(10);
    case CLIENT_KEY_EVENT:
      return fixed(8);
    case CLIENT_POINTER_EVENT:
      return fixed(6);
    case CLIENT_CUT_TEXT:
      return b.length < 8 ? 8 : 8 + dv.getUint32(4);
    case CLIENT_FENCE:
      return b.length < 9 ? 9 : 9 + b[8]!;
    case CLIENT_SET_DESKTOP_SIZE:
      return b.length < 8 ? 8 : 8 + 16 * b[6]!;
    default:
      // parseClientMessage throws for it.
      return 1;
  }
}

/**
 * Parses the message at the start of `b`. `b` holds the bytes received so far (it may be cut
 * anywhere); the result says how many bytes the message took.
 */
export function parseClientMessage(b: Uint8Array): { msg: ClientMessage; size: number } | undefined {
  if (b.length < 1) return undefined;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const need = (n: number): boolean => b.length >= n;
  const type = b[0]!;
  switch (type) {
    case CLIENT_SET_PIXEL_FORMAT: {
      if (!need(20)) return undefined;
      try {
        return { msg: { type: 'setPixelFormat', pf: decodePixelFormat(b, 4) }, size: 20 };
      } catch (e) {
        throw new RfbProtocolError(`SetPixelFormat: ${(e as Error).message}`);
      }
    }
    case CLIENT_SET_ENCODINGS: {
      if (!need(4)) return undefined;
      const n = dv.getUint16(2);
      if (n > MAX_ENCODINGS) throw new RfbProtocolError(`SetEncodings with ${n} encodings (at most ${MAX_ENCODINGS})`);
      if (!need(4 + 4 * n)) return undefined;
      const encodings: number[] = [];
      for (let i = 0; i < n; i++) encodings.push(dv.getInt32(4 + 4 * i));
      return { msg: { type: 'setEncodings', encodings }, size: 4 + 4 * n };
    }
    case CLIENT_FRAMEBUFFER_UPDATE_REQUEST:
      if (!need(10)) return undefined;
      if (b[1]! > 1) throw new RfbProtocolError(`FramebufferUpdateRequest: incremental flag ${b[1]}`);
      return { msg: { type: 'updateRequest', incremental: b[1] === 1, area: area(dv, 2) }, size: 10 };
    case CLIENT_KEY_EVENT:
      if (!need(8)) return undefined;
      if (b[1]! > 1) throw new RfbProtocolError(`KeyEvent: down flag ${b[1]}`);
      return { msg: { type: 'key', down: b[1] === 1, keysym: dv.getUint32(4) }, size: 8 };
    case CLIENT_POINTER_EVENT:
      if (!need(6)) return undefined;
      return { msg: { type: 'pointer', buttons: b[1]!, x: dv.getUint16(2), y: dv.getUint16(4) }, size: 6 };
    case CLIENT_CUT_TEXT: {
      if (!need(8)) return undefined;
      // A negative length (as s32) is the Extended Clipboard format, which vdispl does not offer.
      const n = dv.getUint32(4);
      if (n > MAX_CUT_TEXT) throw new RfbProtocolError(`ClientCutText of ${n} bytes (at most ${MAX_CUT_TEXT})`);
      if (!need(8 + n)) return undefined;
      return { msg: { type: 'cutText', length: n }, size: 8 + n };
    }
    case CLIENT_ENABLE_CONTINUOUS_UPDATES:
      if (!need(10)) return undefined;
      if (b[1]! > 1) throw new RfbProtocolError(`EnableContinuousUpdates: enable flag ${b[1]}`);
      return { msg: { type: 'enableContinuousUpdates', enable: b[1] === 1, area: area(dv, 2) }, size: 10 };
    case CLIENT_FENCE: {
      if (!need(9)) return undefined;
      const len = b[8]!;
      if (len > FENCE_MAX_PAYLOAD) throw new RfbProtocolError(`ClientFence with a ${len}-byte payload (at most ${FENCE_MAX_PAYLOAD})`);
      if (!need(9 + len)) return undefined;
      return { msg: { type: 'fence', flags: dv.getUint32(4), payload: b.slice(9, 9 + len) }, size: 9 + len };
    }
    case CLIENT_SET_DESKTOP_SIZE: {
      if (!need(8)) return undefined;
      const screens = b[6]!;
      if (screens === 0 || screens > MAX_SCREENS) throw new RfbProtocolError(`SetDesktopSize with ${screens} screens`);
      if (!need(8 + 16 * screens)) return undefined;
      return { msg: { type: 'setDesktopSize', width: dv.getUint16(2), height: dv.getUint16(4), screens }, size: 8 + 16 * screens };
    }
    default:
      throw new RfbProtocolError(`unknown client message type ${type}`);
  }
}

/**
 * Tests for the RFB test client (test/support/rfb-test-client.ts) against a scripted fake server:
 * a node:net server that writes hand-built RFB bytes and checks what the client sends. Expected
 * pixel values are worked out by hand from RFC 6143 / rfbproto, so these verify the client
 * itself, independently of the project's RFB server.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { constants as zlibConstants, createDeflate, inflateSync, type Deflate } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import {
  RfbSecurityError,
  RfbTestClient,
  zrleCpixel,
  type RfbPixelFormat,
} from '../../support/rfb-test-client.js';

// ---- byte building ----

type Part = number | readonly number[] | Uint8Array | string;

/** Concatenates parts: a number is one byte, a string is Latin-1. */
function bytes(...parts: Part[]): Buffer {
  return Buffer.concat(
    parts.map((p) =>
      typeof p === 'number' ? Buffer.from([p]) : typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p),
    ),
  );
}
function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}
function s32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}
function pfBytes(pf: RfbPixelFormat): Buffer {
  return bytes(
    pf.bitsPerPixel,
    pf.depth,
    pf.bigEndian ? 1 : 0,
    pf.trueColour ? 1 : 0,
    u16(pf.redMax),
    u16(pf.greenMax),
    u16(pf.blueMax),
    pf.redShift,
    pf.greenShift,
    pf.blueShift,
    [0, 0, 0],
  );
}
function serverInit(w: number, h: number, pf: RfbPixelFormat, name: string): Buffer {
  return bytes(u16(w), u16(h), pfBytes(pf), u32(Buffer.byteLength(name)), Buffer.from(name, 'utf8'));
}
function rect(x: number, y: number, w: number, h: number, encoding: number): Buffer {
  return bytes(u16(x), u16(y), u16(w), u16(h), s32(encoding));
}
/** A FramebufferUpdate header (count defaults to the number of rectangle blobs) and the blobs. */
function update(rects: Buffer[], count = rects.length): Buffer {
  return bytes(0, 0, u16(count), ...rects);
}
/** A string: u32 length + bytes. */
function str(s: string): Buffer {
  return bytes(u32(Buffer.byteLength(s, 'latin1')), s);
}

type Rgb = [number, number, number];

// 32 bpp little-endian, depth 24, 0x00RRGGBB: a pixel is [b, g, r, 0] on the wire and its
// ZRLE CPIXEL is the 3 least significant bytes in wire order, [b, g, r].
const PF32LE: RfbPixelFormat = {
  bitsPerPixel: 32,
  depth: 24,
  bigEndian: false,
  trueColour: true,
  redMax: 255,
  greenMax: 255,
  blueMax: 255,
  redShift: 16,
  greenShift: 8,
  blueShift: 0,
};
const px32 = (c: Rgb): number[] => [c[2], c[1], c[0], 0];
const cpx32 = (c: Rgb): number[] => [c[2], c[1], c[0]];

// RGB565 big-endian.
const PF16BE: RfbPixelFormat = {
  bitsPerPixel: 16,
  depth: 16,
  bigEndian: true,
  trueColour: true,
  redMax: 31,
  greenMax: 63,
  blueMax: 31,
  redShift: 11,
  greenShift: 5,
  blueShift: 0,
};

// BGR233: r in bits 0-2, g in 3-5, b in 6-7.
const PF8: RfbPixelFormat = {
  bitsPerPixel: 8,
  depth: 8,
  bigEndian: false,
  trueColour: true,
  redMax: 7,
  greenMax: 7,
  blueMax: 3,
  redShift: 0,
  greenShift: 3,
  blueShift: 6,
};

// ---- the fake server ----

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The server's end of one connection: reads what the client sent, writes bytes. */
class Peer {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  private ended = false;

  constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.notify();
    });
    socket.on('close', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('error', () => undefined);
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.ended) throw new Error(`peer closed with ${this.buf.length} of ${n} bytes`);
      await new Promise<void>((r) => {
        this.wake = r;
      });
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Reads n bytes as a plain array (for toEqual against literal bytes). */
  async readArray(n: number): Promise<number[]> {
    return [...(await this.read(n))];
  }

  write(...parts: Part[]): void {
    this.socket.write(bytes(...parts));
  }
}

async function listen(): Promise<{ port: number; peer: Promise<Peer> }> {
  const server = createServer();
  const peer = new Promise<Peer>((resolve) => {
    server.once('connection', (s: Socket) => {
      cleanups.push(() => {
        s.destroy();
      });
      resolve(new Peer(s));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.close(() => r());
      }),
  );
  return { port: (server.address() as AddressInfo).port, peer };
}

/** Client connect with a 3.8 / None handshake scripted on the server side. */
async function connect38(
  pf: RfbPixelFormat = PF32LE,
  w = 130,
  h = 70,
): Promise<{ client: RfbTestClient; peer: Peer }> {
  const { port, peer: peerP } = await listen();
  const clientP = RfbTestClient.connect({ port });
  const peer = await peerP;
  peer.write('RFB 003.008\n');
  expect((await peer.read(12)).toString('latin1')).toBe('RFB 003.008\n');
  peer.write(1, 1); // one security type: None
  expect(await peer.readArray(1)).toEqual([1]);
  peer.write(u32(0)); // SecurityResult OK (3.8 sends one even for None)
  expect(await peer.readArray(1)).toEqual([1]); // ClientInit, shared
  peer.write(serverInit(w, h, pf, 'fake desktop'));
  const client = await clientP;
  cleanups.push(() => {
    client.close();
  });
  return { client, peer };
}

/** One persistent deflate stream, sync-flushed per call (what a server does for Zlib/ZRLE). */
class SyncDeflate {
  private readonly stream: Deflate = createDeflate();
  private out: Buffer[] = [];

  constructor() {
    this.stream.on('data', (c: Buffer) => {
      this.out.push(c);
    });
    cleanups.push(() => {
      this.stream.close();
    });
  }

  deflate(data: Buffer): Promise<Buffer> {
    return new Promise<Buffer>((resolve) => {
      this.out = [];
      this.stream.write(data);
      this.stream.flush(zlibConstants.Z_SYNC_FLUSH, () => {
        resolve(Buffer.concat(this.out));
      });
    });
  }
}

/** Every pixel of the rectangle whose rgb() differs from expected(x, y), as readable strings. */
function mismatches(
  client: RfbTestClient,
  x0: number,
  y0: number,
  w: number,
  h: number,
  expected: (x: number, y: number) => Rgb,
): string[] {
  const out: string[] = [];
  for (let y = y0; y < y0 + h; y++) {
    for (let x = x0; x < x0 + w; x++) {
      const got = client.rgb(x, y);
      const want = expected(x, y);
      if (got.join() !== want.join()) out.push(`(${x},${y}) got ${got.join()} want ${want.join()}`);
    }
  }
  return out.slice(0, 10);
}

const wallClock = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- tests ----

describe('RfbTestClient handshake and client messages', () => {
  it('does a 3.8 handshake with security None and reports ServerInit', async () => {
    const { client } = await connect38();
    expect(client.serverVersion).toBe('RFB 003.008');
    expect(client.securityTypes).toEqual([1]);
    expect([client.width, client.height]).toEqual([130, 70]);
    expect(client.name).toBe('fake desktop');
    expect(client.serverPixelFormat).toEqual(PF32LE);
    expect(client.pixelFormat).toEqual(PF32LE);
    expect(client.updates).toBe(0);
    expect(client.rgb(129, 69)).toEqual([0, 0, 0]);
    expect(() => client.pixel(130, 0)).toThrow(RangeError);
  });

  it('encodes SetEncodings, FramebufferUpdateRequest, KeyEvent, PointerEvent, ClientCutText as the spec lays them out', async () => {
    const { client, peer } = await connect38();
    client.setEncodings([16, 6, 1, 0, -223, -224, -308, -312, -313]);
    expect(await peer.readArray(40)).toEqual([
      2, 0, 0, 9,
      0, 0, 0, 16, 0, 0, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0,
      0xff, 0xff, 0xff, 0x21, // -223
      0xff, 0xff, 0xff, 0x20, // -224
      0xff, 0xff, 0xfe, 0xcc, // -308
      0xff, 0xff, 0xfe, 0xc8, // -312
      0xff, 0xff, 0xfe, 0xc7, // -313
    ]);
    client.requestUpdate(false);
    expect(await peer.readArray(10)).toEqual([3, 0, 0, 0, 0, 0, 0, 130, 0, 70]);
    client.requestUpdate(true, { x: 1, y: 2, w: 300, h: 4 });
    expect(await peer.readArray(10)).toEqual([3, 1, 0, 1, 0, 2, 0x01, 0x2c, 0, 4]);
    client.sendKey(true, 0xff0d);
    client.sendKey(false, 0x61);
    expect(await peer.readArray(16)).toEqual([4, 1, 0, 0, 0, 0, 0xff, 0x0d, 4, 0, 0, 0, 0, 0, 0, 0x61]);
    client.sendPointer(5, 300, 2);
    expect(await peer.readArray(6)).toEqual([5, 5, 0x01, 0x2c, 0, 2]);
    client.sendCutText('hé');
    expect(await peer.readArray(10)).toEqual([6, 0, 0, 0, 0, 0, 0, 2, 0x68, 0xe9]);
    expect(() => client.sendCutText('€')).toThrow(/Latin-1/);
    client.enableContinuousUpdates(true, { x: 0, y: 0, w: 64, h: 32 });
    expect(await peer.readArray(10)).toEqual([150, 1, 0, 0, 0, 0, 0, 64, 0, 32]);
    client.enableContinuousUpdates(false);
    expect(await peer.readArray(10)).toEqual([150, 0, 0, 0, 0, 0, 0, 130, 0, 70]);
    client.sendRaw(Uint8Array.of(7, 7));
    expect(await peer.readArray(2)).toEqual([7, 7]);
  });

  it('answers 3.3 to a 3.8 server: the server picks the security type, no SecurityResult after None', async () => {
    const { port, peer: peerP } = await listen();
    const clientP = RfbTestClient.connect({ port, version: '3.3', shared: false });
    const peer = await peerP;
    peer.write('RFB 003.008\n');
    expect((await peer.read(12)).toString('latin1')).toBe('RFB 003.003\n');
    peer.write(u32(1)); // security type None, chosen by the server
    expect(await peer.readArray(1)).toEqual([0]); // ClientInit straight away, exclusive
    peer.write(serverInit(4, 3, PF32LE, 'three-three'));
    const client = await clientP;
    cleanups.push(() => {
      client.close();
    });
    expect(client.serverVersion).toBe('RFB 003.008');
    expect(client.securityTypes).toEqual([1]);
    expect([client.width, client.height, client.name]).toEqual([4, 3, 'three-three']);
  });

  it('3.3: security type 0 is a failure followed by the reason string', async () => {
    const { port, peer: peerP } = await listen();
    const clientP = RfbTestClient.connect({ port, version: '3.3' });
    const rejected = expect(clientP).rejects.toThrow(/too many connections/);
    const peer = await peerP;
    peer.write('RFB 003.003\n');
    expect((await peer.read(12)).toString('latin1')).toBe('RFB 003.003\n');
    peer.write(u32(0), str('too many connections'));
    await rejected;
    await expect(clientP).rejects.toBeInstanceOf(RfbSecurityError);
  });

  it('3.7 with None has no SecurityResult; without a password None is preferred', async () => {
    const { port, peer: peerP } = await listen();
    const clientP = RfbTestClient.connect({ port, version: '3.7' });
    const peer = await peerP;
    peer.write('RFB 003.007\n');
    expect((await peer.read(12)).toString('latin1')).toBe('RFB 003.007\n');
    peer.write(2, 2, 1);
    expect(await peer.readArray(1)).toEqual([1]);
    expect(await peer.readArray(1)).toEqual([1]); // ClientInit follows at once
    peer.write(serverInit(2, 2, PF32LE, 'x'));
    const client = await clientP;
    cleanups.push(() => {
      client.close();
    });
    expect(client.securityTypes).toEqual([2, 1]);
  });

  it('3.7 VNC authentication failure: a status and no reason', async () => {
    const { port, peer: peerP } = await listen();
    const clientP = RfbTestClient.connect({ port, version: '3.7', password: 'pw' });
    const rejected = expect(clientP).rejects.toThrow(/security handshake failed \(status 1; RFB 3\.7 sends no reason\)/);
    const peer = await peerP;
    peer.write('RFB 003.007\n');
    await peer.read(12);
    peer.write(2, 1, 2);
    expect(await peer.readArray(1)).toEqual([2]); // VNC auth preferred when a password is given
    peer.write(randomBytes(16));
    await peer.read(16);
    peer.write(u32(1));
    peer.socket.end();
    await rejected;
  });

  it('3.8 VNC authentication: the response is the challenge DES-encrypted under the bit-reversed password', async () => {
    const { port, peer: peerP } = await listen();
    const clientP = RfbTestClient.connect({ port, password: 'secret' });
    const peer = await peerP;
    peer.write('RFB 003.008\n');
    await peer.read(12);
    peer.write(1, 2);
    expect(await peer.readArray(1)).toEqual([2]);
    const challenge = Buffer.from('0123456789abcdef', 'latin1');
    peer.write(challenge);
    const response = await peer.read(16);
    expect(response.toString('hex')).toBe(independentVncDes('secret', challenge).toString('hex'));
    peer.write(u32(0));
    expect(await peer.readArray(1)).toEqual([1]);
    peer.write(serverInit(8, 8, PF32LE, 'authed'));
    const client = await clientP;
    cleanups.push(() => {
      client.close();
    });
    expect(client.name).toBe('authed');
  });

  it('3.8 VNC authentication failure carries the reason string', async () => {
    const { port, peer: peerP } = await listen();
    const clientP = RfbTestClient.connect({ port, password: 'wrong' });
    const caught = clientP.then(
      () => undefined,
      (e: unknown) => e,
    );
    const peer = await peerP;
    peer.write('RFB 003.008\n');
    await peer.read(12);
    peer.write(1, 2);
    await peer.read(1);
    peer.write(randomBytes(16));
    await peer.read(16);
    peer.write(u32(1), str('Authentication failed: bad password'));
    peer.socket.end();
    const err = await caught;
    expect(err).toBeInstanceOf(RfbSecurityError);
    expect((err as RfbSecurityError).reason).toBe('Authentication failed: bad password');
    expect((err as Error).message).toMatch(/status 1.*bad password/);
  });

  it('3.8: no security types means failure with a reason; VNC auth without a password is refused', async () => {
    {
      const { port, peer: peerP } = await listen();
      const clientP = RfbTestClient.connect({ port });
      const rejected = expect(clientP).rejects.toThrow(/unsupported protocol version/);
      const peer = await peerP;
      peer.write('RFB 003.008\n');
      await peer.read(12);
      peer.write(0, str('unsupported protocol version'));
      await rejected;
    }
    {
      const { port, peer: peerP } = await listen();
      const clientP = RfbTestClient.connect({ port });
      const rejected = expect(clientP).rejects.toThrow(/no password/);
      const peer = await peerP;
      peer.write('RFB 003.008\n');
      await peer.read(12);
      peer.write(1, 2);
      await rejected;
    }
  });

  it('times out a handshake the server never starts', async () => {
    const { port } = await listen();
    await expect(RfbTestClient.connect({ port, connectTimeoutMs: 100 })).rejects.toThrow(/timed out after 100 ms/);
  });
});

/**
 * VNC authentication computed independently of src/present/rfb/des.ts: Node's OpenSSL 3 has no
 * single DES without the legacy provider, but two-key triple DES with both keys equal is
 * E_K(D_K(E_K(x))) = E_K(x). The key is the password's first 8 bytes (zero-padded), each byte
 * bit-reversed.
 */
function independentVncDes(password: string, challenge: Buffer): Buffer {
  const key = Buffer.alloc(8);
  Buffer.from(password, 'latin1').copy(key, 0, 0, 8);
  for (let i = 0; i < 8; i++) {
    let r = 0;
    for (let bit = 0; bit < 8; bit++) if (key[i]! & (1 << bit)) r |= 1 << (7 - bit);
    key[i] = r;
  }
  const c = createCipheriv('des-ede-ecb', Buffer.concat([key, key]), null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(challenge), c.final()]);
}

describe('RfbTestClient decoding', () => {
  it('Raw (split across TCP writes) and CopyRect (overlapping)', async () => {
    const { client, peer } = await connect38();
    const red: Rgb = [255, 0, 0];
    const green: Rgb = [0, 255, 0];
    const blue: Rgb = [0, 0, 255];
    const grey: Rgb = [10, 20, 30];
    const msg = update([bytes(rect(1, 1, 2, 2, 0), px32(red), px32(green), px32(blue), px32(grey))]);
    expect(msg.length).toBe(32);
    peer.write(msg.subarray(0, 10));
    await sleep(30);
    const before = wallClock();
    peer.write(msg.subarray(10));
    const u = await client.nextUpdate();
    expect(u.rects).toEqual([{ x: 1, y: 1, w: 2, h: 2, encoding: 0 }]);
    expect(u.bytes).toBe(32);
    expect(u.receivedAt).toBeGreaterThanOrEqual(before);
    expect(u.receivedAt).toBeLessThanOrEqual(wallClock());
    expect(client.pixel(1, 1)).toBe(0x00ff0000);
    expect(client.pixel(2, 2)).toBe(0x000a141e);
    expect([client.rgb(1, 1), client.rgb(2, 1), client.rgb(1, 2), client.rgb(2, 2)]).toEqual([red, green, blue, grey]);
    expect(client.rgb(0, 0)).toEqual([0, 0, 0]);

    // A plain copy elsewhere, then one that overlaps its own source (moved one pixel right): the
    // copy must read the source as it was before the rectangle, not as it is being overwritten.
    peer.write(update([bytes(rect(10, 0, 2, 2, 1), u16(1), u16(1)), bytes(rect(2, 1, 2, 2, 1), u16(1), u16(1))]));
    const u2 = await client.nextUpdate();
    expect(u2.bytes).toBe(4 + 2 * (12 + 4));
    expect([client.rgb(10, 0), client.rgb(11, 0), client.rgb(10, 1), client.rgb(11, 1)]).toEqual([red, green, blue, grey]);
    expect([client.rgb(1, 1), client.rgb(2, 1), client.rgb(3, 1)]).toEqual([red, red, green]);
    expect([client.rgb(1, 2), client.rgb(2, 2), client.rgb(3, 2)]).toEqual([blue, blue, grey]);
    const rgba = client.rgba();
    expect(rgba.length).toBe(130 * 70 * 4);
    const at = (2 * 130 + 3) * 4;
    expect([...rgba.subarray(at, at + 4)]).toEqual([10, 20, 30, 255]);
    expect(client.updates).toBe(2);
  });

  it('Zlib: one inflate stream for the whole connection', async () => {
    const { client, peer } = await connect38();
    const z = new SyncDeflate();
    const colour = (x: number, y: number): Rgb => [x * 60, y * 100, 7];
    const raw = (x0: number, y0: number): Buffer => {
      const parts: number[][] = [];
      for (let y = 0; y < 2; y++) for (let x = 0; x < 4; x++) parts.push(px32(colour(x0 + x, y0 + y)));
      return bytes(...parts);
    };
    const a = await z.deflate(raw(0, 0));
    peer.write(update([bytes(rect(0, 10, 4, 2, 6), u32(a.length), a)]));
    await client.nextUpdate();
    // The same raw data again: the stream's history makes it a back-reference that only a
    // decoder which kept the stream (not a fresh inflate) can read.
    const b = await z.deflate(raw(0, 0));
    expect(b.length).toBeLessThan(a.length);
    expect(() => inflateSync(b)).toThrow();
    const c = await z.deflate(raw(1, 1));
    peer.write(update([bytes(rect(0, 20, 4, 2, 6), u32(b.length), b), bytes(rect(4, 20, 4, 2, 6), u32(c.length), c)]));
    const u = await client.nextUpdate();
    expect(u.bytes).toBe(4 + 12 + 4 + b.length + 12 + 4 + c.length);
    expect(mismatches(client, 0, 10, 4, 2, (x, y) => colour(x, y - 10))).toEqual([]);
    expect(mismatches(client, 0, 20, 4, 2, (x, y) => colour(x, y - 20))).toEqual([]);
    expect(mismatches(client, 4, 20, 4, 2, (x, y) => colour(x - 3, y - 19))).toEqual([]);
  });

  it('ZRLE: solid, packed palette (1/2/4-bit, padded rows), plain RLE, palette RLE and raw tiles with 3-byte CPIXELs', async () => {
    const { client, peer } = await connect38();
    expect(zrleCpixel(PF32LE)).toEqual({ bytes: 3, shift: 0 });
    const z = new SyncDeflate();

    // A 130x70 rectangle is 3x2 tiles: 64x64, 64x64, 2x64 over 64x6, 64x6, 2x6.
    const S: Rgb = [17, 34, 51];
    const P: Rgb[] = [[250, 0, 0], [0, 0, 250]];
    const Q: Rgb[] = [[1, 2, 3], [40, 50, 60], [200, 100, 0]];
    const R: Rgb[] = [[9, 99, 199], [255, 255, 0]];
    const T: Rgb[] = [[0, 0, 0], [255, 255, 255], [128, 64, 32]];
    const rawColour = (k: number): Rgb => [k * 20, 255 - k * 20, k];

    // Tile 0 (0,0 64x64): solid.
    const t0 = bytes(1, cpx32(S));
    // Tile 1 (64,0 64x64): 2-colour packed palette, 1 bit per pixel, MSB = leftmost; index 1 where (x + y) % 3 == 0.
    const t1rows: number[] = [];
    for (let y = 0; y < 64; y++) {
      for (let byte = 0; byte < 8; byte++) {
        let v = 0;
        for (let j = 0; j < 8; j++) if ((byte * 8 + j + y) % 3 === 0) v |= 0x80 >> j;
        t1rows.push(v);
      }
    }
    expect(t1rows.slice(0, 3)).toEqual([0x92, 0x49, 0x24]); // row 0: x = 0,3,6 | 9,12,15 | 18,21
    expect(t1rows.slice(8, 9)).toEqual([0x24]); // row 1: x = 2,5
    const t1 = bytes(2, cpx32(P[0]!), cpx32(P[1]!), t1rows);
    // Tile 2 (128,0 2x64): 3-colour packed palette, 2 bits per pixel; a 2-pixel row is 4 bits + 4 padding bits.
    const t2rows: number[] = [];
    for (let y = 0; y < 64; y++) t2rows.push((((0 + y) % 3) << 6) | (((1 + y) % 3) << 4));
    expect(t2rows.slice(0, 3)).toEqual([0x10, 0x60, 0x80]);
    const t2 = bytes(3, cpx32(Q[0]!), cpx32(Q[1]!), cpx32(Q[2]!), t2rows);
    // Tile 3 (0,64 64x6 = 384 px): plain RLE, runs across row ends: 256 x R0 ([255, 0]), 1 x R1 ([0]), 127 x R0 ([126]).
    const t3 = bytes(128, cpx32(R[0]!), 255, 0, cpx32(R[1]!), 0, cpx32(R[0]!), 126);
    // Tile 4 (64,64 64x6 = 384 px): palette RLE with 3 colours: T2 once, T0 x100, T1 once, T2 x282 ([255, 26]).
    const t4 = bytes(128 + 3, cpx32(T[0]!), cpx32(T[1]!), cpx32(T[2]!), 2, 0x80, 99, 1, 0x82, 255, 26);
    // Tile 5 (128,64 2x6): raw CPIXELs.
    const t5parts: number[][] = [];
    for (let k = 0; k < 12; k++) t5parts.push(cpx32(rawColour(k)));
    const t5 = bytes(0, ...t5parts);

    const zrle1 = await z.deflate(bytes(t0, t1, t2, t3, t4, t5));
    peer.write(update([bytes(rect(0, 0, 130, 70, 16), u32(zrle1.length), zrle1)]));
    const u = await client.nextUpdate();
    expect(u.rects).toEqual([{ x: 0, y: 0, w: 130, h: 70, encoding: 16 }]);
    expect(u.bytes).toBe(4 + 12 + 4 + zrle1.length);

    const expected = (x: number, y: number): Rgb => {
      if (y < 64) {
        if (x < 64) return S;
        if (x < 128) return (x - 64 + y) % 3 === 0 ? P[1]! : P[0]!;
        return Q[(x - 128 + y) % 3]!;
      }
      if (x < 64) {
        const k = (y - 64) * 64 + x;
        return k < 256 ? R[0]! : k === 256 ? R[1]! : R[0]!;
      }
      if (x < 128) {
        const k = (y - 64) * 64 + (x - 64);
        return k === 0 ? T[2]! : k <= 100 ? T[0]! : k === 101 ? T[1]! : T[2]!;
      }
      return rawColour((y - 64) * 2 + (x - 128));
    };
    expect(mismatches(client, 0, 0, 130, 70, expected)).toEqual([]);
    // A few spelled out: the end of the 256-run wraps to row 4 of tile 3, the single R1 is at (0, 68).
    expect([client.rgb(63, 67), client.rgb(0, 68), client.rgb(1, 68)]).toEqual([R[0], R[1], R[0]]);
    expect([client.rgb(64, 64), client.rgb(65, 64), client.rgb(100, 65), client.rgb(101, 65), client.rgb(102, 65)]).toEqual([
      T[2], T[0], T[0], T[1], T[2],
    ]);
    expect(client.pixel(129, 69)).toBe((220 << 16) | (35 << 8) | 11);

    // Same ZRLE stream, next update: a 5-colour packed palette, 4 bits per pixel, 3-pixel rows padded to 2 bytes.
    const F: Rgb[] = [[10, 0, 0], [20, 0, 0], [30, 0, 0], [40, 0, 0], [50, 0, 0]];
    const zrle2 = await z.deflate(bytes(5, ...F.map(cpx32), 0x40, 0x30, 0x12, 0x40));
    peer.write(update([bytes(rect(10, 10, 3, 2, 16), u32(zrle2.length), zrle2)]));
    await client.nextUpdate();
    expect([client.rgb(10, 10), client.rgb(11, 10), client.rgb(12, 10)]).toEqual([F[4], F[0], F[3]]);
    expect([client.rgb(10, 11), client.rgb(11, 11), client.rgb(12, 11)]).toEqual([F[1], F[2], F[4]]);
    expect(client.rgb(13, 10)).toEqual(S);
  });

  // Which 3 bytes a CPIXEL is: the 4-byte wire pixel without its unused byte, in the pixel's own
  // byte order; the least significant 3 when both would do. Colours 0x11/0x22/0x33 and 0xaa/0xbb/0xcc.
  const base = { bitsPerPixel: 32, trueColour: true, redMax: 255, greenMax: 255, blueMax: 255 };
  const cpixelCases: {
    name: string;
    pf: RfbPixelFormat;
    cpixel: { bytes: number; shift: number };
    wire: number[];
    pixels: [number, number];
    rgbs: [Rgb, Rgb];
  }[] = [
    {
      name: 'LE, colour in the low 3 bytes: the first 3 wire bytes',
      pf: { ...base, depth: 24, bigEndian: false, redShift: 16, greenShift: 8, blueShift: 0 },
      cpixel: { bytes: 3, shift: 0 },
      wire: [0x33, 0x22, 0x11, 0xcc, 0xbb, 0xaa],
      pixels: [0x00112233, 0x00aabbcc],
      rgbs: [[0x11, 0x22, 0x33], [0xaa, 0xbb, 0xcc]],
    },
    {
      name: 'BE, colour in the low 3 bytes: the last 3 wire bytes',
      pf: { ...base, depth: 24, bigEndian: true, redShift: 16, greenShift: 8, blueShift: 0 },
      cpixel: { bytes: 3, shift: 0 },
      wire: [0x11, 0x22, 0x33, 0xaa, 0xbb, 0xcc],
      pixels: [0x00112233, 0x00aabbcc],
      rgbs: [[0x11, 0x22, 0x33], [0xaa, 0xbb, 0xcc]],
    },
    {
      name: 'LE, colour in the high 3 bytes: the last 3 wire bytes',
      pf: { ...base, depth: 24, bigEndian: false, redShift: 24, greenShift: 16, blueShift: 8 },
      cpixel: { bytes: 3, shift: 8 },
      wire: [0x33, 0x22, 0x11, 0xcc, 0xbb, 0xaa],
      pixels: [0x11223300, 0xaabbcc00],
      rgbs: [[0x11, 0x22, 0x33], [0xaa, 0xbb, 0xcc]],
    },
    {
      name: 'BE, colour in the high 3 bytes: the first 3 wire bytes',
      pf: { ...base, depth: 24, bigEndian: true, redShift: 24, greenShift: 16, blueShift: 8 },
      cpixel: { bytes: 3, shift: 8 },
      wire: [0x11, 0x22, 0x33, 0xaa, 0xbb, 0xcc],
      pixels: [0x11223300, 0xaabbcc00],
      rgbs: [[0x11, 0x22, 0x33], [0xaa, 0xbb, 0xcc]],
    },
    {
      name: 'LE BGR (shifts 0/8/16)',
      pf: { ...base, depth: 24, bigEndian: false, redShift: 0, greenShift: 8, blueShift: 16 },
      cpixel: { bytes: 3, shift: 0 },
      wire: [0x11, 0x22, 0x33, 0xaa, 0xbb, 0xcc],
      pixels: [0x00332211, 0x00ccbbaa],
      rgbs: [[0x11, 0x22, 0x33], [0xaa, 0xbb, 0xcc]],
    },
    {
      name: 'depth 24 spread over bits 0..29 (shifts 22/11/0): a full 4-byte CPIXEL',
      pf: { ...base, depth: 24, bigEndian: false, redShift: 22, greenShift: 11, blueShift: 0 },
      cpixel: { bytes: 4, shift: 0 },
      // 0x11 << 22 | 0x22 << 11 | 0x33 = 0x04411033; 0xaa << 22 | 0xbb << 11 | 0xcc = 0x2a85d8cc
      wire: [0x33, 0x10, 0x41, 0x04, 0xcc, 0xd8, 0x85, 0x2a],
      pixels: [0x04411033, 0x2a85d8cc],
      rgbs: [[0x11, 0x22, 0x33], [0xaa, 0xbb, 0xcc]],
    },
    {
      name: 'depth 32: a full 4-byte CPIXEL even though the colours would fit in 3',
      pf: { ...base, depth: 32, bigEndian: false, redShift: 16, greenShift: 8, blueShift: 0 },
      cpixel: { bytes: 4, shift: 0 },
      wire: [0x33, 0x22, 0x11, 0x00, 0xcc, 0xbb, 0xaa, 0x00],
      pixels: [0x00112233, 0x00aabbcc],
      rgbs: [[0x11, 0x22, 0x33], [0xaa, 0xbb, 0xcc]],
    },
    {
      name: 'LE RGB565 in 32 bpp at shifts 11/5/0 (bits 0..15): the 3 least significant bytes',
      pf: { ...base, depth: 16, bigEndian: false, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 },
      cpixel: { bytes: 3, shift: 0 },
      wire: [0x1f, 0xf8, 0x00, 0xe0, 0x07, 0x00],
      pixels: [0xf81f, 0x07e0],
      rgbs: [[255, 0, 255], [0, 255, 0]],
    },
    {
      // Bits 8..23 fit in both the low and the high 3 bytes: by the spec's convention the low 3.
      // 31<<19 | 31<<8 = 0x00f81f00 is [00 1f f8 00] little-endian: the first 3 wire bytes.
      name: 'LE RGB565 in 32 bpp at shifts 19/13/8 (fits either way): the 3 least significant bytes = the first 3 wire bytes',
      pf: { ...base, depth: 16, bigEndian: false, redMax: 31, greenMax: 63, blueMax: 31, redShift: 19, greenShift: 13, blueShift: 8 },
      cpixel: { bytes: 3, shift: 0 },
      wire: [0x00, 0x1f, 0xf8, 0x00, 0xe0, 0x07],
      pixels: [0x00f81f00, 0x0007e000],
      rgbs: [[255, 0, 255], [0, 255, 0]],
    },
    {
      // [00 f8 1f 00] big-endian: the least significant 3 bytes are the LAST 3 wire bytes
      // (TigerVNC's ZRLE coder picks the first 3 here, i.e. the most significant ones).
      name: 'BE RGB565 in 32 bpp at shifts 19/13/8 (fits either way): the 3 least significant bytes = the last 3 wire bytes',
      pf: { ...base, depth: 16, bigEndian: true, redMax: 31, greenMax: 63, blueMax: 31, redShift: 19, greenShift: 13, blueShift: 8 },
      cpixel: { bytes: 3, shift: 0 },
      wire: [0xf8, 0x1f, 0x00, 0x07, 0xe0, 0x00],
      pixels: [0x00f81f00, 0x0007e000],
      rgbs: [[255, 0, 255], [0, 255, 0]],
    },
  ];
  it.each(cpixelCases)('ZRLE CPIXEL: $name', async ({ pf, cpixel, wire, pixels, rgbs }) => {
    expect(zrleCpixel(pf)).toEqual(cpixel);
    const { client, peer } = await connect38(pf, 4, 1);
    const z = new SyncDeflate();
    const data = await z.deflate(bytes(0, wire)); // one 2x1 raw tile
    peer.write(update([bytes(rect(1, 0, 2, 1, 16), u32(data.length), data)]));
    await client.nextUpdate();
    expect([client.pixel(1, 0), client.pixel(2, 0)]).toEqual(pixels);
    expect([client.rgb(1, 0), client.rgb(2, 0)]).toEqual(rgbs);
  });

  it('SetPixelFormat: 16 bpp big-endian and 8 bpp, converting what is already there', async () => {
    const { client, peer } = await connect38();
    peer.write(update([bytes(rect(0, 0, 2, 1, 0), px32([255, 0, 0]), px32([17, 34, 51]))]));
    await client.nextUpdate();

    client.setPixelFormat(PF16BE);
    expect(await peer.readArray(20)).toEqual([0, 0, 0, 0, 16, 16, 1, 1, 0, 31, 0, 63, 0, 31, 11, 5, 0, 0, 0, 0]);
    expect(client.pixelFormat).toEqual(PF16BE);
    expect(client.serverPixelFormat).toEqual(PF32LE);
    // (17,34,51) -> round(17*31/255)=2, round(34*63/255)=8, round(51*31/255)=6 -> 2<<11 | 8<<5 | 6.
    expect([client.pixel(0, 0), client.pixel(1, 0)]).toEqual([0xf800, 0x1106]);
    // ... which reads back as round(2*255/31)=16, round(8*255/63)=32, round(6*255/31)=49.
    expect(client.rgb(1, 0)).toEqual([16, 32, 49]);

    // Raw 16 bpp big-endian: 0x8410 = r 16, g 32, b 16 -> 132, 130, 132.
    peer.write(update([bytes(rect(2, 0, 2, 1, 0), [0x84, 0x10], [0x07, 0xe0])]));
    await client.nextUpdate();
    expect([client.pixel(2, 0), client.pixel(3, 0)]).toEqual([0x8410, 0x07e0]);
    expect([client.rgb(2, 0), client.rgb(3, 0)]).toEqual([[132, 130, 132], [0, 255, 0]]);

    // ZRLE at 16 bpp: CPIXEL = PIXEL (2 bytes, big-endian). Plain RLE: 2 x red, 2 x blue.
    const z = new SyncDeflate();
    const d16 = await z.deflate(bytes(128, 0xf8, 0x00, 1, 0x00, 0x1f, 1));
    peer.write(update([bytes(rect(0, 1, 4, 1, 16), u32(d16.length), d16)]));
    await client.nextUpdate();
    expect([0, 1, 2, 3].map((x) => client.pixel(x, 1))).toEqual([0xf800, 0xf800, 0x001f, 0x001f]);

    client.setPixelFormat(PF8);
    expect(await peer.readArray(20)).toEqual([0, 0, 0, 0, 8, 8, 0, 1, 0, 7, 0, 7, 0, 3, 0, 3, 6, 0, 0, 0]);
    expect(client.pixel(0, 0)).toBe(0x07); // red at BGR233
    expect(client.pixel(2, 1)).toBe(0xc0); // blue
    peer.write(update([bytes(rect(0, 2, 2, 1, 0), 0x38, 0xc0)]));
    await client.nextUpdate();
    expect([client.rgb(0, 2), client.rgb(1, 2)]).toEqual([[0, 255, 0], [0, 0, 255]]);
    // ZRLE at 8 bpp, 2-colour packed palette: [red, magenta], indices 0 1.
    const d8 = await z.deflate(bytes(2, 0x07, 0xc7, 0x40));
    peer.write(update([bytes(rect(2, 2, 2, 1, 16), u32(d8.length), d8)]));
    await client.nextUpdate();
    expect([client.rgb(2, 2), client.rgb(3, 2)]).toEqual([[255, 0, 0], [255, 0, 255]]);
  });

  it('LastRect ends an update announced with 0xFFFF rectangles', async () => {
    const { client, peer } = await connect38();
    peer.write(
      update([bytes(rect(0, 0, 1, 1, 0), px32([1, 2, 3])), rect(0, 0, 0, 0, -224)], 0xffff),
      update([bytes(rect(1, 0, 1, 1, 0), px32([4, 5, 6]))]),
    );
    const u1 = await client.nextUpdate();
    expect(u1.rects).toEqual([
      { x: 0, y: 0, w: 1, h: 1, encoding: 0 },
      { x: 0, y: 0, w: 0, h: 0, encoding: -224 },
    ]);
    expect(u1.bytes).toBe(4 + 12 + 4 + 12);
    const u2 = await client.nextUpdate();
    expect(u2.rects).toHaveLength(1);
    expect([client.rgb(0, 0), client.rgb(1, 0)]).toEqual([[1, 2, 3], [4, 5, 6]]);
  });

  it('DesktopSize and ExtendedDesktopSize', async () => {
    const { client, peer } = await connect38();
    peer.write(update([bytes(rect(0, 0, 1, 1, 0), px32([255, 255, 255]))]), update([rect(0, 0, 40, 30, -223)]));
    await client.nextUpdate();
    await client.nextUpdate();
    expect([client.width, client.height]).toEqual([40, 30]);
    expect(client.pixel(0, 0)).toBe(0); // nothing kept
    expect(() => client.pixel(40, 0)).toThrow(RangeError);

    // reason 0, status 0, 50x20, two screens: u8 count, 3 padding, then id u32, x y w h u16, flags u32.
    peer.write(
      update([
        bytes(
          rect(0, 0, 50, 20, -308),
          [2, 0, 0, 0],
          u32(1), u16(0), u16(0), u16(25), u16(20), u32(0),
          u32(0xdeadbeef), u16(25), u16(0), u16(25), u16(20), u32(0x80000001),
        ),
      ]),
    );
    await client.nextUpdate();
    expect([client.width, client.height]).toEqual([50, 20]);
    // A client-requested change that failed (reason 1, status 3): the rest is undefined, nothing changes.
    peer.write(update([bytes(rect(1, 3, 0, 0, -308), [0, 0, 0, 0])]));
    await client.nextUpdate();
    expect([client.width, client.height]).toEqual([50, 20]);
    // A layout-only change keeps the framebuffer.
    peer.write(update([bytes(rect(0, 0, 1, 1, 0), px32([9, 9, 9]))]));
    peer.write(update([bytes(rect(0, 0, 50, 20, -308), [1, 0, 0, 0], u32(7), u16(0), u16(0), u16(50), u16(20), u32(0))]));
    await client.nextUpdate();
    await client.nextUpdate();
    expect(client.rgb(0, 0)).toEqual([9, 9, 9]);

    expect(client.desktopSizes).toEqual([
      { encoding: -223, x: 0, y: 0, w: 40, h: 30 },
      {
        encoding: -308,
        x: 0,
        y: 0,
        w: 50,
        h: 20,
        screens: [
          { id: 1, x: 0, y: 0, w: 25, h: 20, flags: 0 },
          { id: 0xdeadbeef, x: 25, y: 0, w: 25, h: 20, flags: 0x80000001 },
        ],
      },
      { encoding: -308, x: 1, y: 3, w: 0, h: 0, screens: [] },
      { encoding: -308, x: 0, y: 0, w: 50, h: 20, screens: [{ id: 7, x: 0, y: 0, w: 50, h: 20, flags: 0 }] },
    ]);
  });

  it('Fence: answers requests with flags & 7 and the same payload, records responses without answering', async () => {
    const { client, peer } = await connect38();
    // Request with BlockBefore|BlockAfter|SyncNext and an unknown bit 3.
    peer.write(248, [0, 0, 0], u32(0x8000000f), 3, [1, 2, 3]);
    expect(await peer.readArray(12)).toEqual([248, 0, 0, 0, 0, 0, 0, 7, 3, 1, 2, 3]);
    peer.write(248, [0, 0, 0], u32(0x80000000), 0);
    expect(await peer.readArray(9)).toEqual([248, 0, 0, 0, 0, 0, 0, 0, 0]);

    client.sendFence(0x80000005, Uint8Array.of(9, 8));
    expect(await peer.readArray(11)).toEqual([248, 0, 0, 0, 0x80, 0, 0, 5, 2, 9, 8]);
    peer.write(248, [0, 0, 0], u32(5), 2, [9, 8], update([]));
    await client.nextUpdate();
    client.requestUpdate(true); // the next thing on the wire: no answer to a response
    expect((await peer.readArray(10))[0]).toBe(3);

    expect(client.fences).toEqual([
      { flags: 0x8000000f, payload: Uint8Array.of(1, 2, 3) },
      { flags: 0x80000000, payload: new Uint8Array(0) },
      { flags: 5, payload: Uint8Array.of(9, 8) },
    ]);
  });

  it('EndOfContinuousUpdates, Bell, ServerCutText and SetColourMapEntries', async () => {
    const { client, peer } = await connect38();
    peer.write(150, 2, 2, 150);
    peer.write(3, [0, 0, 0], u32(5), [0x68, 0xe9, 0x6c, 0x6c, 0x6f]);
    peer.write(1, 0, u16(0), u16(2), u16(0xffff), u16(0), u16(0), u16(0), u16(0x8080), u16(0xffff));
    peer.write(update([]));
    const u = await client.nextUpdate();
    expect(u.rects).toEqual([]);
    expect(u.bytes).toBe(4);
    expect(client.endOfContinuousUpdates).toBe(2);
    expect(client.bells).toBe(2);
    expect(client.cutTexts).toEqual(['héllo']);
  });
});

describe('RfbTestClient failures', () => {
  async function expectFailure(payload: Buffer, message: RegExp): Promise<void> {
    const { client, peer } = await connect38();
    const pending = client.nextUpdate();
    peer.write(payload);
    await expect(pending).rejects.toThrow(message);
    await client.closed;
    expect(client.error?.message).toMatch(message);
    await expect(client.nextUpdate()).rejects.toThrow(message);
  }

  it('an unknown server message type', async () => {
    await expectFailure(bytes(77), /unknown server message type 77/);
  });

  it('an unknown encoding', async () => {
    await expectFailure(update([rect(0, 0, 1, 1, 5)]), /unknown encoding 5 \(rectangle 0: 1x1\+0\+0\)/);
  });

  it('an unknown pseudo-encoding after a good rectangle', async () => {
    await expectFailure(
      update([bytes(rect(0, 0, 1, 1, 0), px32([1, 1, 1])), rect(0, 0, 0, 0, -239)]),
      /unknown encoding -239 \(rectangle 1/,
    );
  });

  it('a ZRLE subencoding the spec leaves unused', async () => {
    const z = new SyncDeflate();
    const d = await z.deflate(bytes(17));
    await expectFailure(update([bytes(rect(0, 0, 1, 1, 16), u32(d.length), d)]), /ZRLE subencoding 17 is unused/);
  });

  it('a ZRLE palette index beyond the palette', async () => {
    const z = new SyncDeflate();
    const d = await z.deflate(bytes(130, cpx32([1, 1, 1]), cpx32([2, 2, 2]), 2));
    await expectFailure(update([bytes(rect(0, 0, 1, 1, 16), u32(d.length), d)]), /palette RLE index 2 >= palette size 2/);
  });

  it('ZRLE data that stops short of the tiles', async () => {
    const z = new SyncDeflate();
    const d = await z.deflate(bytes(1, 0x00));
    await expectFailure(update([bytes(rect(0, 0, 1, 1, 16), u32(d.length), d)]), /ZRLE data ends inside/);
  });

  it('Zlib data of the wrong length', async () => {
    const z = new SyncDeflate();
    const d = await z.deflate(bytes(px32([1, 1, 1])));
    await expectFailure(update([bytes(rect(0, 0, 2, 1, 6), u32(d.length), d)]), /inflated to 4 bytes, expected 8/);
  });

  it('a rectangle outside the framebuffer', async () => {
    await expectFailure(update([bytes(rect(129, 69, 2, 1, 0), px32([1, 1, 1]), px32([1, 1, 1]))]), /exceeds the 130x70/);
  });

  it('nextUpdate times out; a server close rejects waiters after the queued updates are handed out', async () => {
    const { client, peer } = await connect38();
    await expect(client.nextUpdate(50)).rejects.toThrow(/no FramebufferUpdate within 50 ms \(0 received so far\)/);
    peer.write(update([]));
    peer.socket.end();
    await client.closed;
    await expect(client.nextUpdate()).resolves.toMatchObject({ rects: [], bytes: 4 });
    await expect(client.nextUpdate()).rejects.toThrow(/connection closed/);
    expect(() => client.requestUpdate(true)).toThrow(/closed/);
  });
});

/**
 * The pure server handshake (src/present/rfb/handshake.ts) and the version negotiation of
 * protocol.ts: every version (3.3, 3.7, 3.8) x security (None without a password, VNC
 * authentication with one) x right / wrong password, with the exact bytes sent at each step:
 * 3.3 names the type as a u32 and sends no SecurityResult after None; 3.7 offers a list and sends
 * no SecurityResult after None; 3.8 always sends one; a failure's reason string only in 3.8. Also:
 * the shared flag, pipelined bytes (everything the client sends in one chunk, ClientInit included,
 * with the messages after it returned as `rest`), one byte at a time, passwords longer than 8
 * bytes, the version mapping (3.5/3.6 -> 3.3, 3.889 and 4.x -> 3.8).
 *
 * Bad inputs tried: version strings that are not RFB ones (HTTP, lower case, CR instead of LF,
 * short numbers, 2.x, NULs, TLS ClientHello bytes): the handshake fails without sending anything;
 * a security type that was not offered (None when VNC auth is required, VNC auth when None is, 0,
 * 255); a wrong password; anything received after the end.
 */
import { describe, expect, it } from 'vitest';
import { vncAuthResponse } from '../../../src/present/rfb/des.js';
import { RfbHandshake } from '../../../src/present/rfb/handshake.js';
import { negotiateVersion, type RfbVersion, versionString } from '../../../src/present/rfb/protocol.js';

const CHALLENGE = Uint8Array.from({ length: 16 }, (_, i) => (i * 37 + 5) & 0xff);
const PASSWORD = 'sesame';

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
const u32 = (v: number): number[] => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];

function join(parts: readonly Uint8Array[]): number[] {
  return parts.flatMap((p) => [...p]);
}

function reason(text: string): number[] {
  const t = ascii(text);
  return [...u32(t.length), ...t];
}

function handshake(password?: string): RfbHandshake {
  return new RfbHandshake({ password, random: (n) => CHALLENGE.slice(0, n) });
}

const VERSIONS: RfbVersion[] = ['3.3', '3.7', '3.8'];

describe('RfbHandshake: greeting and version strings', () => {
  it('greets with RFB 003.008', () => {
    expect(new TextDecoder().decode(handshake().greeting())).toBe('RFB 003.008\n');
    expect(versionString('3.3')).toBe('RFB 003.003\n');
    expect(versionString('3.7')).toBe('RFB 003.007\n');
  });

  it.each([
    ['RFB 003.003\n', '3.3'],
    ['RFB 003.005\n', '3.3'],
    ['RFB 003.006\n', '3.3'],
    ['RFB 003.004\n', '3.3'],
    ['RFB 003.000\n', '3.3'],
    ['RFB 003.007\n', '3.7'],
    ['RFB 003.008\n', '3.8'],
    ['RFB 003.009\n', '3.8'],
    ['RFB 003.889\n', '3.8'],
    ['RFB 004.000\n', '3.8'],
    ['RFB 004.001\n', '3.8'],
    ['RFB 005.000\n', '3.8'],
  ])('negotiates %j as %s', (text, v) => {
    expect(negotiateVersion(text)).toBe(v);
  });

  it.each(['RFB 002.000\n', 'RFB 000.000\n', 'GET / HTTP/1.1\r\n', 'rfb 003.008\n', 'RFB 003.008\r', 'RFB 3.8\n    ', 'RFB 003.008 ', 'RFB 003.08\n ', 'RFB 0x3.008\n', '\0'.repeat(12), 'RFB 003.008\n\n', ''])(
    'refuses %j',
    (text) => {
      expect(negotiateVersion(text)).toBeUndefined();
    },
  );
});

describe('RfbHandshake: bad version strings', () => {
  it.each([
    ['HTTP', ascii('GET / HTTP/1.1\r\n')],
    ['lower case', ascii('rfb 003.008\n')],
    ['CR for LF', ascii('RFB 003.008\r')],
    ['RFB 2.0', ascii('RFB 002.000\n')],
    ['NULs', new Uint8Array(12)],
    ['TLS ClientHello', Uint8Array.of(0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0xaa)],
    ['high bytes', new Uint8Array(12).fill(0xff)],
  ])('%s: fails once 12 bytes are in, sending nothing', (_name, b) => {
    const h = handshake();
    expect(h.receive(b.subarray(0, 11))).toEqual({ send: [] });
    const r = h.receive(b.subarray(11));
    expect(r.send).toEqual([]);
    expect(r.error).toMatch(/^not an RFB client \(it sent ".*"\)$/s);
    expect(r.done).toBeUndefined();
    // Over: anything more is refused, nothing sent.
    expect(h.receive(ascii('RFB 003.008\n'))).toEqual({ send: [], error: 'the handshake is over' });
  });

  it('a bad version in a chunk with more bytes after it: still fails without sending', () => {
    const r = handshake().receive(ascii('HELLO WORLD!\x01\x01'));
    expect(r.send).toEqual([]);
    expect(r.error).toMatch(/not an RFB client/);
  });
});

describe('RfbHandshake: every version x security x password', () => {
  for (const v of VERSIONS) {
    const version = ascii(versionString(v));

    it(`${v}, no password: None, exact bytes`, () => {
      const h = handshake();
      expect(h.securityType).toBe(1);
      const r1 = h.receive(version);
      expect(r1.error).toBeUndefined();
      if (v === '3.3') {
        // 3.3: the server names the type (u32); no SecurityResult after None.
        expect(join(r1.send)).toEqual(u32(1));
      } else {
        expect(join(r1.send)).toEqual([1, 1]);
        const r2 = h.receive(Uint8Array.of(1));
        // 3.7: no SecurityResult after None; 3.8: always one.
        expect(join(r2.send)).toEqual(v === '3.8' ? u32(0) : []);
        expect(r2.done).toBeUndefined();
        expect(r2.error).toBeUndefined();
      }
      const r3 = h.receive(Uint8Array.of(1));
      expect(r3.send).toEqual([]);
      expect(r3.done).toEqual({ version: v, shared: true, rest: new Uint8Array(0) });
      expect(h.receive(Uint8Array.of(3)).error).toBe('the handshake is over');
    });

    it(`${v}, password, right: challenge, SecurityResult OK, exact bytes`, () => {
      const h = handshake(PASSWORD);
      expect(h.securityType).toBe(2);
      const r1 = h.receive(version);
      if (v === '3.3') {
        expect(join(r1.send)).toEqual([...u32(2), ...CHALLENGE]);
      } else {
        expect(join(r1.send)).toEqual([1, 2]);
        const r2 = h.receive(Uint8Array.of(2));
        expect(join(r2.send)).toEqual([...CHALLENGE]);
      }
      const r3 = h.receive(vncAuthResponse(PASSWORD, CHALLENGE));
      expect(join(r3.send)).toEqual(u32(0));
      expect(r3.done).toBeUndefined();
      const r4 = h.receive(Uint8Array.of(0));
      expect(r4.done).toEqual({ version: v, shared: false, rest: new Uint8Array(0) });
    });

    it(`${v}, password, wrong: SecurityResult failed${v === '3.8' ? ' with the reason' : ', no reason'}`, () => {
      const h = handshake(PASSWORD);
      h.receive(version);
      if (v !== '3.3') h.receive(Uint8Array.of(2));
      const r = h.receive(vncAuthResponse('sesame!', CHALLENGE));
      expect(r.error).toBe('VNC authentication failed (wrong password)');
      expect(join(r.send)).toEqual(v === '3.8' ? [...u32(1), ...reason('VNC authentication failed (wrong password)')] : u32(1));
      expect(r.done).toBeUndefined();
      // ClientInit after a failure is not taken.
      expect(h.receive(Uint8Array.of(1))).toEqual({ send: [], error: 'the handshake is over' });
    });

    it(`${v}, password, a response of zeros and a response for another challenge: failed`, () => {
      for (const response of [new Uint8Array(16), vncAuthResponse(PASSWORD, new Uint8Array(16))]) {
        const h = handshake(PASSWORD);
        h.receive(version);
        if (v !== '3.3') h.receive(Uint8Array.of(2));
        expect(h.receive(response).error).toMatch(/wrong password/);
      }
    });
  }

  for (const v of ['3.7', '3.8'] as const) {
    it.each([
      ['None when VNC auth is required', PASSWORD, 1],
      ['VNC auth when None is offered', undefined, 2],
      ['type 0', undefined, 0],
      ['type 255', PASSWORD, 255],
    ])(`${v}: choosing %s fails${v === '3.8' ? ' with a reason' : ' without a reason'}`, (_name, password, type) => {
      const h = handshake(password);
      h.receive(ascii(versionString(v)));
      const offered = password === undefined ? 1 : 2;
      const r = h.receive(Uint8Array.of(type));
      const why = `security type ${type} was not offered (offered ${offered})`;
      expect(r.error).toBe(why);
      expect(join(r.send)).toEqual(v === '3.8' ? [...u32(1), ...reason(why)] : u32(1));
    });
  }

  it('an empty password means no authentication', () => {
    const h = new RfbHandshake({ password: '' });
    expect(h.securityType).toBe(1);
    expect(join(h.receive(ascii('RFB 003.003\n')).send)).toEqual(u32(1));
  });

  it('only the first 8 bytes of the password count (as in every VNC server)', () => {
    const h = handshake('password-and-more');
    h.receive(ascii('RFB 003.008\n'));
    h.receive(Uint8Array.of(2));
    expect(join(h.receive(vncAuthResponse('password', CHALLENGE)).send)).toEqual(u32(0));
  });

  it('uses a fresh random challenge by default', () => {
    const a = new RfbHandshake({ password: 'x' });
    const b = new RfbHandshake({ password: 'x' });
    const ca = a.receive(ascii('RFB 003.003\n')).send[1]!;
    const cb = b.receive(ascii('RFB 003.003\n')).send[1]!;
    expect(ca.length).toBe(16);
    expect(cb.length).toBe(16);
    expect([...ca]).not.toEqual([...cb]);
  });
});

describe('RfbHandshake: how the bytes arrive', () => {
  const extra = Uint8Array.of(3, 0, 0, 0, 0, 0, 0, 10, 0, 10, 2, 0);

  for (const v of VERSIONS) {
    for (const password of [undefined, PASSWORD]) {
      const clientBytes = (): Uint8Array[] => {
        const parts = [ascii(versionString(v))];
        if (v !== '3.3') parts.push(Uint8Array.of(password === undefined ? 1 : 2));
        if (password !== undefined) parts.push(vncAuthResponse(password, CHALLENGE));
        parts.push(Uint8Array.of(1));
        return parts;
      };
      const expected = (): number[] => {
        const out: number[] = [];
        if (v === '3.3') out.push(...u32(password === undefined ? 1 : 2));
        else out.push(1, password === undefined ? 1 : 2);
        if (password !== undefined) out.push(...CHALLENGE, ...u32(0));
        else if (v === '3.8') out.push(...u32(0));
        return out;
      };

      it(`${v} ${password ? 'VNC auth' : 'None'}: everything pipelined in one chunk, with messages after ClientInit as rest`, () => {
        const chunk = Uint8Array.from([...join(clientBytes()), ...extra]);
        const r = handshake(password).receive(chunk);
        expect(r.error).toBeUndefined();
        expect(join(r.send)).toEqual(expected());
        expect(r.done?.version).toBe(v);
        expect(r.done?.shared).toBe(true);
        expect([...r.done!.rest]).toEqual([...extra]);
        // rest is a copy that stays valid.
        chunk.fill(0);
        expect([...r.done!.rest]).toEqual([...extra]);
      });

      it(`${v} ${password ? 'VNC auth' : 'None'}: one byte at a time gives the same bytes`, () => {
        const h = handshake(password);
        const all = [...join(clientBytes()), ...extra];
        const sent: number[] = [];
        let done: ReturnType<RfbHandshake['receive']>['done'];
        for (let i = 0; i < all.length && !done; i++) {
          const r = h.receive(Uint8Array.of(all[i]!));
          expect(r.error).toBeUndefined();
          sent.push(...join(r.send));
          done = r.done;
          if (done) expect([...done.rest]).toEqual([]);
        }
        expect(sent).toEqual(expected());
        expect(done).toEqual({ version: v, shared: true, rest: new Uint8Array(0) });
      });
    }
  }

  it('ClientInit shared flag: 0 is exclusive, any non-zero is shared', () => {
    for (const [flag, shared] of [
      [0, false],
      [1, true],
      [0x80, true],
      [0xff, true],
    ] as const) {
      const r = handshake().receive(Uint8Array.from([...ascii('RFB 003.008\n'), 1, flag]));
      expect(r.done?.shared, `flag ${flag}`).toBe(shared);
    }
  });

  it('a wrong password pipelined with ClientInit and messages: fails, the rest is not taken', () => {
    const r = handshake(PASSWORD).receive(Uint8Array.from([...ascii('RFB 003.008\n'), 2, ...new Uint8Array(16), 1, ...extra]));
    expect(r.error).toMatch(/wrong password/);
    expect(r.done).toBeUndefined();
    expect(join(r.send)).toEqual([1, 2, ...CHALLENGE, ...u32(1), ...reason('VNC authentication failed (wrong password)')]);
  });

  it('the version split over chunks (11 + 1 bytes, then 1 + 11)', () => {
    const h = handshake();
    expect(h.receive(ascii('RFB 003.00'))).toEqual({ send: [] });
    expect(join(h.receive(ascii('8\n')).send)).toEqual([1, 1]);
  });
});

/**
 * The server side of an RFB handshake, pure (no sockets): version exchange (3.3, 3.7, 3.8),
 * security (None, or VNC authentication when a password is set) and ClientInit. Feed it what the
 * client sends; it answers with bytes to send, and ends with the client's shared flag or with
 * the reason it failed (after sending the client what the version allows it to be told).
 *
 * What each version sends (RFC 6143 7.1-7.3, and the 3.3/3.7 differences of its appendix):
 * - 3.3: the server picks the security type (u32); no SecurityResult after None.
 * - 3.7: the server offers types (u8 count, u8 types); no SecurityResult after None; a failed
 *   SecurityResult has no reason string.
 * - 3.8: as 3.7, but a SecurityResult always follows, and a failure carries a reason string.
 */
import { randomBytes } from 'node:crypto';
import { vncAuthCheck } from './des.js';
import { type RfbVersion, negotiateVersion, reasonBytes, SECURITY_NONE, SECURITY_VNC_AUTH, VERSION_BYTES, versionString } from './protocol.js';

export interface HandshakeOptions {
  /** Requires VNC authentication with this password (only its first 8 bytes count, as in every VNC server). */
  readonly password?: string | undefined;
  /** The challenge's source (tests make it predictable). */
  readonly random?: (n: number) => Uint8Array;
}

export interface HandshakeResult {
  /** Bytes to send to the client, in order. */
  readonly send: Uint8Array[];
  /** Set once ClientInit arrived: the session starts (with `rest`, bytes after ClientInit). */
  readonly done?: { readonly version: RfbVersion; readonly shared: boolean; readonly rest: Uint8Array };
  /** Set when the handshake failed: send `send`, then close. */
  readonly error?: string;
}

type State = 'version' | 'securityChoice' | 'authResponse' | 'clientInit' | 'done' | 'failed';

const u32 = (v: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v);
  return b;
};

export class RfbHandshake {
  private state: State = 'version';
  private buf: Uint8Array = new Uint8Array(0);
  private version: RfbVersion = '3.8';
  private challenge: Uint8Array = new Uint8Array(0);
  private readonly password: string | undefined;
  private readonly random: (n: number) => Uint8Array;

  constructor(opts: HandshakeOptions = {}) {
    this.password = opts.password === '' ? undefined : opts.password;
    this.random = opts.random ?? ((n) => new Uint8Array(randomBytes(n)));
  }

  /** What the server sends first: its highest version. */
  greeting(): Uint8Array {
    return new TextEncoder().encode(versionString('3.8'));
  }

  get securityType(): number {
    return this.password === undefined ? SECURITY_NONE : SECURITY_VNC_AUTH;
  }

  receive(data: Uint8Array): HandshakeResult {
    if (this.state === 'done' || this.state === 'failed') return { send: [], error: 'the handshake is over' };
    const joined = new Uint8Array(this.buf.length + data.length);
    joined.set(this.buf);
    joined.set(data, this.buf.length);
    this.buf = joined;
    const send: Uint8Array[] = [];
    for (;;) {
      const r = this.step(send);
      if (r === 'more') return { send };
      if (typeof r === 'object') return { send, ...r };
    }
  }

  private take(n: number): Uint8Array | undefined {
    if (this.buf.length < n) return undefined;
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  private fail(send: Uint8Array[], why: string, result: boolean): { error: string } {
    this.state = 'failed';
    if (result) {
      // 3.3 and 3.7 send a bare failure; 3.8 adds the reason.
      send.push(u32(1));
      if (this.version === '3.8') send.push(reasonBytes(why));
    }
    return { error: why };
  }

  /** One step: 'more' (wait for bytes), 'next' (go on), or the end. */
  private step(send: Uint8Array[]): 'more' | 'next' | { done: NonNullable<HandshakeResult['done']> } | { error: string } {
    switch (this.state) {
      case 'version': {
        const b = this.take(VERSION_BYTES);
        if (!b) return 'more';
        const text = String.fromCharCode(...b);
        const v = negotiateVersion(text);
        if (!v) {
          this.state = 'failed';
          return { error: `not an RFB client (it sent ${JSON.stringify(text)})` };
        }
        this.version = v;
        if (v === '3.3') {
          send.push(u32(this.securityType));
          if (this.securityType === SECURITY_VNC_AUTH) return this.sendChallenge(send);
          this.state = 'clientInit';
          return 'next';
        }
        send.push(Uint8Array.of(1, this.securityType));
        this.state = 'securityChoice';
        return 'next';
      }
      case 'securityChoice': {
        const b = this.take(1);
        if (!b) return 'more';
        if (b[0] !== this.securityType) return this.fail(send, `security type ${b[0]} was not offered (offered ${this.securityType})`, true);
        if (this.securityType === SECURITY_VNC_AUTH) return this.sendChallenge(send);
        if (this.version === '3.8') send.push(u32(0));
        this.state = 'clientInit';
        return 'next';
      }
      case 'authResponse': {
        const b = this.take(16);
        if (!b) return 'more';
        if (!vncAuthCheck(this.password!, this.challenge, b)) return this.fail(send, 'VNC authentication failed (wrong password)', true);
        send.push(u32(0));
        this.state = 'clientInit';
        return 'next';
      }
      case 'clientInit': {
        const b = this.take(1);
        if (!b) return 'more';
        this.state = 'done';
        return { done: { version: this.version, shared: b[0] !== 0, rest: this.buf.slice() } };
      }
      case 'done':
      case 'failed':
        return { error: 'the handshake is over' };
    }
  }

  private sendChallenge(send: Uint8Array[]): 'next' {
    this.challenge = this.random(16);
    send.push(this.challenge);
    this.state = 'authResponse';
    return 'next';
  }
}

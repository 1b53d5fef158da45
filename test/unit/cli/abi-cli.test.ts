/**
 * `vdispl abi decode|encode`: good input of every kind (the C-made fixtures, as one stream),
 * and bad input — odd and non-hex digits, a short packet, a truncated xsmsg, a payload length
 * over 4096, an unknown kind, a missing kind, malformed JSON, unknown keys, wrong types and
 * out-of-range values — each giving exactly one stderr line and exit status 2.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ABI_KIND_NAMES } from '../../../src/abi/json.js';
import { type CliIo, main } from '../../../src/cli/main.js';
import { loadPackets } from '../../support/abi-fixtures.js';

const BIN = fileURLToPath(new URL('../../../bin/vdispl.js', import.meta.url));

async function run(argv: string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = {
    readStdin: () => Promise.resolve(stdin),
    stdout: (t) => {
      out += t;
    },
    stderr: (t) => {
      err += t;
    },
  };
  const code = await main(argv, io);
  return { code, out, err };
}

function expectUsageError(r: { code: number; err: string }, pattern: RegExp): void {
  expect(r.code).toBe(2);
  const lines = r.err.split('\n').filter((l) => l !== '');
  expect(lines, r.err).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}

describe('vdispl abi round-trips C-made packets of every kind', () => {
  it.each(ABI_KIND_NAMES)('%s: decode a stream of all vectors, then encode it back', async (kind) => {
    const packets = loadPackets(kind);
    // One stream, packets back to back, with whitespace sprinkled in (it is ignored).
    const stream = packets
      .map((p, i) =>
        i % 3 === 0 ? `${p.hex}\n` : i % 3 === 1 ? `${p.hex.slice(0, 6)} ${p.hex.slice(6)}` : p.hex,
      )
      .join('');
    const dec = await run(['abi', 'decode', kind], stream);
    expect(dec.err).toBe('');
    expect(dec.code).toBe(0);
    const lines = dec.out.trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual(packets.map((p) => p.fields));

    const clean = packets.filter((p) => !p.fields.reserved_nonzero);
    const enc = await run(['abi', 'encode', kind], clean.map((p) => JSON.stringify(p.fields)).join('\n'));
    expect(enc.code).toBe(0);
    expect(enc.out.trimEnd().split('\n')).toEqual(clean.map((p) => p.hex));
  });
});

describe('vdispl abi output format', () => {
  it('prints C field names, payload fields at the top level, u64 as decimal strings', async () => {
    const r = await run(
      ['abi', 'encode', 'req'],
      '{"id":7,"operation":16,"dbuf_cookie":"9223372036854775808","width":1920,"height":1080,"bpp":32,"buffer_sz":8294400,"flags":1,"gref_directory":8,"data_ofs":0}\n',
    );
    expect(r.code).toBe(0);
    const d = await run(['abi', 'decode', 'req'], r.out);
    expect(d.out).toBe(
      '{"id":7,"operation":16,"dbuf_cookie":"9223372036854775808","width":1920,"height":1080,"bpp":32,"buffer_sz":8294400,"flags":1,"gref_directory":8,"data_ofs":0}\n',
    );
  });

  it('reports non-zero reserved bytes and carries unknown operations as raw op bytes', async () => {
    const dirty = `0100150700000000${'2a00000000000000'}${'00'.repeat(47)}01`;
    const d = await run(['abi', 'decode', 'req'], dirty);
    expect(JSON.parse(d.out)).toEqual({ id: 1, operation: 0x15, fb_cookie: '42', reserved_nonzero: true });
    const unknown = `0200990000000000${'ab'.repeat(56)}`;
    const u = await run(['abi', 'decode', 'req'], unknown);
    expect(JSON.parse(u.out)).toEqual({ id: 2, operation: 0x99, op: 'ab'.repeat(56) });
    const back = await run(['abi', 'encode', 'req'], u.out);
    expect(back.out.trim()).toBe(unknown);
  });

  it('xsmsg payloads are split at every NUL and len is computed when absent', async () => {
    const r = await run(
      ['abi', 'encode', 'xsmsg'],
      '{"type":11,"req_id":5,"tx_id":0,"payload":["/local/domain/1/name","guest"]}',
    );
    expect(r.code).toBe(0);
    const d = await run(['abi', 'decode', 'xsmsg'], r.out);
    expect(JSON.parse(d.out)).toEqual({
      type: 11,
      req_id: 5,
      tx_id: 0,
      len: 26,
      payload: ['/local/domain/1/name', 'guest'],
    });
    const read = await run(['abi', 'encode', 'xsmsg'], '{"type":2,"payload":["path",""]}');
    expect(read.out.trim()).toBe(`02000000000000000000000005000000${Buffer.from('path\0').toString('hex')}`);
  });

  it('handles empty input and several packets', async () => {
    expect(await run(['abi', 'decode', 'gntentry'], '')).toEqual({ code: 0, out: '', err: '' });
    const r = await run(['abi', 'decode', 'gntentry'], '0100010002000000 0500020003000000');
    expect(r.out).toBe('{"flags":1,"domid":1,"frame":2}\n{"flags":5,"domid":2,"frame":3}\n');
  });
});

describe('vdispl abi bad input: one line on stderr, exit 2', () => {
  it.each([
    ['odd number of hex digits', ['decode', 'req'], 'abc', /odd number of digits/],
    ['non-hex character', ['decode', 'resp'], '0g', /invalid character "g"/],
    ['short packet', ['decode', 'evt'], '00'.repeat(63), /short packet: need 64 bytes, got 63/],
    ['short second packet', ['decode', 'sring'], '00'.repeat(64 + 10), /packet 2 at byte 64: short packet/],
    ['truncated xsmsg header', ['decode', 'xsmsg'], '0100000000', /need 16 bytes/],
    [
      'truncated xsmsg payload',
      ['decode', 'xsmsg'],
      '02000000000000000000000005000000aabb',
      /need 21 bytes, got 18/,
    ],
    [
      'xsmsg payload over 4096',
      ['decode', 'xsmsg'],
      '020000000000000000000000011000000000',
      /4097 exceeds XENSTORE_PAYLOAD_MAX 4096/,
    ],
    ['short page directory', ['decode', 'pgdir'], '00'.repeat(4095), /need 4096 bytes/],
    ['malformed JSON', ['encode', 'req'], '{"id":1,', /line 1: malformed JSON/],
    ['not an object', ['encode', 'gntentry'], '[1,2]', /expected a JSON object/],
    ['missing operation', ['encode', 'req'], '{"id":1}', /missing key "operation"/],
    ['unknown key', ['encode', 'req'], '{"id":1,"operation":21,"fb_cooky":"1"}', /unknown key "fb_cooky"/],
    [
      'u16 out of range',
      ['encode', 'req'],
      '{"id":65536,"operation":21}',
      /id: 65536 is not an integer in \[0, 65535\]/,
    ],
    ['u32 out of range', ['encode', 'gntentry'], '{"flags":0,"domid":0,"frame":4294967296}', /frame/],
    ['negative value', ['encode', 'evtpage'], '{"in_cons":-1,"in_prod":0}', /in_cons/],
    [
      'u64 out of range',
      ['encode', 'req'],
      '{"id":1,"operation":21,"fb_cookie":"18446744073709551616"}',
      /fb_cookie.*not a u64/,
    ],
    [
      'u64 as unsafe number',
      ['encode', 'evt'],
      '{"id":1,"type":0,"fb_cookie":18446744073709551615}',
      /not a u64/,
    ],
    ['status beyond s32', ['encode', 'resp'], '{"id":1,"operation":21,"status":-2147483649}', /status/],
    ['fractional value', ['encode', 'sring'], '{"req_prod":1.5}', /req_prod/],
    ['string for a number', ['encode', 'gntentry'], '{"flags":"1"}', /flags: expected a number/],
    [
      'xsmsg len mismatch',
      ['encode', 'xsmsg'],
      '{"type":2,"len":3,"payload":["a",""]}',
      /len: 3 does not match the payload's 2 bytes/,
    ],
    [
      'xsmsg payload too big',
      ['encode', 'xsmsg'],
      `{"type":11,"payload":["${'a'.repeat(4097)}"]}`,
      /4097 exceeds/,
    ],
    [
      'xsmsg non-byte character',
      ['encode', 'xsmsg'],
      '{"type":2,"payload":["\\u0100"]}',
      /U\+0100 is not a byte/,
    ],
    ['op of the wrong size', ['encode', 'req'], '{"id":1,"operation":1,"op":"00"}', /op: expected 56 bytes/],
    ['too many grefs', ['encode', 'pgdir'], `{"gref":[${Array(1024).fill(1).join(',')}]}`, /at most 1023/],
    [
      'error on a later line',
      ['encode', 'gntentry'],
      '{"flags":1}\n\n{"flags":1,"bogus":2}',
      /line 3: unknown key "bogus"/,
    ],
  ])('%s', async (_what, args, stdin, pattern) => {
    const r = await run(['abi', ...args], stdin);
    expectUsageError(r, pattern);
  });

  it('unknown kind', async () => {
    expectUsageError(await run(['abi', 'decode', 'bogus']), /unknown kind "bogus" \(kinds: req, resp/);
  });

  it('missing kind and unknown command are usage errors', async () => {
    expect((await run(['abi', 'decode'])).code).toBe(2);
    expect((await run(['frobnicate'])).code).toBe(2);
  });

  it('packets decoded before the error are still printed', async () => {
    const r = await run(['abi', 'decode', 'gntentry'], '0100010002000000 01');
    expect(r.out).toBe('{"flags":1,"domid":1,"frame":2}\n');
    expect(r.code).toBe(2);
  });
});

describe('the vdispl bin (as npx runs it)', () => {
  const exec = promisify(execFile);

  it('prints help and exits 0', async () => {
    const { stdout } = await exec(process.execPath, [BIN, '--help']);
    expect(stdout).toMatch(/Usage: vdispl/);
    expect(stdout).toMatch(/abi/);
  });

  it('decodes stdin and fails with status 2 on bad input', async () => {
    const child = execFile(process.execPath, [BIN, 'abi', 'decode', 'gntentry']);
    child.stdin!.end('0100010002000000');
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
    });
    const code = await new Promise<number | null>((res) => child.on('close', res));
    expect(code).toBe(0);
    expect(out).toBe('{"flags":1,"domid":1,"frame":2}\n');

    const bad = execFile(process.execPath, [BIN, 'abi', 'decode', 'gntentry']);
    bad.stdin!.end('xyz');
    let err = '';
    bad.stderr!.on('data', (d) => {
      err += d;
    });
    const badCode = await new Promise<number | null>((res) => bad.on('close', res));
    expect(badCode).toBe(2);
    expect(err.trim().split('\n')).toHaveLength(1);
  });
});

/**
 * The vncpasswd format (src/present/rfb/des.ts) judged by the real `vncpasswd -f` (Debian package
 * tigervnc-tools): each password is written to its stdin as one line, and the 8 bytes it prints
 * must be obfuscateVncPassword's, byte for byte; deobfuscateVncPassword of them must give the
 * password back, cut to 8 bytes. The passwords: 1 character, exactly 8, more than 8, empty,
 * punctuation and spaces, and non-ASCII (UTF-8, as a UTF-8 terminal would hand it over).
 * Needs vncpasswd (.ci/run installs it): a missing tool is a failure, never a skip.
 */
import { execFile } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { deobfuscateVncPassword, obfuscateVncPassword } from '../../src/present/rfb/des.js';
import { onPath } from '../support/on-path.js';

const TOOL = 'vncpasswd';

const PASSWORDS: readonly (readonly [string, string])[] = [
  ['1 character', 'a'],
  ['7 characters', 'secret1'],
  ['exactly 8', 'abcdefgh'],
  ['more than 8', 'abcdefghijklmnop'],
  ['empty', ''],
  ['punctuation and a space', '!@#$ %^&'],
  ['punctuation, more than 8', '~`"\'\\|{}[]<>?,./;:'],
  ['non-ASCII (UTF-8)', 'pässwörd'],
  ['high bytes only', 'éàü'],
];


/** Runs `vncpasswd -f` with `password` and a newline on stdin; resolves with the bytes it printed. */
function vncpasswdFilter(password: string): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const child = execFile(TOOL, ['-f'], { timeout: 20_000, encoding: 'buffer' }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`${TOOL} -f: ${err.message}\n${stderr.toString('utf8')}`));
        return;
      }
      resolve(new Uint8Array(stdout));
    });
    child.stdin?.end(Buffer.from(`${password}\n`, 'utf8'));
  });
}

/** The password as the tool keeps it: its first 8 UTF-8 bytes, decoded again. */
function cut8(password: string): string {
  return new TextDecoder().decode(new TextEncoder().encode(password).subarray(0, 8));
}

beforeAll(async () => {
  if (!(await onPath(TOOL))) {
    throw new Error(`missing ${TOOL}: install the Debian package tigervnc-tools (.ci/run does)`);
  }
});

describe('vncpasswd -f agrees with obfuscateVncPassword', () => {
  it.each(PASSWORDS)('%s: %j', async (_name, password) => {
    const real = await vncpasswdFilter(password);
    const ours = obfuscateVncPassword(password);
    const where = `vncpasswd -f printed ${Buffer.from(real).toString('hex')}, obfuscateVncPassword gave ${Buffer.from(ours).toString('hex')}`;
    expect(real.length, where).toBe(8);
    expect(Buffer.from(ours).toString('hex'), where).toBe(Buffer.from(real).toString('hex'));
    expect(deobfuscateVncPassword(real)).toBe(cut8(password));
  });
});

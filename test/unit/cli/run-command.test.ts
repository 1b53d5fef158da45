/**
 * `vdispl demo` and `vdispl run` as a user runs them (a child process): a demo run with --frames
 * exits 0 with every resource released and writes exact PNG snapshots; bad configs, missing or
 * broken guest programs give one clear line and a non-zero exit; a guest program that throws is
 * reported with its stack while the rest shuts down cleanly.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decode } from 'fast-png';
import { createServer, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { readVncPassword, UsageError } from '../../../src/cli/run-command.js';
import { obfuscateVncPassword } from '../../../src/present/rfb/des.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'bin/vdispl.js');
const FIX = join(ROOT, 'test/fixtures/guests');

function vdispl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('vdispl demo / run', () => {
  it('demo --headless --frames 20 --snapshot exits 0, releases everything, and writes exact PNGs of both connectors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vdispl-snap-'));
    const r = await vdispl(['demo', '--headless', '--frames', '20', '--snapshot', dir]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('every grant, mapping, page and port released');
    const big = decode(readFileSync(join(dir, 'demo_DP-1.png')));
    const small = decode(readFileSync(join(dir, 'demo_DP-2.png')));
    expect([big.width, big.height, big.channels]).toEqual([1920, 1080, 4]);
    expect([small.width, small.height]).toEqual([1024, 768]);
    // The test card's first bar is white and its last black, in both formats (RGB565 widens exactly).
    const px = (img: typeof big, x: number, y: number): number[] => Array.from(img.data.slice((y * img.width + x) * 4, (y * img.width + x) * 4 + 4));
    expect(px(big, 10, 10)).toEqual([255, 255, 255, 255]);
    expect(px(small, 10, 10)).toEqual([255, 255, 255, 255]);
    expect(px(big, 1910, 10)).toEqual([0, 0, 0, 255]);
    expect(px(small, 1015, 10)).toEqual([0, 0, 0, 255]);
  }, 90_000);

  it('demo --be-alloc --json --frames 5 prints JSON figures and exits 0', async () => {
    const r = await vdispl(['demo', '--headless', '--be-alloc', '--json', '--frames', '5']);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => l.startsWith('{'));
    expect(lines.length).toBeGreaterThan(0);
    const last = JSON.parse(lines.at(-1)!) as { connectors: { name: string; flips: number }[] };
    expect(last.connectors.map((c) => c.name)).toEqual(['demo/DP-1', 'demo/DP-2']);
    expect(last.connectors.every((c) => c.flips >= 5)).toBe(true);
  }, 90_000);

  it.each([
    [['run', '--guest', 'x.ts'], /^vdispl run: run needs --config FILE and --guest MODULE\n$/],
    [['run', '--config', 'nope.cfg', '--guest', 'x.ts'], /^vdispl run: cannot read the config nope\.cfg: no such file\n$/],
    [['run', '--config', 'test/fixtures/guests/bad-spec.cfg', '--guest', 'x.ts'], /^vdispl run: .*vdispl\[0\].*\n$/],
    [['run', '--config', 'test/fixtures/guests/two-devices.cfg', '--guest', 'examples/hello-display.ts'], /^vdispl: the config has 2 vdispl devices; vdispl run shows one per guest\n$/],
    [['run', '--config', 'examples/hello.cfg', '--guest', 'missing.ts'], /^vdispl run: guest program missing\.ts: no such file\n$/],
    [['demo', '--frames', '0'], /^vdispl demo: --frames must be an integer from 1 to 1000000000, not "0"\n$/],
    [['demo', '--port', '70000'], /^vdispl demo: --port must be an integer from 0 to 65535, not "70000"\n$/],
    [['demo', '--vnc-port', '6000'], /^vdispl demo: --vnc-port needs --vnc\n$/],
    [['demo', '--vnc-password-file', 'pw'], /^vdispl demo: --vnc-password-file needs --vnc\n$/],
    // Two connectors: the last port must exist too.
    [['demo', '--vnc', '--vnc-port', '65535'], /^vdispl demo: --vnc-port must be an integer from 0 to 65534, not "65535"\n$/],
    [['demo', '--vnc', '--vnc-port', 'x'], /^vdispl demo: --vnc-port must be an integer from 0 to 65534, not "x"\n$/],
    [['demo', '--vnc', '--vnc-password-file', 'nope.txt'], /^vdispl demo: cannot read the VNC password file nope\.txt: no such file\n$/],
  ])('%j: one line on stderr and exit 2', async (args, message) => {
    const r = await vdispl(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  }, 60_000);

  it('a guest program that throws is reported with its stack; everything else shuts down cleanly (exit 1)', async () => {
    const r = await vdispl(['run', '--config', 'examples/hello.cfg', '--guest', join(FIX, 'throws.ts')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('vdispl: the guest program threw:');
    expect(r.stderr).toContain('Error: guest program failed on purpose');
    expect(r.stderr).toMatch(/at main \(.*throws\.ts/);
    expect(r.stdout).toContain('every grant, mapping, page and port released');
  }, 60_000);

  it('demo --vnc --vnc-port 0 prints where each connector listens, and exits 0 with everything released', async () => {
    const r = await vdispl(['demo', '--headless', '--vnc', '--vnc-port', '0', '--frames', '10']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^vnc: demo\/DP-1 on 127\.0\.0\.1:\d+ \(vncviewer 127\.0\.0\.1::\d+\)$/m);
    expect(r.stdout).toMatch(/^vnc: demo\/DP-2 on 127\.0\.0\.1:\d+ /m);
    expect(r.stdout).toContain('every grant, mapping, page and port released');
  }, 60_000);

  it('a VNC port in use is one line and exit 1', async () => {
    const busy = createServer();
    await new Promise<void>((res) => busy.listen(0, '127.0.0.1', res));
    const port = (busy.address() as AddressInfo).port;
    try {
      const r = await vdispl(['demo', '--headless', '--vnc', '--vnc-port', String(port), '--frames', '10']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^vdispl: cannot serve VNC on 127\\.0\\.0\\.1:${port}-${port + 1}: listen EADDRINUSE.*\\n$`));
    } finally {
      busy.close();
    }
  }, 60_000);

  it('a guest program that does not load is one line and exit 1', async () => {
    const broken = join(mkdtempSync(join(tmpdir(), 'vdispl-guest-')), 'syntax-error.ts');
    writeFileSync(broken, 'export default async function main( {\n');
    const r = await vdispl(['run', '--config', 'examples/hello.cfg', '--guest', broken]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^vdispl: cannot load the guest program file:.*syntax-error\.ts: .+\n$/);
  }, 60_000);
});

describe('readVncPassword', () => {
  const file = (content: string | Uint8Array): string => {
    const f = join(mkdtempSync(join(tmpdir(), 'vdispl-pw-')), 'pw');
    writeFileSync(f, content);
    return f;
  };
  it('reads the first line of a text file', () => {
    expect(readVncPassword(file('s3cret word\nignored\n'))).toBe('s3cret word');
    expect(readVncPassword(file('crlf\r\n'))).toBe('crlf');
    expect(readVncPassword(file('eightchr'))).toBe('eightchr');
  });
  it('reads a vncpasswd file (8 bytes, or 16 with a view-only password)', () => {
    expect(readVncPassword(file(obfuscateVncPassword('secret1')))).toBe('secret1');
    // The real `echo secret1 | vncpasswd -f` output.
    expect(readVncPassword(file(Uint8Array.of(0xb4, 0xab, 0x9e, 0x8c, 0x4e, 0x00, 0x56, 0x07)))).toBe('secret1');
    const two = new Uint8Array(16);
    two.set(obfuscateVncPassword('full'));
    two.set(obfuscateVncPassword('view'), 8);
    expect(readVncPassword(file(two))).toBe('full');
  });
  it('refuses an empty file', () => {
    expect(() => readVncPassword(file(''))).toThrow(UsageError);
    expect(() => readVncPassword(file('\nsecond'))).toThrow(/is empty/);
  });
});

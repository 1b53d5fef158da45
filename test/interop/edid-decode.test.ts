/**
 * The backend's EDIDs (src/back/edid.ts) judged by the real `edid-decode --check` (Debian package
 * edid-decode): for each size — tiny, common, the largest that fit an 18-byte detailed timing, and
 * those that need the DisplayID extension block, at 60 Hz and a few other refresh rates — the
 * EDID is written to a temporary file, edid-decode must exit 0, print "EDID conformity: PASS",
 * and show a timing of exactly that size (in the DTD or, when extended, the DisplayID type I
 * timing marked preferred). On failure the assertion message carries edid-decode's whole output.
 * Needs edid-decode (.ci/run installs it): a missing tool is a failure, never a skip.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEdid, type EdidOptions } from '../../src/back/edid.js';
import { onPath } from '../support/on-path.js';

const TOOL = 'edid-decode';

/** [width, height, refresh Hz or undefined for the default 60]. */
const CASES: readonly (readonly [number, number, number | undefined])[] = [
  [1, 1, undefined],
  [640, 480, undefined],
  [1024, 768, undefined],
  [1366, 768, undefined],
  [1920, 1080, undefined],
  [3840, 2160, undefined],
  [4095, 2047, undefined],
  [4096, 2160, undefined],
  [8192, 8192, undefined],
  [1, 8192, undefined],
  [8192, 1, undefined],
  [4095, 4095, undefined],
  [333, 777, undefined],
  [1023, 1, undefined],
  [7, 4093, undefined],
  [5001, 3, undefined],
  [1920, 1080, 59.94],
  [2560, 1440, 144],
  [3840, 2160, 120],
  [8192, 8192, 240],
  [640, 480, 1],
  [1, 1, 240],
];

const NAMED = CASES.map(([width, height, refreshHz]) => ({
  name: `${width}x${height} @ ${refreshHz === undefined ? '60 (default)' : String(refreshHz)} Hz`,
  width,
  height,
  refreshHz,
}));


interface Run {
  readonly code: number;
  readonly output: string;
}

/** Runs `edid-decode --check file`; resolves with its exit status and stdout+stderr (never rejects on a non-zero status). */
function edidDecodeCheck(file: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(TOOL, ['--check', file], { timeout: 20_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(new Error(`${TOOL} --check ${file}: ${err.message}\n${stderr}`));
        return;
      }
      resolve({ code: err ? (err.code as number) : 0, output: `${stdout}${stderr}` });
    });
  });
}

let dir: string;

beforeAll(async () => {
  if (!(await onPath(TOOL))) {
    throw new Error(`missing ${TOOL}: install the Debian package edid-decode (.ci/run does)`);
  }
  dir = await mkdtemp(path.join(tmpdir(), 'vdispl-edid-'));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('edid-decode --check accepts the backend EDID', () => {
  it.each(NAMED)('$name', async ({ width, height, refreshHz }) => {
    const opts: EdidOptions = refreshHz === undefined ? { width, height } : { width, height, refreshHz };
    const edid = buildEdid(opts);
    const file = path.join(dir, `${width}x${height}@${refreshHz ?? 60}.bin`);
    await writeFile(file, edid);
    const r = await edidDecodeCheck(file);
    const where = `edid-decode --check ${path.basename(file)} (${edid.length} bytes) said:\n${r.output}`;
    expect(r.code, where).toBe(0);
    expect(r.output, where).toContain('EDID conformity: PASS');
    // edid-decode's own reading of the mode: "DTD 1:  1920x1080 ..." in the base block, or
    // "DTD:  8192x8192 ... preferred" in the DisplayID block.
    const size = new RegExp(`^\\s+DTD[ 0-9]*:\\s+${width}x${height}\\s.*$`, 'm');
    expect(r.output, where).toMatch(size);
    if (edid.length > 128) {
      expect(r.output, where).toContain('DisplayID Extension Block');
      expect(r.output.match(size)?.[0], where).toContain('preferred');
    }
  });
});

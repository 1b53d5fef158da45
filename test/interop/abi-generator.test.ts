/**
 * Rebuilds the ABI vector generator with gcc against the installed Xen headers (Debian
 * libxen-dev) and libdrm's drm_fourcc.h, and fails if what the headers produce now differs from
 * the committed fixtures in any byte. Needs gcc, libxen-dev and libdrm-dev (.ci/run installs
 * them); a missing compiler or header is a failure, not a skip.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultOutDir, runGenerator } from '../../gen/abi-vectors/regen.js';

async function listFiles(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(path.join(dir, rel), { withFileTypes: true })) {
    const r = path.join(rel, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(dir, r)));
    else out.push(r);
  }
  return out.sort();
}

describe('ABI fixtures are what the real headers produce', () => {
  let fresh: string;
  let written: string[];

  beforeAll(async () => {
    fresh = await mkdtemp(path.join(tmpdir(), 'vdispl-abi-check-'));
    written = await runGenerator(fresh);
  }, 120_000);

  afterAll(async () => {
    await rm(fresh, { recursive: true, force: true });
  });

  it('the generator writes every fixture file', async () => {
    expect(written.length).toBeGreaterThanOrEqual(11);
    expect(await listFiles(fresh)).toEqual(await listFiles(defaultOutDir));
  });

  it('every file is byte-identical to the committed one (run `npm run gen:abi` and review the diff if not)', async () => {
    const differing: string[] = [];
    for (const rel of await listFiles(fresh)) {
      const [a, b] = await Promise.all([
        readFile(path.join(fresh, rel)),
        readFile(path.join(defaultOutDir, rel)),
      ]);
      if (!a.equals(b)) differing.push(rel);
    }
    expect(differing).toEqual([]);
  });
});

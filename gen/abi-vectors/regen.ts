// Builds gen.c against the installed Xen headers (libxen-dev) and runs it.
//
//   node --import tsx gen/abi-vectors/regen.ts [outDir]    (npm run gen:abi)
//
// outDir defaults to test/fixtures/abi in the repository root. See README.md in this directory.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

const here = path.dirname(fileURLToPath(import.meta.url));
const genSource = path.join(here, 'gen.c');
const repoRoot = path.resolve(here, '..', '..');

/** Where `npm run gen:abi` writes (the committed fixtures). */
export const defaultOutDir = path.join(repoRoot, 'test', 'fixtures', 'abi');

/** The exact compiler invocation (the generator must build warning-free). */
export const gccArgs = ['-std=gnu11', '-O1', '-Wall', '-Wextra', '-Werror', '-I/usr/include/libdrm'] as const;

function stderrOf(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'stderr' in err) {
    const { stderr } = err;
    if (typeof stderr === 'string' && stderr.trim() !== '') return stderr.trim();
    if (Buffer.isBuffer(stderr) && stderr.length > 0) return stderr.toString('utf8').trim();
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * Compiles gen.c into a fresh temporary directory, runs it with `outDir` and removes the
 * temporary directory again. Returns the written files (paths relative to `outDir`, in the
 * order the generator wrote them). Throws with gcc's or the generator's stderr on failure.
 */
export async function runGenerator(outDir: string): Promise<string[]> {
  const out = path.resolve(outDir);
  const tmp = await mkdtemp(path.join(tmpdir(), 'vdispl-abi-gen-'));
  try {
    const binary = path.join(tmp, 'gen');
    try {
      await execFileAsync('gcc', [...gccArgs, '-o', binary, genSource]);
    } catch (err) {
      throw new Error(`gcc failed to build ${genSource}:\n${stderrOf(err)}`, { cause: err });
    }
    await mkdir(out, { recursive: true });
    let stdout: string;
    try {
      ({ stdout } = await execFileAsync(binary, [out], { encoding: 'utf8', maxBuffer: 1 << 20 }));
    } catch (err) {
      throw new Error(`ABI vector generator failed:\n${stderrOf(err)}`, { cause: err });
    }
    return stdout.split('\n').filter((line) => line !== '');
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const arg = process.argv[2];
  const outDir = arg === undefined ? defaultOutDir : path.resolve(arg);
  const files = await runGenerator(outDir);
  for (const rel of files) {
    const file = path.join(outDir, rel);
    const { size } = await stat(file);
    console.log(`wrote ${path.relative(process.cwd(), file) || file} (${size} bytes)`);
  }
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  try {
    await main();
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  }
}

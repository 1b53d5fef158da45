/**
 * Starts a worker thread on an ES module that may be TypeScript. On node 20,
 * `execArgv: ['--import', 'tsx']` does not reach a worker's entry point, so a worker whose entry
 * (or the module it will load) is .ts starts from a tiny script that registers tsx's loader
 * first. Compiled JavaScript starts directly.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

const isTs = (u: string): boolean => /\.[cm]?tsx?$/.test(new URL(u).pathname);

let tsxApiHref: string | undefined;
/** tsx's ESM API entry (the `import` condition of its `./esm/api` export), as a file URL. */
function tsxApi(): string {
  if (tsxApiHref === undefined) {
    const pkgJson = createRequire(import.meta.url).resolve('tsx/package.json');
    const pkg = JSON.parse(readFileSync(pkgJson, 'utf8')) as { exports: Record<string, { import: { default: string } }> };
    tsxApiHref = new URL(pkg.exports['./esm/api']!.import.default, pathToFileURL(pkgJson)).href;
  }
  return tsxApiHref;
}

/** A worker running `entry`; registers tsx first if `entry` or any of `alsoLoads` is TypeScript. */
export function startWorker(entry: URL, options: Omit<WorkerOptions, 'eval'> = {}, alsoLoads: readonly string[] = []): Worker {
  if (!isTs(entry.href) && !alsoLoads.some(isTs)) return new Worker(entry, options);
  const boot = `import(${JSON.stringify(tsxApi())}).then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(boot, { ...options, eval: true });
}

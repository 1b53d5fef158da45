/**
 * Starts a worker thread on a TypeScript module. On node 20, `execArgv: ['--import', 'tsx']`
 * does not reach the worker's entry point ("Unknown file extension .ts"), so the worker starts
 * from a tiny script that registers tsx's loader and then imports the module.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** tsx's ESM API entry (the `import` condition of its `./esm/api` export), as a file URL. */
const tsxApi = ((): string => {
  const pkgJson = createRequire(import.meta.url).resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(pkgJson, 'utf8')) as { exports: Record<string, { import: { default: string } }> };
  return new URL(pkg.exports['./esm/api']!.import.default, pathToFileURL(pkgJson)).href;
})();

export function tsWorker(module: URL, options: Omit<WorkerOptions, 'eval'> = {}): Worker {
  const boot = `import(${JSON.stringify(tsxApi)}).then(({ register }) => { register(); return import(${JSON.stringify(module.href)}); });`;
  return new Worker(boot, { ...options, eval: true });
}

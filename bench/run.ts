/**
 * `npm run bench`: prints a table and writes bench/results.json. Every metric carries the
 * baseline it should be compared with, measured in the same run on the same machine.
 */
import { fileURLToPath } from 'node:url';
import { benchAbi } from './abi.bench.js';
import { benchDisplif } from './displif.bench.js';
import { benchHypervisor } from './hypervisor.bench.js';
import { benchViewer } from './viewer.bench.js';
import { benchVnc } from './vnc.bench.js';
import { benchXenstore } from './xenstore.bench.js';
import { machine, Report } from './harness.js';

const report = new Report();
const m = machine();
process.stdout.write(`vdispl bench on ${m.cpu} (${m.cores} cores), node ${m.node}\n\n`);
process.stdout.write('ABI and rings\n');
benchAbi(report);
process.stdout.write('\nHypervisor\n');
const baselines = await benchHypervisor(report);
process.stdout.write('\nXenStore\n');
await benchXenstore(report);
process.stdout.write('\ndisplif\n');
await benchDisplif(report, baselines);
process.stdout.write('\nViewer (Chromium)\n');
await benchViewer(report);
process.stdout.write('\nVNC\n');
await benchVnc(report);
const out = fileURLToPath(new URL('./results.json', import.meta.url));
report.write(out);
process.stdout.write(`\nwrote ${out}\n`);

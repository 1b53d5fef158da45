/**
 * A unix socket echo server in its own process: the baseline for a request/reply round trip over
 * a unix socket between two Node processes. Prints "ready" once listening.
 */
import { createServer } from 'node:net';

const path = process.argv[2]!;
const server = createServer((s) => {
  s.setNoDelay?.(true);
  s.on('data', (b) => s.write(b));
  s.on('error', () => undefined);
});
server.listen(path, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));

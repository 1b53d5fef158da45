/**
 * `vdispl xenstored --socket PATH`: the XenStore daemon in the foreground on a unix socket, whose
 * connections are dom0 as with the C daemon, until SIGINT or SIGTERM; the socket file is removed
 * on the way out.
 */
import { XenStoreDaemon } from '../xenstore/daemon.js';

export interface XenstoredOptions {
  readonly socket: string;
}

/** Serves until `stop` resolves; returns the exit status. */
export async function runXenstored(
  opts: XenstoredOptions,
  io: { stdout: (t: string) => void; stderr: (t: string) => void },
  stop: Promise<unknown>,
): Promise<number> {
  const daemon = new XenStoreDaemon({ log: (t) => io.stderr(`${t}\n`) });
  try {
    await daemon.listen(opts.socket);
  } catch (e) {
    io.stderr(`vdispl xenstored: cannot listen on ${opts.socket}: ${(e as Error).message}\n`);
    return 1;
  }
  io.stdout(`xenstored: listening on ${opts.socket} (connections are dom0); XENSTORED_PATH=${opts.socket} xenstore-ls /\n`);
  await stop;
  await daemon.close();
  return 0;
}

/** A promise that resolves on the first SIGINT or SIGTERM. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

/**
 * The `vdispl` command. Usage errors and bad input print one line on stderr and exit 2.
 */
import { Command, CommanderError } from 'commander';
import { ABI_KINDS } from '../abi/json.js';
import { abiDecode, abiEncode, parseKind } from './abi-command.js';
import { runCommand, DEFAULT_VIEWER_PORT, DEFAULT_VNC_PORT, type RunCommandOptions } from './run-command.js';
import { runXenstored, untilSignal } from './xenstored-command.js';

export interface CliIo {
  readonly readStdin: () => Promise<string>;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

export const EXIT_USAGE = 2;

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c));
  return Buffer.concat(chunks).toString('utf8');
}

export const processIo: CliIo = {
  readStdin: () => readAll(process.stdin),
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

class ExitCode extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

function buildProgram(io: CliIo): Command {
  const program = new Command('vdispl')
    .description(
      'Xen para-virtual display (displif) stack: ABI tools, emulated hypervisor, frontend, backend',
    )
    .version('0.1.0')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr, outputError: (s, write) => write(s) });

  const abi = program
    .command('abi')
    .description('decode or encode Xen ABI structures (hex <-> JSON lines)')
    .addHelpText(
      'after',
      `\nKinds:\n${Object.values(ABI_KINDS)
        .map((k) => `  ${k.name.padEnd(9)} ${k.description}`)
        .join(
          '\n',
        )}\n\nExamples:\n  echo 0100150000000000... | vdispl abi decode req\n  echo '{"id":1,"operation":21,"fb_cookie":"42"}' | vdispl abi encode req`,
    );

  const run = async (mode: 'decode' | 'encode', kind: string): Promise<void> => {
    const k = parseKind(kind);
    if ('error' in k) {
      io.stderr(`vdispl abi ${mode}: ${k.error}\n`);
      throw new ExitCode(EXIT_USAGE);
    }
    const input = await io.readStdin();
    const res = mode === 'decode' ? abiDecode(k.kind, input) : abiEncode(k.kind, input);
    if (res.out.length > 0) io.stdout(`${res.out.join('\n')}\n`);
    if (res.error !== undefined) {
      io.stderr(`vdispl abi ${mode} ${kind}: ${res.error}\n`);
      throw new ExitCode(EXIT_USAGE);
    }
  };

  abi
    .command('decode')
    .argument('<kind>', `one of: ${Object.keys(ABI_KINDS).join(', ')}`)
    .description(
      'read hex on stdin (whitespace ignored; packets back to back), print one JSON object per packet',
    )
    .action((kind: string) => run('decode', kind));
  abi
    .command('encode')
    .argument('<kind>', `one of: ${Object.keys(ABI_KINDS).join(', ')}`)
    .description('read JSON objects on stdin (one per line), print one hex packet per line')
    .action((kind: string) => run('encode', kind));

  program
    .command('xenstored')
    .description('run the XenStore daemon on a unix socket until SIGINT/SIGTERM (xenstore-utils: set XENSTORED_PATH)')
    .requiredOption('--socket <path>', 'unix socket to listen on')
    .addHelpText('after', '\nExample:\n  vdispl xenstored --socket /tmp/xs.sock &\n  XENSTORED_PATH=/tmp/xs.sock xenstore-write /vm/name demo\n  XENSTORED_PATH=/tmp/xs.sock xenstore-ls -p /')
    .action(async (o: { socket: string }) => {
      const code = await runXenstored({ socket: o.socket }, io, untilSignal());
      if (code !== 0) throw new ExitCode(code);
    });

  const session = { stdout: io.stdout, stderr: io.stderr, tty: io === processIo && process.stdout.isTTY };
  program
    .command('demo')
    .description('boot the emulated machine, a display backend and a guest drawing on two displays; show them live in a browser')
    .option('--config <file>', 'an xl.cfg-style file with a vdispl = [...] line (default: two connectors, 1920x1080 and 1024x768)')
    .option('--guest <module>', 'run this guest program instead of the built-in demo')
    .option('--port <n>', `viewer port on 127.0.0.1 (default ${DEFAULT_VIEWER_PORT}; 0 = any free port)`)
    .option('--headless', 'no viewer')
    .option('--frames <n>', 'stop after N page flips per connector')
    .option('--snapshot <dir>', 'write a PNG of each connector\'s last frame to DIR at exit')
    .option('--json', 'print the figures as JSON lines')
    .option('--be-alloc', 'backend-allocated buffers')
    .option('--vnc', `serve each connector over VNC (RFB) on 127.0.0.1, connector n on port ${DEFAULT_VNC_PORT} + n`)
    .option('--vnc-port <n>', `the first VNC port (default ${DEFAULT_VNC_PORT}; 0 = any free ports)`)
    .option('--vnc-password-file <file>', 'require VNC authentication with the password in FILE (its first line, or a vncpasswd file)')
    .action(async (o: RunCommandOptions) => {
      const code = await runCommand('demo', o, session, untilSignal());
      if (code !== 0) throw new ExitCode(code);
    });
  program
    .command('run')
    .description('run a guest program against the display stack')
    .option('--config <file>', 'an xl.cfg-style file with a vdispl = [...] line (required)')
    .option('--guest <module>', 'the guest program: an ES module whose default export is async main(ctx) (required)')
    .option('--viewer', 'serve the browser viewer')
    .option('--vnc', `serve each connector over VNC (RFB) on 127.0.0.1, connector n on port ${DEFAULT_VNC_PORT} + n (a vncpasswd = "..." in the config requires it)`)
    .option('--vnc-port <n>', `the first VNC port (default ${DEFAULT_VNC_PORT}; 0 = any free ports)`)
    .option('--vnc-password-file <file>', 'require VNC authentication with the password in FILE (its first line, or a vncpasswd file)')
    .option('--port <n>', `viewer port on 127.0.0.1 (default ${DEFAULT_VIEWER_PORT}; 0 = any free port)`)
    .option('--frames <n>', 'stop after N page flips per connector')
    .option('--snapshot <dir>', 'write a PNG of each connector\'s last frame to DIR at exit')
    .option('--json', 'print the figures as JSON lines')
    .action(async (o: RunCommandOptions) => {
      const code = await runCommand('run', o, session, untilSignal());
      if (code !== 0) throw new ExitCode(code);
    });

  return program;
}

/** Runs the CLI; resolves to the exit status. */
export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const program = buildProgram(io);
  if (argv.length === 0) {
    program.outputHelp();
    return 0;
  }
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof ExitCode) return e.code;
    if (e instanceof CommanderError) {
      // --help and --version end with exit code 0; everything else is a usage error.
      return e.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    io.stderr(`vdispl: ${(e as Error).message}\n`);
    return 1;
  }
}

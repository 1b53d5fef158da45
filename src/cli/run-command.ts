/**
 * `vdispl run` and `vdispl demo`: option checking (one clear line and exit 2 for anything
 * wrong) around runSession.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { deobfuscateVncPassword } from '../present/rfb/des.js';
import { runSession, type SessionIo } from '../run/session.js';
import { parseXlConfig, vdisplDevicesFromConfig, XlConfigError } from '../toolstack/xl-config.js';
import { parseVdisplSpec, type VdisplDeviceSpec, VdisplSpecError } from '../toolstack/vdispl-spec.js';

export const DEFAULT_VIEWER_PORT = 5800;
export const DEFAULT_VNC_PORT = 5900;

/** The built-in demo guest program (src/demo/demo-program). */
export const DEMO_PROGRAM = new URL(`../demo/demo-program${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href;

export function demoDevices(beAlloc: boolean): VdisplDeviceSpec[] {
  return [parseVdisplSpec(`backend=0,be-alloc=${beAlloc ? 1 : 0},connectors=DP-1:1920x1080;DP-2:1024x768`)];
}

export interface RunCommandOptions {
  readonly config?: string;
  readonly guest?: string;
  readonly viewer?: boolean;
  readonly headless?: boolean;
  readonly port?: string;
  readonly snapshot?: string;
  readonly frames?: string;
  readonly json?: boolean;
  readonly beAlloc?: boolean;
  readonly vnc?: boolean;
  readonly vncPort?: string;
  readonly vncPasswordFile?: string;
}

export class UsageError extends Error {}

function positiveInt(text: string | undefined, what: string, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw new UsageError(`${what} must be an integer from ${min} to ${max}, not "${text}"`);
  return Number(text);
}

/**
 * A VNC password from a file: the 8 (or 16) bytes `vncpasswd` writes (TigerVNC's PasswordFile
 * format, DES-obfuscated), or else the file's first line as plain text.
 */
export function readVncPassword(file: string): string {
  let b: Buffer;
  try {
    b = readFileSync(file);
  } catch (e) {
    throw new UsageError(`cannot read the VNC password file ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  if ((b.length === 8 || b.length === 16) && b.some((c) => c < 0x20 || c > 0x7e)) return deobfuscateVncPassword(b.subarray(0, 8));
  const line = b.toString('utf8').split(/\r?\n/)[0] ?? '';
  if (line === '') throw new UsageError(`the VNC password file ${file} is empty`);
  return line;
}

/** Reads the guest's name, vdispl devices and vncpasswd (xl.cfg's key) from an xl.cfg-style file. */
export function loadConfig(file: string): { name: string; devices: VdisplDeviceSpec[]; vncPassword?: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read the config ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  try {
    const cfg = parseXlConfig(text, file);
    const devices = vdisplDevicesFromConfig(cfg, file);
    if (devices.length === 0) throw new UsageError(`${file}: no vdispl = [ ... ] devices`);
    const name = cfg.get('name');
    const pw = cfg.get('vncpasswd');
    if (pw !== undefined && typeof pw !== 'string') throw new UsageError(`${file}: vncpasswd must be a string`);
    return { name: typeof name === 'string' && name !== '' ? name : 'guest', devices, ...(pw ? { vncPassword: pw } : {}) };
  } catch (e) {
    if (e instanceof XlConfigError || e instanceof VdisplSpecError) throw new UsageError(e.message);
    throw e;
  }
}

/** A guest program's path (relative to the working directory) as a URL, checked to exist. */
export function programUrl(path: string): string {
  const abs = resolve(path);
  if (!existsSync(abs) || !statSync(abs).isFile()) throw new UsageError(`guest program ${path}: no such file`);
  return pathToFileURL(abs).href;
}

export async function runCommand(kind: 'run' | 'demo', o: RunCommandOptions, io: SessionIo, interrupt: Promise<unknown>): Promise<number> {
  let devices: VdisplDeviceSpec[];
  let name = kind === 'demo' ? 'demo' : 'guest';
  let program: string;
  let viewerPort: number | undefined;
  let frames: number | undefined;
  let vnc: { basePort: number; password?: string | undefined } | undefined;
  try {
    if (kind === 'run' && (!o.config || !o.guest)) throw new UsageError('run needs --config FILE and --guest MODULE');
    let vncPassword: string | undefined;
    if (o.config) {
      const c = loadConfig(o.config);
      devices = c.devices;
      name = c.name;
      vncPassword = c.vncPassword;
    } else {
      devices = demoDevices(o.beAlloc ?? false);
    }
    program = o.guest ? programUrl(o.guest) : DEMO_PROGRAM;
    const port = positiveInt(o.port, '--port', 0, 65535) ?? DEFAULT_VIEWER_PORT;
    const wantViewer = kind === 'demo' ? !o.headless : (o.viewer ?? false);
    viewerPort = wantViewer ? port : undefined;
    frames = positiveInt(o.frames, '--frames', 1, 1e9);
    if (!o.vnc && (o.vncPort !== undefined || o.vncPasswordFile !== undefined)) throw new UsageError(`${o.vncPort !== undefined ? '--vnc-port' : '--vnc-password-file'} needs --vnc`);
    if (o.vnc) {
      const count = Math.max(...devices.map((d) => d.connectors.length));
      const basePort = positiveInt(o.vncPort, '--vnc-port', 0, 65536 - count) ?? DEFAULT_VNC_PORT;
      if (o.vncPasswordFile !== undefined) vncPassword = readVncPassword(o.vncPasswordFile);
      vnc = { basePort, password: vncPassword };
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`vdispl ${kind}: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const r = await runSession({ guestName: name, devices, program, viewerPort, vnc, snapshotDir: o.snapshot, frames, json: o.json ?? false, io, interrupt });
  return r.code;
}

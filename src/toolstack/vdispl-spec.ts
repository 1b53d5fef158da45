/**
 * The xl.cfg `vdispl` option (xl.cfg(5), parsed by `tools/xl/xl_parse.c`), without IO:
 *
 *   vdispl = [ "VDISPL_SPEC_STRING", ... ]          one string per device, devid = list index
 *   VDISPL_SPEC_STRING := KEY=VALUE { "," KEY=VALUE }
 *     backend=DOMAIN     domid or domain name (default: domid 0)
 *     be-alloc=BOOLEAN   backend may allocate display buffers (default: 0)
 *     connectors=<id>:<W>x<H> { ";" <id>:<W>x<H> }   required
 *
 * Follows xl: items split on ",", leading blanks of an item skipped (xl: spaces only, we also
 * skip tabs), the value starts after the first "=", a connector is split at its first ":", a
 * numeric backend is a domid (as libxl_domain_qualifier_to_domid reads it), otherwise a name.
 *
 * Stricter than xl, and every error names the device, the key and the offending text:
 * duplicate keys (xl: the last wins) and empty items (xl's strtok skips them) are errors;
 * be-alloc must be a strtoul-style number (as in xl) or true/false/yes/no/on/off (xl itself
 * only takes numbers and reads "true" as 0); the resolution must be exactly "<W>x<H>" in decimal
 * with 1 <= W, H <= 8192 (xl's sscanf("%ux%u") accepts trailing junk and 0; displif sets no
 * limit; Linux's frontend caps at 4095x2047, we do not); connector ids must be printable ASCII
 * XenStore values and unique within the device; at most MAX_VDISPL_CONNECTORS connectors;
 * a numeric backend must be below DOMID_FIRST_RESERVED.
 */

import { DOMID_FIRST_RESERVED } from '../abi/event-channel.js';

export { DOMID_FIRST_RESERVED };
/** Largest width or height of a connector we accept (displif has no limit). */
export const MAX_VDISPL_RESOLUTION = 8192;
/** Most connectors per device we accept (xl has no limit; Linux's frontend takes 4). */
export const MAX_VDISPL_CONNECTORS = 64;

export interface VdisplConnectorSpec {
  /** Written to the frontend's `<i>/unique-id` node. */
  readonly uniqueId: string;
  readonly width: number;
  readonly height: number;
}

export type VdisplBackend = { readonly domid: number } | { readonly name: string };

export interface VdisplDeviceSpec {
  readonly devid: number;
  readonly backend: VdisplBackend;
  readonly beAlloc: boolean;
  readonly connectors: readonly VdisplConnectorSpec[];
}

/**
 * A bad vdispl spec. The message reads `vdispl[<device>]: <key>: "<part>": <reason>` (key and
 * part left out where there is none).
 */
export class VdisplSpecError extends Error {
  /** Index of the device in the vdispl list (its devid). */
  readonly device: number;
  /** The key whose value is wrong, if the error is about one. */
  readonly key: string | undefined;
  /** The offending text: an item, a value or a connector entry ("" if there is none). */
  readonly part: string;
  /** The message without the device/key/part prefix. */
  readonly reason: string;

  constructor(device: number, key: string | undefined, part: string, reason: string) {
    const where = `vdispl[${device}]: ${key === undefined ? '' : `${key}: `}`;
    super(`${where}${part === '' ? '' : `${JSON.stringify(part)}: `}${reason}`);
    this.name = 'VdisplSpecError';
    this.device = device;
    this.key = key;
    this.part = part;
    this.reason = reason;
  }
}

const KEYS = ['backend', 'be-alloc', 'connectors'] as const;
type Key = (typeof KEYS)[number];
const isKey = (k: string): k is Key => (KEYS as readonly string[]).includes(k);

const DOMAIN_NAME = /^[A-Za-z0-9_.-]+$/;
const DECIMAL = /^[0-9]+$/;
/** What strtoul(v, &end, 0) consumes entirely: hex, octal (leading 0) or decimal. */
const STRTOUL = /^(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/;
const WORD_TRUE = new Set(['true', 'yes', 'on']);
const WORD_FALSE = new Set(['false', 'no', 'off']);
/** A connector id: printable ASCII (a valid XenStore value) without ',' ';' ':' or blanks. */
const CONNECTOR_ID = /^[\x21-\x2b\x2d-\x39\x3c-\x7e]+$/;
const RESOLUTION = /^([0-9]+)x([0-9]+)$/;

/** Parses one VDISPL_SPEC_STRING as device `devid`. Throws VdisplSpecError. */
export function parseVdisplSpec(spec: string, devid = 0): VdisplDeviceSpec {
  if (!Number.isSafeInteger(devid) || devid < 0) throw new RangeError(`bad devid ${devid}`);
  const err = (key: Key | undefined, part: string, reason: string) => new VdisplSpecError(devid, key, part, reason);
  if (spec.trim() === '') throw err(undefined, '', 'empty spec (connectors=<id>:<W>x<H>[;...] is required)');

  const seen = new Map<Key, string>();
  let backend: VdisplBackend = { domid: 0 };
  let beAlloc = false;
  let connectors: VdisplConnectorSpec[] | undefined;

  for (const [i, raw] of spec.split(',').entries()) {
    const item = raw.replace(/^[ \t]+/, '');
    if (item === '') throw err(undefined, '', `item ${i + 1} is empty (stray ",")`);
    const eq = item.indexOf('=');
    if (eq < 0) throw err(undefined, item, 'expected KEY=VALUE');
    const key = item.slice(0, eq);
    const value = item.slice(eq + 1);
    if (!isKey(key)) throw err(undefined, item, `unknown key ${JSON.stringify(key)} (expected backend, be-alloc or connectors)`);
    const earlier = seen.get(key);
    if (earlier !== undefined) throw err(key, item, `key given twice (first as ${JSON.stringify(earlier)})`);
    seen.set(key, item);
    switch (key) {
      case 'backend':
        backend = parseBackend(value, devid);
        break;
      case 'be-alloc':
        beAlloc = parseBeAlloc(value, devid);
        break;
      case 'connectors':
        connectors = parseConnectors(value, devid);
        break;
    }
  }
  if (connectors === undefined) throw err(undefined, spec, 'missing connectors=<id>:<W>x<H>[;...]');
  return { devid, backend, beAlloc, connectors };
}

/** Parses the whole `vdispl` list; device i gets devid i. Throws VdisplSpecError. */
export function parseVdisplList(specs: readonly string[]): VdisplDeviceSpec[] {
  return specs.map((spec, devid) => parseVdisplSpec(spec, devid));
}

/**
 * The spec string of a device, `backend=..,be-alloc=0|1,connectors=..`, which parseVdisplSpec
 * reads back to an equal device (given the same devid). Throws VdisplSpecError for a device
 * that cannot be written so (bad domid, name, id or resolution; no, duplicate or too many
 * connectors).
 */
export function formatVdisplSpec(d: VdisplDeviceSpec): string {
  const backend = 'domid' in d.backend ? String(d.backend.domid) : d.backend.name;
  if ('domid' in d.backend ? !Number.isSafeInteger(d.backend.domid) || d.backend.domid < 0 : DECIMAL.test(backend)) {
    throw new VdisplSpecError(d.devid, 'backend', backend, 'not a domid, or a domain name that would read as one');
  }
  checkBackend(backend, d.devid);
  const entries = d.connectors.map((c) => `${c.uniqueId}:${c.width}x${c.height}`);
  checkConnectorCount(entries, d.devid);
  const ids = new Set<string>();
  d.connectors.forEach((c, i) => checkConnector(c, entries[i] ?? '', ids, d.devid));
  return `backend=${backend},be-alloc=${d.beAlloc ? 1 : 0},connectors=${entries.join(';')}`;
}

function parseBackend(value: string, devid: number): VdisplBackend {
  checkBackend(value, devid);
  return DECIMAL.test(value) ? { domid: Number(value) } : { name: value };
}

function checkBackend(value: string, devid: number): void {
  const err = (reason: string) => new VdisplSpecError(devid, 'backend', value, reason);
  if (value === '') throw err('expected a domid or a domain name');
  if (DECIMAL.test(value)) {
    if (Number(value) >= DOMID_FIRST_RESERVED) throw err(`domid must be below ${DOMID_FIRST_RESERVED} (DOMID_FIRST_RESERVED)`);
  } else if (!DOMAIN_NAME.test(value)) {
    throw err('a domain name may only contain letters, digits, "_", "." and "-"');
  }
}

function parseBeAlloc(value: string, devid: number): boolean {
  // strtoul gives 0 exactly when every digit (after a 0x prefix) is 0.
  if (STRTOUL.test(value)) return !/^(?:0[xX])?0+$/.test(value);
  const word = value.toLowerCase();
  if (WORD_TRUE.has(word)) return true;
  if (WORD_FALSE.has(word)) return false;
  throw new VdisplSpecError(devid, 'be-alloc', value, 'expected 0 or 1 (or true/false, yes/no, on/off)');
}

function parseConnectors(value: string, devid: number): VdisplConnectorSpec[] {
  const err = (part: string, reason: string) => new VdisplSpecError(devid, 'connectors', part, reason);
  const entries = value === '' ? [] : value.split(';');
  checkConnectorCount(entries, devid);
  const ids = new Set<string>();
  return entries.map((entry, i) => {
    if (entry === '') throw err('', `connector ${i + 1} is empty (stray ";")`);
    const colon = entry.indexOf(':');
    if (colon < 0) throw err(entry, 'expected <id>:<W>x<H>');
    const m = RESOLUTION.exec(entry.slice(colon + 1));
    if (m === null) throw err(entry, 'resolution must be <W>x<H> with positive integers');
    const c = { uniqueId: entry.slice(0, colon), width: Number(m[1]), height: Number(m[2]) };
    checkConnector(c, entry, ids, devid);
    return c;
  });
}

function checkConnectorCount(entries: readonly string[], devid: number): void {
  if (entries.length === 0) {
    throw new VdisplSpecError(devid, 'connectors', '', 'at least one connector must be given as <id>:<W>x<H>');
  }
  const extra = entries[MAX_VDISPL_CONNECTORS];
  if (extra !== undefined) {
    const reason = `too many connectors (${entries.length}; at most ${MAX_VDISPL_CONNECTORS})`;
    throw new VdisplSpecError(devid, 'connectors', extra, reason);
  }
}

/** Checks one connector (`entry` is its text, for the message) and adds its id to `ids`. */
function checkConnector(c: VdisplConnectorSpec, entry: string, ids: Set<string>, devid: number): void {
  const err = (reason: string) => new VdisplSpecError(devid, 'connectors', entry, reason);
  const id = JSON.stringify(c.uniqueId);
  if (c.uniqueId === '') throw err('empty connector id');
  if (!CONNECTOR_ID.test(c.uniqueId)) throw err(`connector id ${id} must be printable ASCII without blanks, ",", ";" or ":"`);
  if (ids.has(c.uniqueId)) throw err(`duplicate connector id ${id}`);
  ids.add(c.uniqueId);
  for (const [what, v] of [['width', c.width], ['height', c.height]] as const) {
    if (!Number.isInteger(v) || v < 1 || v > MAX_VDISPL_RESOLUTION) {
      throw err(`${what} ${v} is out of range 1..${MAX_VDISPL_RESOLUTION}`);
    }
  }
}

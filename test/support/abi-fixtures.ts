/**
 * Loads the conformance fixtures that gen/abi-vectors/gen.c writes from the real Xen headers
 * (see gen/abi-vectors/README.md for the format).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { AbiKindName, JsonObject } from '../../src/abi/json.js';

export const FIXTURE_DIR = fileURLToPath(new URL('../fixtures/abi/', import.meta.url));

export interface StructLayout {
  size: number;
  fields: Record<string, { offset: number; size: number }>;
}

export interface LayoutFixture {
  xen_interface_version: string;
  structs: Record<string, StructLayout>;
  constants: Record<string, number | string>;
  errno: Record<string, number>;
  xsd_errors: string[];
  gntst_messages: string[];
  xenbus_states: Record<string, number>;
  drm_formats?: Record<string, number>;
}

export interface PacketFixture {
  hex: string;
  fields: JsonObject;
}

export interface TraceStep {
  op: string;
  args: Record<string, number | string>;
  result: Record<string, unknown>;
  page: [number, string][];
  front?: { req_prod_pvt: number; rsp_cons: number; nr_ents: number };
  back?: { rsp_prod_pvt: number; req_cons: number; nr_ents: number };
  shared?: { req_prod: number; req_event: number; rsp_prod: number; rsp_event: number };
  state?: { in_cons: number; in_prod: number };
}

export interface TraceFile {
  entry_size?: number;
  page_size?: number;
  ring_size?: number;
  scenarios: { name: string; steps: TraceStep[] }[];
}

export function loadLayout(dir = FIXTURE_DIR): LayoutFixture {
  return JSON.parse(readFileSync(`${dir}/layout.json`, 'utf8')) as LayoutFixture;
}

export function loadPackets(kind: AbiKindName, dir = FIXTURE_DIR): PacketFixture[] {
  return readFileSync(`${dir}/packets/${kind}.jsonl`, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as PacketFixture);
}

export function loadTraces(name: 'ring-traces' | 'evtpage-traces', dir = FIXTURE_DIR): TraceFile {
  return JSON.parse(readFileSync(`${dir}/${name}.json`, 'utf8')) as TraceFile;
}

/** Applies a page diff ([offset, hex] runs) to `page`. */
export function applyDiff(page: Uint8Array, diff: [number, string][]): void {
  for (const [offset, hex] of diff) page.set(Buffer.from(hex, 'hex'), offset);
}

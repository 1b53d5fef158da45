/**
 * A guest's vdispl devices in XenStore, as libxl writes them (`libxl__device_generic_add` with the
 * vdispl device type; reference section 7.2): for each device N of frontend D on backend B
 *
 *   /local/domain/D/device/vdispl/N    [nD, rB]  backend, backend-id, state=1; <i>/ [nD, rB]
 *                                                 where the guest adds its rings; be-alloc and
 *                                                 <i>/resolution, <i>/unique-id read-only for
 *                                                 the guest: [nB, rD]
 *   /local/domain/B/backend/vdispl/D/N [nB, rD]  frontend, frontend-id, online=1, state=1
 *                                                 (a backend reads the configuration from the
 *                                                 frontend's directory, as displ_be does)
 *   /libxl/D/device/vdispl/N                      frontend, backend and the backend's keys
 *
 * all in one transaction, retried on EAGAIN.
 */
import type { XsClient, XsOps } from '../xenstore/client.js';
import { domainPath } from '../xenstore/path.js';
import type { XsPerms } from '../xenstore/perms.js';
import { domidByName, ownerReader, rmIfAny } from './domain-nodes.js';
import type { VdisplDeviceSpec } from './vdispl-spec.js';

export interface VdisplDevicePaths {
  readonly devid: number;
  readonly frontend: string;
  readonly backend: string;
  readonly backendDomid: number;
}

export function vdisplFrontendPath(domid: number, devid: number): string {
  return `${domainPath(domid)}/device/vdispl/${devid}`;
}

export function vdisplBackendPath(backendDomid: number, domid: number, devid: number): string {
  return `${domainPath(backendDomid)}/backend/vdispl/${domid}/${devid}`;
}


/** Resolves a device's backend to a domid (a name is looked up in XenStore). */
export async function backendDomid(xs: XsOps, d: VdisplDeviceSpec): Promise<number> {
  if ('domid' in d.backend) return d.backend.domid;
  const id = await domidByName(xs, d.backend.name);
  if (id === undefined) throw new Error(`vdispl[${d.devid}]: backend domain "${d.backend.name}" does not exist`);
  return id;
}

async function writeWithPerms(tx: XsOps, path: string, value: string, p: XsPerms): Promise<void> {
  await tx.write(path, value);
  await tx.setPerms(path, p);
}

/**
 * The backend half of a device: `<be>/backend/vdispl/<domid>/<devid>` [nB, rD] with frontend,
 * frontend-id, online=1 and state=1 (re-created from scratch). Returns the keys written.
 */
export async function writeBackendNodes(tx: XsOps, domid: number, devid: number, be: number): Promise<[string, string][]> {
  const bePath = vdisplBackendPath(be, domid, devid);
  await rmIfAny(tx, bePath);
  await tx.mkdir(bePath);
  await tx.setPerms(bePath, ownerReader(be, domid));
  const beKeys: [string, string][] = [
    ['frontend', vdisplFrontendPath(domid, devid)],
    ['frontend-id', String(domid)],
    ['online', '1'],
    ['state', '1'],
  ];
  for (const [k, v] of beKeys) await tx.write(`${bePath}/${k}`, v);
  return beKeys;
}

/**
 * The configuration the backend owns in the frontend's directory, read-only for the guest:
 * `be-alloc`, `<i>/resolution`, `<i>/unique-id`. (`<i>` itself is created by the write and
 * inherits [nD, rB]: the guest adds its ring refs there.)
 */
async function writeFrontendConfig(tx: XsOps, domid: number, d: VdisplDeviceSpec, be: number): Promise<void> {
  const fe = vdisplFrontendPath(domid, d.devid);
  const roFront = ownerReader(be, domid);
  await writeWithPerms(tx, `${fe}/be-alloc`, d.beAlloc ? '1' : '0', roFront);
  for (const [i, c] of d.connectors.entries()) {
    await writeWithPerms(tx, `${fe}/${i}/resolution`, `${c.width}x${c.height}`, roFront);
    await writeWithPerms(tx, `${fe}/${i}/unique-id`, c.uniqueId, roFront);
  }
}

/**
 * After backend domain `be` was destroyed and a new one started under the same domid: xenstored
 * removed every node the old one owned (the configuration in the frontend's directory, the
 * backend directory) and its read access to the guest's nodes. This gives the guest's nodes of
 * the device back their [nD, rB] permissions (values untouched) and re-creates the configuration
 * and the backend half, so the new backend finds the device and the frontend reconnects.
 */
export async function reattachVdisplDevice(tx: XsOps, domid: number, d: VdisplDeviceSpec, be: number): Promise<void> {
  const fe = vdisplFrontendPath(domid, d.devid);
  if ((await tx.tryRead(fe)) === undefined) return;
  const perms = ownerReader(domid, be);
  const visit = async (path: string): Promise<void> => {
    await tx.setPerms(path, perms);
    for (const child of await tx.directory(path)) await visit(`${path}/${child}`);
  };
  await visit(fe);
  await writeFrontendConfig(tx, domid, d, be);
  await writeBackendNodes(tx, domid, d.devid, be);
}

/** Writes one device inside transaction `tx`. */
export async function writeVdisplDevice(tx: XsOps, domid: number, d: VdisplDeviceSpec, be: number): Promise<VdisplDevicePaths> {
  const fe = vdisplFrontendPath(domid, d.devid);
  const bePath = vdisplBackendPath(be, domid, d.devid);
  const fePerms = ownerReader(domid, be);

  await rmIfAny(tx, fe);
  const beKeys = await writeBackendNodes(tx, domid, d.devid, be);

  await tx.mkdir(fe);
  await tx.setPerms(fe, fePerms);
  await writeWithPerms(tx, `${fe}/backend`, bePath, fePerms);
  await writeWithPerms(tx, `${fe}/backend-id`, String(be), fePerms);
  await writeWithPerms(tx, `${fe}/state`, '1', fePerms);
  await writeFrontendConfig(tx, domid, d, be);

  const lx = `/libxl/${domid}/device/vdispl/${d.devid}`;
  await rmIfAny(tx, lx);
  await tx.write(`${lx}/frontend`, fe);
  await tx.write(`${lx}/backend`, bePath);
  for (const [k, v] of beKeys) await tx.write(`${lx}/${k}`, v);
  return { devid: d.devid, frontend: fe, backend: bePath, backendDomid: be };
}

/** Creates every vdispl device of guest `domid` in one transaction. */
export async function addVdisplDevices(xs: XsClient, domid: number, devices: readonly VdisplDeviceSpec[]): Promise<VdisplDevicePaths[]> {
  const bes = await Promise.all(devices.map((d) => backendDomid(xs, d)));
  return xs.transaction(async (tx) => {
    const out: VdisplDevicePaths[] = [];
    for (const [i, d] of devices.entries()) out.push(await writeVdisplDevice(tx, domid, d, bes[i]!));
    return out;
  });
}

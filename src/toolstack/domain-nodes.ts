/**
 * A domain's home in XenStore as libxl lays it out (`libxl__domain_make`): /local/domain/<D>
 * readable by the domain and owned by dom0, subdirectories the domain may write (data, drivers,
 * feature, attr, error, control/shutdown...), `name` and `domid`, and /vm/<uuid>-less /libxl/<D>
 * for the toolstack's own records. Written in one transaction; removed when the domain goes.
 */
import { XsError, type XsOps } from '../xenstore/client.js';
import { domainPath } from '../xenstore/path.js';
import type { XsPerms } from '../xenstore/perms.js';

/** [n<owner>, r<reader>]: `owner` owns it, `reader` may read it, nobody else sees it. */
export function ownerReader(owner: number, reader: number): XsPerms {
  return [{ domid: owner, access: 'n' }, { domid: reader, access: 'r' }];
}

/** [n0, rD]: dom0 owns, the domain reads. */
export function readOnlyFor(domid: number): XsPerms {
  return ownerReader(0, domid);
}

/** [nD]: the domain owns. */
export function ownedBy(domid: number): XsPerms {
  return [{ domid, access: 'n' }];
}

/** xs_rm as libxl uses it: a path whose parent is missing is as good as removed. */
export async function rmIfAny(tx: XsOps, path: string): Promise<void> {
  try {
    await tx.rm(path);
  } catch (e) {
    if (!(e instanceof XsError) || e.code !== 'ENOENT') throw e;
  }
}

const GUEST_WRITABLE = ['data', 'drivers', 'feature', 'attr', 'error', 'control/shutdown', 'control/feature-poweroff', 'control/feature-reboot'];

export async function writeDomainNodes(tx: XsOps, domid: number, name: string): Promise<void> {
  const home = domainPath(domid);
  await rmIfAny(tx, home);
  await tx.mkdir(home);
  await tx.setPerms(home, readOnlyFor(domid));
  for (const sub of ['device', 'control']) {
    await tx.mkdir(`${home}/${sub}`);
    await tx.setPerms(`${home}/${sub}`, readOnlyFor(domid));
  }
  for (const sub of GUEST_WRITABLE) {
    await tx.mkdir(`${home}/${sub}`);
    await tx.setPerms(`${home}/${sub}`, ownedBy(domid));
  }
  await tx.write(`${home}/name`, name);
  await tx.write(`${home}/domid`, String(domid));
  await rmIfAny(tx, `/libxl/${domid}`);
  await tx.mkdir(`/libxl/${domid}`);
}

export async function removeDomainNodes(tx: XsOps, domid: number): Promise<void> {
  await rmIfAny(tx, domainPath(domid));
  await rmIfAny(tx, `/libxl/${domid}`);
}

/** The domid of a domain by name (libxl_name_to_domid), reading /local/domain/<D>/name. */
export async function domidByName(xs: XsOps, name: string): Promise<number | undefined> {
  let ids: string[];
  try {
    ids = await xs.directory('/local/domain');
  } catch {
    return undefined;
  }
  for (const id of ids) {
    if ((await xs.tryRead(`/local/domain/${id}/name`)) === name) return Number(id);
  }
  return undefined;
}

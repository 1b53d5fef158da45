/** The error every failed display call rejects with: a negative Xen errno and what failed. */
import { xenErrnoName } from '../abi/xen-errno.js';

export class DisplayError extends Error {
  /** Negative Xen errno (e.g. -XEN_ERRNO.ETIMEDOUT). */
  readonly errno: number;
  /** Its name ("ETIMEDOUT"), or the number. */
  readonly code: string;
  constructor(errno: number, message: string) {
    const code = xenErrnoName(errno) ?? String(errno);
    super(`${message} (${code})`);
    this.name = 'DisplayError';
    this.errno = errno;
    this.code = code;
  }
}

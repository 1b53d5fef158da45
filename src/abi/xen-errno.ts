/**
 * Xen errno values (`xen/include/public/errno.h`), the numbers carried negated in displif
 * response statuses and hypercall results. Same numbers as Linux on x86. EINTR and ERESTART are
 * Xen-internal (never exposed to guests) and are not listed.
 */

/** Every guest-visible Xen errno, in header order (aliases included). */
export const XEN_ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  ENOEXEC: 8,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  EWOULDBLOCK: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOSPC: 28,
  EROFS: 30,
  EMLINK: 31,
  EDOM: 33,
  ERANGE: 34,
  EDEADLK: 35,
  EDEADLOCK: 35,
  ENAMETOOLONG: 36,
  ENOLCK: 37,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ENODATA: 61,
  ETIME: 62,
  EBADMSG: 74,
  EOVERFLOW: 75,
  EILSEQ: 84,
  ENOTSOCK: 88,
  EMSGSIZE: 90,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENOBUFS: 105,
  EISCONN: 106,
  ENOTCONN: 107,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
} as const;

export type XenErrnoName = keyof typeof XEN_ERRNO;

const ALIASES: ReadonlySet<string> = new Set(['EWOULDBLOCK', 'EDEADLOCK']);
const NAME_BY_VALUE = new Map<number, XenErrnoName>(
  (Object.entries(XEN_ERRNO) as [XenErrnoName, number][])
    .filter(([n]) => !ALIASES.has(n))
    .map(([n, v]) => [v, n]),
);

/** The canonical name of errno `value` (positive or negated), e.g. 22 or -22 -> "EINVAL". */
export function xenErrnoName(value: number): XenErrnoName | undefined {
  return NAME_BY_VALUE.get(Math.abs(value));
}

/** "0 (OK)", "-22 (EINVAL)", "-1000 (unknown errno)": how statuses are shown in logs. */
export function describeStatus(status: number): string {
  if (status === 0) return '0 (OK)';
  return `${status} (${xenErrnoName(status) ?? 'unknown errno'})`;
}

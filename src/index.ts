/** vdispl: the Xen para-virtual display protocol (displif) in TypeScript. */
export * from './abi/index.js';
export * from './ring/index.js';
export * from './back/index.js';
export * from './dmabuf/index.js';
export * from './front/index.js';
export { domainPlatform, withXenstore, type XenPlatform } from './xenbus/xen-platform.js';
export type { GuestProgram, GuestProgramContext } from './run/guest-runner.js';

/** Layer 3: the emulated Xen hypervisor and the platform interface the layers above use. */
export * from './accounting.js';
export type { DomainContext, DomainExit, DomainMain } from './domain-context.js';
export * from './emulated-platform.js';
export type { EvtchnStatus } from './event-channels.js';
export * from './event-loop.js';
export * from './gnttab-client.js';
export * from './grant-ops.js';
export * from './hypercalls.js';
export * from './layout.js';
export * from './machine.js';
export * from './page-allocator.js';
export type {
  Errno, GrantMapping, MapResult, Platform, PlatformEvents, PlatformGrantMaps, PlatformGrants, PlatformMemory,
} from './platform.js';
export { MachineState } from './state.js';

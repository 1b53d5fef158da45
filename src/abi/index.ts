/** Layer 1: Xen's public ABI as pure byte layouts, constants and codecs. No IO. */
export * from './bytes.js';
export * from './codec.js';
export * from './displif-constants.js';
export * from './displif-packets.js';
export * from './event-channel.js';
export * from './fields.js';
export * from './fourcc.js';
export * from './grant-table.js';
export * from './json.js';
export * from './page-directory.js';
export * from './ring-layout.js';
export * from './xen-errno.js';
export * from './xenbus-state.js';
export * from './xs-wire.js';

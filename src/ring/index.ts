/** Layer 2: shared request/response rings, the displif event page and the xenstore byte rings. */
export * from './event-page.js';
export * from './shared-page.js';
export * from './shared-ring.js';
export * from './xs-ring.js';

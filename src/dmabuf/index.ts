export * from './alloc.js';
export * from './dmabuf.js';
export * from './gntdev-dmabuf.js';

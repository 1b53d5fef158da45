export { Card, Connector, DisplayBuffer, Framebuffer, type DumbBufferOptions } from './card.js';
export { DisplayError } from './errors.js';
export { RawConnector, RawFrontend, RawFrontendError } from './raw-frontend.js';
export { XenFront, type XenFrontOptions } from './xen-front.js';

export { DisplayBackend, type DisplayBackendOptions } from './backend.js';
export { BackendControl, type BackendDomainArgs, type BackendStatus } from './backend-domain.js';
export { DEFAULT_LIMITS, type DisplayLimits } from './buffers.js';
export { buildEdid, edidChecksumOk, parseEdidPreferredMode, type EdidOptions } from './edid.js';
export { copyFramePixels, MemoryConnector, MemoryPresenter, type PixelCopy } from './memory-presenter.js';
export { type ConnectorInfo, type ConnectorOutput, type Frame, NullPresenter, type OutputConfig, type Presenter } from './presenter.js';

/**
 * `@ftvm/devices/node`: host backends that need Node.js (files). The models themselves import no
 * `node:` module and live in `@ftvm/devices`.
 */
export type { FileBlockBackendOptions } from './file-block-backend.js';
export { FileBlockBackend } from './file-block-backend.js';

/**
 * @ftvm/cluster: the networked deployment. The orchestrator (the cluster service: placement,
 * restoring redundancy, the dashboard), the host daemon that runs VMs' roles in worker threads,
 * the gateway that clients talk to, the authenticated control API they share, and the cluster's
 * certificates (or, for trials, its pre-shared key). Node only. The `ftvm` command's `certs`,
 * `orchestrator`, `host`, `gateway` and `vm` subcommands are thin wrappers over these classes.
 */
export * from './api.js';
export type { CredentialSource } from './auth.js';
export {
  checkCredentialSource,
  clientTlsOptions,
  isPsk,
  loadClusterCredentials,
  PSK_CIPHERS,
  peerName,
  serverTlsOptions,
} from './auth.js';
export type { CertificateCredentials, Credentials, IssueOptions } from './certs.js';
export { commonName, initCertificates, issueCertificate, loadCredentials } from './certs.js';
export type { GatewayConfig, HostConfig, OrchestratorConfig } from './config.js';
export { GATEWAY_CONFIG, HOST_CONFIG, ORCHESTRATOR_CONFIG, resolveConfig } from './config.js';
export { dashboardPage, serveDashboard } from './dashboard.js';
export type { LinkHello } from './frame-link.js';
export { FrameReader, HostFrameLink } from './frame-link.js';
export type { GatewayServiceOptions } from './gateway-service.js';
export { GatewayService, parseGatewayForward } from './gateway-service.js';
export type { HostAgentOptions } from './host-agent.js';
export { DATA_DIR_FREE_MIN_BYTES, DataDirFullError, HostAgent } from './host-agent.js';
export type { ApiReply, ApiRequest, Route } from './http.js';
export { ApiClient, ApiError, parseBody, serveApi, splitAddress } from './http.js';
export type { OrchestratorOptions } from './orchestrator.js';
export { HOST_LEASE_MS, Orchestrator, REDUNDANCY_RESTORED_WITHIN_MS } from './orchestrator.js';
export type { PskCredentials } from './psk.js';
export { createPskFile, derivePsk, loadPskCredentials, PSK_BYTES, parsePsk } from './psk.js';
export type { ClusterStore } from './store.js';
export { DirectoryStore, EtcdStore } from './store.js';

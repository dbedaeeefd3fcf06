import { generateKeyPairSync, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { ConfigError } from '@ftvm/core';
import forge from 'node-forge';
import type { PskCredentials } from './psk.js';

/**
 * The cluster's certificates: a CA that `ftvm certs init` creates, and one certificate per
 * component (host, orchestrator, gateway, operator) that it signs. Every channel is mutual TLS
 * against that CA, and a component's name is its certificate's common name, which is how the
 * orchestrator knows which host is speaking (a host cannot claim another's VMs).
 *
 * Layout of a certificates directory: `ca.crt`, `ca.key` (keep this one on the machine that issues
 * certificates only), and `NAME.crt` / `NAME.key` for each component. Keys are written mode 0600.
 * RSA-2048 keys come from Node's crypto; node-forge builds and signs the X.509 certificates.
 * For trials a cluster can run on a pre-shared key instead (`psk.ts`).
 */

/** A component's TLS credentials (PEM), as Node's `tls` options take them. */
export interface CertificateCredentials {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  /** The common name in `cert`. */
  readonly name: string;
}

/** How a component proves its name: a certificate of the cluster CA, or the cluster's pre-shared key. */
export type Credentials = CertificateCredentials | PskCredentials;

/** Options of {@link issueCertificate}. */
export interface IssueOptions {
  /** IP addresses and DNS names the certificate is valid for; default 127.0.0.1, ::1 and localhost. */
  readonly addresses?: readonly string[];
  /** Validity in days; default 825. */
  readonly days?: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const DEFAULT_ADDRESSES = ['127.0.0.1', '::1', 'localhost'];

/** Creates a CA in `dir` (refuses to replace one). Returns the CA certificate's path. */
export function initCertificates(dir: string, options: { days?: number } = {}): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caCrt = join(dir, 'ca.crt');
  if (existsSync(caCrt) || existsSync(join(dir, 'ca.key'))) {
    throw new ConfigError(`${dir} already holds a CA (ca.crt / ca.key); remove it to start over`);
  }
  const keys = newKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serialNumber();
  setValidity(cert, options.days ?? 3650);
  const subject = [{ name: 'commonName', value: 'ftvm cluster CA' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  writePrivate(join(dir, 'ca.key'), keys.pem);
  writeFileAtomic(caCrt, forge.pki.certificateToPem(cert), 0o644);
  return caCrt;
}

/** Issues (or re-issues, for rotation) the certificate of component `name`, signed by the CA in `dir`. */
export function issueCertificate(
  dir: string,
  name: string,
  options: IssueOptions = {},
): CertificateCredentials {
  if (!NAME.test(name)) {
    throw new ConfigError(`invalid component name ${JSON.stringify(name)}: letters, digits, . _ - (≤ 63)`);
  }
  const caPem = readOrExplain(join(dir, 'ca.crt'), 'run `ftvm certs init` first');
  const caKeyPem = readOrExplain(join(dir, 'ca.key'), 'issue certificates where the CA key is');
  const ca = forge.pki.certificateFromPem(caPem);
  const caKey = forge.pki.privateKeyFromPem(caKeyPem);
  const keys = newKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serialNumber();
  setValidity(cert, options.days ?? 825);
  cert.setSubject([{ name: 'commonName', value: name }]);
  cert.setIssuer(ca.subject.attributes);
  const altNames = (options.addresses ?? DEFAULT_ADDRESSES).map((address) =>
    isIP(address) ? { type: 7, ip: address } : { type: 2, value: address },
  );
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    { name: 'subjectAltName', altNames },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  const certPem = forge.pki.certificateToPem(cert);
  writePrivate(join(dir, `${name}.key`), keys.pem);
  writeFileAtomic(join(dir, `${name}.crt`), certPem, 0o644);
  return { ca: caPem, cert: certPem, key: keys.pem, name };
}

/**
 * The credentials of component `name` from `dir`: its own `NAME.crt`/`NAME.key`, issued now from
 * the CA key when they do not exist yet and the CA key is there (a trial on one machine needs no
 * step per component).
 */
export function loadCredentials(dir: string, name: string): CertificateCredentials {
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  if (!existsSync(certPath) || !existsSync(keyPath)) {
    if (!existsSync(join(dir, 'ca.key'))) {
      throw new ConfigError(
        `no certificate for ${name} in ${dir}: issue one with \`ftvm certs issue --dir CA_DIR --name ${name}\` and copy ${name}.crt, ${name}.key and ca.crt here`,
      );
    }
    // Two processes of one name starting at once (two `ftvm vm` commands) must not each write
    // half of a pair: one issues under a lock file, the other waits for it.
    const lock = join(dir, `${name}.lock`);
    let held = false;
    const deadline = Date.now() + 15_000;
    while (!held) {
      try {
        closeSync(openSync(lock, 'wx'));
        held = true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        if (Date.now() > deadline) {
          // Its holder died: take it over.
          rmSync(lock, { force: true });
          continue;
        }
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
      }
    }
    try {
      if (!existsSync(certPath) || !existsSync(keyPath)) return issueCertificate(dir, name);
    } finally {
      rmSync(lock, { force: true });
    }
  }
  return {
    ca: readOrExplain(join(dir, 'ca.crt'), 'run `ftvm certs init` first'),
    cert: readFileSync(certPath, 'utf8'),
    key: readFileSync(keyPath, 'utf8'),
    name,
  };
}

/** The common name of a PEM certificate. */
export function commonName(certPem: string): string {
  const field = forge.pki.certificateFromPem(certPem).subject.getField('CN');
  return typeof field?.value === 'string' ? field.value : '';
}

function newKeyPair(): {
  pem: string;
  privateKey: forge.pki.rsa.PrivateKey;
  publicKey: forge.pki.rsa.PublicKey;
} {
  const pair = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return {
    pem: pair.privateKey,
    privateKey: forge.pki.privateKeyFromPem(pair.privateKey) as forge.pki.rsa.PrivateKey,
    publicKey: forge.pki.publicKeyFromPem(pair.publicKey) as forge.pki.rsa.PublicKey,
  };
}

/** A positive 16-byte serial (the top bit clear, so DER does not read it as negative). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString('hex');
}

function setValidity(cert: forge.pki.Certificate, days: number): void {
  if (!Number.isSafeInteger(days) || days < 1) throw new ConfigError(`validity must be ≥ 1 day, not ${days}`);
  // Certificates are host-side only (never guest-visible): the wall clock is right here.
  const now = new Date();
  cert.validity.notBefore = new Date(now.getTime() - 60_000);
  cert.validity.notAfter = new Date(now.getTime() + days * 86_400_000);
}

function readOrExplain(path: string, hint: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new ConfigError(`cannot read ${path}: ${hint}`);
  }
}

function writePrivate(path: string, text: string): void {
  writeFileAtomic(path, text, 0o600);
}

function writeFileAtomic(path: string, text: string, mode: number): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, text, { mode });
  renameSync(temporary, path);
}

import { readFileSync } from 'node:fs';
import { ConfigError } from '@ftvm/core';
import { z } from 'zod';
import { ADDRESS, NAME } from './api.js';

/**
 * The daemons' configuration files (`--config FILE`): JSON objects whose keys are the long flags
 * in camelCase (`{"name": "h1", "listen": "10.0.0.11:7101", "orchestrator": "10.0.0.1:7000"}`).
 * A flag given on the command line wins over the file. Validated with zod: an unknown key or a
 * wrong value is an error that names the field.
 */

const ADDRESSES = z.string().regex(/^[^,\s]+(,[^,\s]+)*$/, 'one or more HOST:PORT, comma-separated');
/** A certificates directory or a pre-shared key file: exactly one, checked when they are loaded. */
const CREDENTIALS = { certs: z.string().min(1).optional(), psk: z.string().min(1).optional() };

export const ORCHESTRATOR_CONFIG = z.strictObject({
  listen: ADDRESS,
  store: z.string().min(1),
  shared: z.string().min(1).optional(),
  dashboard: ADDRESS.optional(),
  name: NAME,
  ...CREDENTIALS,
});
export type OrchestratorConfig = z.infer<typeof ORCHESTRATOR_CONFIG>;

export const HOST_CONFIG = z.strictObject({
  name: NAME,
  listen: ADDRESS,
  advertise: ADDRESS.optional(),
  data: z.string().min(1),
  orchestrator: ADDRESSES,
  ...CREDENTIALS,
  faultInjection: z.boolean().default(false),
});
export type HostConfig = z.infer<typeof HOST_CONFIG>;

export const GATEWAY_CONFIG = z.strictObject({
  listen: ADDRESS,
  advertise: ADDRESS.optional(),
  orchestrator: ADDRESSES,
  ...CREDENTIALS,
  forward: z.array(z.string()).default([]),
});
export type GatewayConfig = z.infer<typeof GATEWAY_CONFIG>;

/**
 * Merges a configuration file (when `path` is given) under the flags that were given on the
 * command line (`given`) and over the flags' defaults (`defaults`), then validates the result.
 */
export function resolveConfig<T extends z.ZodType>(
  schema: T,
  path: string | undefined,
  given: Record<string, unknown>,
  defaults: Record<string, unknown>,
): z.infer<T> {
  let file: Record<string, unknown> = {};
  const where = path === undefined ? 'the command line' : `config ${path}`;
  if (path !== undefined) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      throw new ConfigError(`cannot read config ${path}: ${(error as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new ConfigError(`config ${path} is not JSON: ${(error as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError(`config ${path} must be a JSON object`);
    }
    file = parsed as Record<string, unknown>;
  }
  const result = schema.safeParse({ ...defaults, ...file, ...given });
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue && issue.path.length > 0 ? issue.path.join('.') : '(config)';
  const merged: Record<string, unknown> = { ...defaults, ...file, ...given };
  const missing = issue?.code === 'invalid_type' && issue.path.length === 1 && merged[field] === undefined;
  const flag = `--${field.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
  throw new ConfigError(
    missing
      ? `${where}: ${field} is required (${flag}, or "${field}" in a --config file)`
      : `${where}: ${field}: ${issue?.message ?? 'invalid'}`,
  );
}

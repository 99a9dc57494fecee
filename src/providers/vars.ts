// Reading a provider's vars and secrets: absent and blank are the same, and a listed provider
// missing a credential names the variable, never its value.
import { MissingCredentialsError, type ProviderEnv } from './types';

/** Reads a string var; empty strings count as unset. */
export function readVar(env: ProviderEnv, name: string): string | undefined {
  const value = env[name];
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

/**
 * Reads an optional base URL var without its trailing slashes, so `${base}/path` never doubles
 * one; undefined when unset, so the caller picks the public default.
 */
export function readBaseUrl(env: ProviderEnv, name: string): string | undefined {
  return readVar(env, name)?.trim().replace(/\/+$/, '');
}

/** Loopback targets (a local fake) are allowed only when ENVIRONMENT is exactly 'development'. */
export function allowsLoopback(env: ProviderEnv): boolean {
  return readVar(env, 'ENVIRONMENT') === 'development';
}

/** Reads the named vars or throws MissingCredentialsError naming every missing one. */
export function requireVars<const N extends string>(
  env: ProviderEnv,
  provider: string,
  names: readonly N[],
): Record<N, string> {
  const missing = names.filter((name) => readVar(env, name) === undefined);
  if (missing.length > 0) throw new MissingCredentialsError(provider, missing);
  return Object.fromEntries(names.map((name) => [name, readVar(env, name)])) as Record<N, string>;
}

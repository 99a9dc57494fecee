// The config of the email APIs one key authenticates (Resend, SendGrid, Postmark).
import type { ProviderEnv } from '../types';
import { readBaseUrl, requireVars } from '../vars';
import { readSender, type Sender } from './mailbox';

/** The config of an email API that one key authenticates: the key, its base URL and the sender. */
export interface KeyedEmailConfig {
  apiKey: string;
  /** Without trailing slash; the public default unless the base URL var is set (EU regions, fakes). */
  baseUrl: string;
  sender: Sender;
}

/** Reads the key, `EMAIL_FROM` and the optional base URL; throws MissingCredentialsError naming absent vars. */
export function readKeyedEmailConfig<K extends string>(
  env: ProviderEnv,
  provider: string,
  keyVar: K,
  baseUrlVar: string,
  defaultBaseUrl: string,
): KeyedEmailConfig {
  const vars = requireVars(env, provider, [keyVar, 'EMAIL_FROM']);
  return {
    apiKey: vars[keyVar],
    baseUrl: readBaseUrl(env, baseUrlVar) ?? defaultBaseUrl,
    sender: readSender(env, vars.EMAIL_FROM),
  };
}

// Sender identities: parsing `EMAIL_FROM` / `EMAIL_REPLY_TO` and writing mailboxes back out.
import type { ProviderEnv } from '../types';
import { readVar } from '../vars';

/** A parsed mailbox: `Herald <noreply@example.com>` becomes `{ name: 'Herald', email: ... }`. */
export interface Mailbox {
  email: string;
  name?: string;
}

/** The sender identity shared by every email provider (`EMAIL_FROM`, optional `EMAIL_REPLY_TO`). */
export interface Sender {
  from: Mailbox;
  replyTo?: Mailbox;
}

const BARE_ADDRESS = /^[^\s<>@"]+@[^\s<>@"]+$/;
const NAMED_ADDRESS = /^(.*?)\s*<([^\s<>@"]+@[^\s<>@"]+)>$/;

/**
 * Parses `addr@example.com`, `Name <addr@example.com>` or `"Name, Inc." <addr@example.com>`.
 * Throws when the value is not a mailbox: a malformed `EMAIL_FROM` is a deployment error.
 */
export function parseMailbox(value: string, variable = 'EMAIL_FROM'): Mailbox {
  const trimmed = value.trim();
  if (BARE_ADDRESS.test(trimmed)) return { email: trimmed };
  const match = NAMED_ADDRESS.exec(trimmed);
  if (!match?.[2]) throw new TypeError(`${variable} is not a valid email address`);
  const name = unquote(match[1] ?? '');
  return name ? { email: match[2], name } : { email: match[2] };
}

function unquote(name: string): string {
  const trimmed = name.trim();
  if (trimmed.length >= 2 && trimmed.startsWith('"') && trimmed.endsWith('"')) {
    return trimmed.slice(1, -1).replace(/\\(.)/g, '$1');
  }
  return trimmed;
}

/** Formats a mailbox for APIs that take one string, quoting a display name with specials. */
export function formatMailbox(mailbox: Mailbox): string {
  if (!mailbox.name) return mailbox.email;
  const name = /[(),.:;<>@[\]\\"]/.test(mailbox.name)
    ? `"${mailbox.name.replace(/(["\\])/g, '\\$1')}"`
    : mailbox.name;
  return `${name} <${mailbox.email}>`;
}

/** A mailbox as the APIs that take `{ email, name? }` objects want it. */
export function mailboxObject(mailbox: Mailbox): { email: string; name?: string } {
  return mailbox.name ? { email: mailbox.email, name: mailbox.name } : { email: mailbox.email };
}

/** Reads `EMAIL_FROM` (already checked present by the caller) and the optional `EMAIL_REPLY_TO`. */
export function readSender(env: ProviderEnv, from: string): Sender {
  const replyTo = readVar(env, 'EMAIL_REPLY_TO');
  return {
    from: parseMailbox(from),
    ...(replyTo ? { replyTo: parseMailbox(replyTo, 'EMAIL_REPLY_TO') } : {}),
  };
}

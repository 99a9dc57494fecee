import type { Address } from '../../domain/address';

/** Shortens a long token to its ends: enough to recognise, not enough to use. */
function shorten(token: string): string {
  return token.length > 24 ? `${token.slice(0, 10)}…${token.slice(-6)}` : token;
}

/** A URL's origin only: chat webhook URLs carry their secret in the path. */
function originOf(url: string | undefined): string {
  if (!url) return '';
  try {
    return `${new URL(url).origin}/…`;
  } catch {
    return '[url]';
  }
}

/** An address for an operator's eyes: who it is, without secrets (webhook URLs and secrets, tokens). */
export function describeAddress(address: Address | null): string {
  if (!address) return '–';
  switch (address.channel) {
    case 'email':
      return address.email;
    case 'sms':
      return address.phone;
    case 'push':
      return `${address.platform} ${shorten(address.deviceToken)}`;
    case 'chat':
      return `${address.platform} ${address.chatId ?? originOf(address.url)}`;
    case 'webhook':
      return originOf(address.url);
    case 'inapp':
      return `inbox of ${address.userId}`;
  }
}

/** Whole seconds or milliseconds between two ISO times, as `+1.2 s`. */
export function elapsed(fromIso: string, toIso: string): string {
  const ms = Date.parse(toIso) - Date.parse(fromIso);
  if (!Number.isFinite(ms) || ms < 0) return '';
  if (ms < 1000) return `+${ms} ms`;
  if (ms < 120_000) return `+${Math.round(ms / 100) / 10} s`;
  if (ms < 7_200_000) return `+${Math.round(ms / 60_000)} min`;
  return `+${Math.round(ms / 360_000) / 10} h`;
}

export function seconds(value: number | null): string {
  if (value === null) return '–';
  if (value < 60) return `${Math.round(value * 100) / 100} s`;
  if (value < 3600) return `${Math.round(value / 6) / 10} min`;
  return `${Math.round(value / 360) / 10} h`;
}

export function percent(value: number | null): string {
  return value === null ? '–' : `${Math.round(value * 1000) / 10}%`;
}

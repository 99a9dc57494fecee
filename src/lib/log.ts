/**
 * One JSON object per line, so `wrangler tail --format json` can be filtered by any field.
 * Personal data (emails, phone numbers, tokens, URLs with secrets) must never be passed here:
 * callers log ids, channels, providers, statuses and durations. `redact` is a last line of
 * defence for free-text fields such as provider reasons.
 */
import { redact } from './redact';

export type LogFields = Record<string, string | number | boolean | null | undefined>;

export function log(level: 'info' | 'warn' | 'error', event: string, fields: LogFields = {}): void {
  const line = JSON.stringify({ level, event, ...redactFields(fields), at: new Date().toISOString() });
  if (level === 'error') console.error(line);
  else if (level === 'warn') console.warn(line);
  else console.log(line);
}

function redactFields(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] = typeof value === 'string' && !key.endsWith('Id') && key !== 'id' ? redact(value) : value;
  }
  return out;
}

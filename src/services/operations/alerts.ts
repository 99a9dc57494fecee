import { log } from '../../lib/log';
import { redact } from '../../lib/redact';
import type { PendingAlert } from '../../storage/operations-repo';
import type { Services } from '../container';

/** The `fetch` alerts are posted with (a test passes its own). */
export type AlertFetch = (input: string, init: RequestInit) => Promise<Response>;

const defaultFetch: AlertFetch = (input, init) => fetch(input, init);

/**
 * An alert D1 could not store is posted straight to the webhook, at most once per alert key per
 * this interval per isolate: an outage raises the same alert thousands of times, the operator
 * needs to hear it once every few minutes.
 */
export const DIRECT_ALERT_INTERVAL_MS = 5 * 60_000;

/** When this isolate last posted each alert directly (by webhook and key), for the interval above. */
const postedDirectly = new Map<string, number>();
/** More keys than any deployment has; beyond it the oldest are forgotten (memory stays bounded). */
const MAX_REMEMBERED_KEYS = 1000;

/**
 * Raises an operator alert. Alerts are stored by key and sent as one digest a minute by the cron,
 * so a storm of the same problem is one row and one message, never thousands. When D1 cannot store
 * it (the outage it may well be about), it goes straight to ALERT_WEBHOOK_URL instead. Never throws.
 */
export async function raiseAlert(
  services: Services,
  key: string,
  message: string,
  fetcher: AlertFetch = defaultFetch,
): Promise<void> {
  log('error', 'alert', { alert: key, message });
  try {
    await services.operations.raiseAlertStatement(key, message, services.now()).run();
  } catch (error) {
    log('error', 'alert.store_failed', { alert: key, error: String(error) });
    await postAlertDirectly(services, key, message, fetcher);
  }
}

/** Whether this isolate may post `key` directly now (and, if so, notes that it does). */
function mayPostDirectly(url: string, key: string, now: number): boolean {
  const slot = `${url}\n${key}`;
  const last = postedDirectly.get(slot);
  if (last !== undefined && now - last < DIRECT_ALERT_INTERVAL_MS) return false;
  postedDirectly.delete(slot);
  postedDirectly.set(slot, now);
  if (postedDirectly.size > MAX_REMEMBERED_KEYS) {
    const oldest = postedDirectly.keys().next().value;
    if (oldest !== undefined) postedDirectly.delete(oldest);
  }
  return true;
}

/** Posts one alert to the webhook without D1, rate-limited per key (see DIRECT_ALERT_INTERVAL_MS). */
async function postAlertDirectly(
  services: Services,
  key: string,
  message: string,
  fetcher: AlertFetch,
): Promise<void> {
  const url = services.env.ALERT_WEBHOOK_URL;
  if (!url) return;
  if (!mayPostDirectly(url, key, services.now())) {
    log('warn', 'alert.direct_held', { alert: key });
    return;
  }
  const alert = { key, message, count: 1, firstAt: new Date(services.now()).toISOString() };
  const digest = alertDigest([alert], environmentOf(services));
  digest.text += '\n(sent directly: D1 could not store this alert)';
  try {
    await postDigest(url, digest, fetcher);
    log('warn', 'alert.sent_directly', { alert: key });
  } catch (error) {
    log('error', 'alert.send_failed', { alert: key, error: String(error) });
  }
}

/** Formats pending alerts as one Slack-compatible message. */
export function alertDigest(
  alerts: readonly Pick<PendingAlert, 'message' | 'count' | 'firstAt'>[],
  environment: string,
): { text: string } {
  const lines = alerts.map((a) => `• ${a.message}${a.count > 1 ? ` (×${a.count} since ${a.firstAt})` : ''}`);
  return {
    text: `:rotating_light: Herald (${environment}): ${alerts.length} alert${alerts.length === 1 ? '' : 's'}\n${lines.join('\n')}`,
  };
}

const environmentOf = (services: Services) => services.env.ENVIRONMENT ?? 'production';

async function postDigest(url: string, digest: { text: string }, fetcher: AlertFetch): Promise<void> {
  const response = await fetcher(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(digest),
    signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok) throw new Error(`alert webhook answered ${response.status}`);
}

/**
 * Sends the digest of pending alerts to ALERT_WEBHOOK_URL; puts them back if that fails. Throws
 * when D1 cannot be read (the cron then alerts about that directly).
 */
export async function flushAlerts(services: Services, fetcher: AlertFetch = defaultFetch): Promise<number> {
  const repo = services.operations;
  const alerts = await repo.takeAlerts();
  if (alerts.length === 0) return 0;
  const url = services.env.ALERT_WEBHOOK_URL;
  if (!url) return alerts.length;
  try {
    await postDigest(url, alertDigest(alerts, environmentOf(services)), fetcher);
  } catch (error) {
    log('error', 'alert.send_failed', { count: alerts.length, error: String(error) });
    await repo.restoreAlerts(alerts);
    return 0;
  }
  return alerts.length;
}

/** A short, redacted description of an error for an alert's text. */
export function describeError(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return redact(text).slice(0, 300);
}

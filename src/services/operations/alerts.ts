import { log } from '../../lib/log';
import type { PendingAlert } from '../../storage/operations-repo';
import type { Services } from '../container';

/**
 * Raises an operator alert. Alerts are stored by key and sent as one digest a minute by the cron,
 * so a storm of the same problem is one row and one message, never thousands.
 */
export async function raiseAlert(services: Services, key: string, message: string): Promise<void> {
  log('error', 'alert', { alert: key, message });
  try {
    await services.operations.raiseAlertStatement(key, message, services.now()).run();
  } catch (error) {
    log('error', 'alert.store_failed', { alert: key, error: String(error) });
  }
}

/** Formats pending alerts as one Slack-compatible message. */
export function alertDigest(alerts: readonly PendingAlert[], environment: string): { text: string } {
  const lines = alerts.map((a) => `• ${a.message}${a.count > 1 ? ` (×${a.count} since ${a.firstAt})` : ''}`);
  return {
    text: `:rotating_light: Herald (${environment}): ${alerts.length} alert${alerts.length === 1 ? '' : 's'}\n${lines.join('\n')}`,
  };
}

/** Sends the digest of pending alerts to ALERT_WEBHOOK_URL; puts them back if that fails. */
export async function flushAlerts(
  services: Services,
  fetcher: typeof fetch = (i, init) => fetch(i, init),
): Promise<number> {
  const repo = services.operations;
  const alerts = await repo.takeAlerts();
  if (alerts.length === 0) return 0;
  const url = services.env.ALERT_WEBHOOK_URL;
  if (!url) return alerts.length;
  try {
    const response = await fetcher(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(alertDigest(alerts, services.env.ENVIRONMENT ?? 'production')),
      signal: AbortSignal.timeout(10_000),
    });
    if (!response.ok) throw new Error(`alert webhook answered ${response.status}`);
  } catch (error) {
    log('error', 'alert.send_failed', { count: alerts.length, error: String(error) });
    await repo.restoreAlerts(alerts);
    return 0;
  }
  return alerts.length;
}

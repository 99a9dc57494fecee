import { log } from '../../lib/log';
import type { Services } from '../container';
import { flushAlerts } from './alerts';
import { checkBacklog } from './metrics';
import { sweepStuckDeliveries } from './sweeper';

/** The minute cron: re-enqueue what was written but not queued, then send the alert digest. */
export async function runMinuteCron(services: Services, scheduledTimeMs: number): Promise<void> {
  const wide = new Date(scheduledTimeMs).getUTCMinutes() === 0;
  const started = Date.now();
  const swept = await sweepStuckDeliveries(services, wide);
  await checkBacklog(services, { scheduledTimeMs, wide });
  await services.callbackReplays.prune(services.now());
  const alerts = await flushAlerts(services);
  log('info', 'cron.done', { swept, alerts, wide, durationMs: Date.now() - started });
}

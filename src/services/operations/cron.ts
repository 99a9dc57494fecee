import { log } from '../../lib/log';
import type { Services } from '../container';
import { type AlertFetch, describeError, flushAlerts, raiseAlert } from './alerts';
import { runBacklogCheck } from './metrics';
import { reapLostDeliveries } from './reaper';
import { retainDeliveries } from './retention';
import { sweepStuckDeliveries } from './sweeper';

/** The steps of the minute cron, in the order they run; the alert digest always comes last. */
export type CronStep = 'sweeper' | 'reaper' | 'retention' | 'backlog' | 'replay-keys' | 'digest';

/** What one run of the minute cron did. */
export interface CronReport {
  wide: boolean;
  swept: number;
  reaped: number;
  retained: number;
  alerts: number;
  /** The steps that threw (each raised an alert of its own). */
  failed: CronStep[];
}

/**
 * Runs one step on its own: a step that throws is logged and raises the alert `cron:<step>` (which,
 * when D1 is what failed, goes straight to the webhook), and the cron goes on with the next step.
 */
async function runStep<T>(
  services: Services,
  report: CronReport,
  step: CronStep,
  work: () => Promise<T>,
  fetcher?: AlertFetch,
): Promise<T | undefined> {
  try {
    return await work();
  } catch (error) {
    report.failed.push(step);
    log('error', 'cron.step_failed', { step, error: String(error) });
    await raiseAlert(
      services,
      `cron:${step}`,
      `the cron's ${step} step failed: ${describeError(error)}`,
      fetcher,
    );
    return undefined;
  }
}

/**
 * The minute cron: re-enqueue what was written but not queued (the sweeper), once an hour what is
 * waiting without a message (the reaper) and what is older than the retention (archived, then
 * removed), watch the backlog, prune provider-callback replay keys,
 * then send the alert digest. Each step runs on its own: one that fails never skips the others or
 * the digest, and raises an alert itself.
 */
export async function runMinuteCron(
  services: Services,
  scheduledTimeMs: number,
  options: { fetch?: AlertFetch } = {},
): Promise<CronReport> {
  const wide = new Date(scheduledTimeMs).getUTCMinutes() === 0;
  const started = Date.now();
  const report: CronReport = { wide, swept: 0, reaped: 0, retained: 0, alerts: 0, failed: [] };
  const run = <T>(step: CronStep, work: () => Promise<T>) =>
    runStep(services, report, step, work, options.fetch);
  report.swept = (await run('sweeper', () => sweepStuckDeliveries(services, wide))) ?? 0;
  if (wide) report.reaped = (await run('reaper', () => reapLostDeliveries(services))) ?? 0;
  if (wide) report.retained = (await run('retention', () => retainDeliveries(services))) ?? 0;
  await run('backlog', () => runBacklogCheck(services, { scheduledTimeMs, wide }));
  await run('replay-keys', () => services.callbackReplays.prune(services.now()));
  report.alerts = (await run('digest', () => flushAlerts(services, options.fetch))) ?? 0;
  log(report.failed.length > 0 ? 'error' : 'info', 'cron.done', {
    swept: report.swept,
    reaped: report.reaped,
    retained: report.retained,
    alerts: report.alerts,
    failed: report.failed.join(','),
    wide,
    durationMs: Date.now() - started,
  });
  return report;
}

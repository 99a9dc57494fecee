import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_REAPED_PER_TICK, REAPED_DELAY_SECONDS } from '../../src/services/operations/reaper';
import { type BulkDeliveries, delivery, insertDeliveries, statusesOf } from '../helpers/deliveries';
import { atTime, envWithCapturedQueues, runCron, unusedCronTime } from '../helpers/queues';

afterEach(() => vi.useRealTimers());

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** One row of each kind the reaper must tell apart, around the cron time `at`. */
async function waitingRows(at: number) {
  const one = (options: Omit<BulkDeliveries, 'count'>) =>
    insertDeliveries({ channel: 'push', ...options, count: 1 }).then(([id]) => id ?? '');
  return {
    lost: {
      // queued, untouched for 14 h: a dead-letter message whose retries ran out, say
      queued: await one({ atMs: at - 20 * HOUR, status: 'queued', updatedAtMs: at - 14 * HOUR }),
      // deferred two days ago, its message gone
      deferred: await one({ atMs: at - 3 * DAY, status: 'deferred', updatedAtMs: at - 2 * DAY }),
      // created five days ago, outside every sweeper window
      created: await one({ atMs: at - 5 * DAY, status: 'created' }),
      // scheduled for 14 h ago and not touched since it was accepted
      scheduled: await one({ atMs: at - 30 * HOUR, status: 'queued', sendAtMs: at - 14 * HOUR }),
    },
    alive: {
      // touched 12 h ago: its message may still wait out a 12 h delay
      recent: await one({ atMs: at - 20 * HOUR, status: 'queued', updatedAtMs: at - 12 * HOUR }),
      // due 10 h ago: a scheduled send hops in 12 h steps without writing its row
      hopping: await one({ atMs: at - 30 * HOUR, status: 'queued', sendAtMs: at - 10 * HOUR }),
      // final
      sent: await one({ atMs: at - 20 * HOUR, status: 'sent', updatedAtMs: at - 19 * HOUR }),
      // older than the reaper's seven days
      ancient: await one({ atMs: at - 8 * DAY, status: 'queued' }),
    },
  };
}

describe('reaper', () => {
  it('re-enqueues waiting deliveries whose message is gone, once, in the hourly run', async () => {
    const captured = envWithCapturedQueues();
    const at = unusedCronTime(true);
    const rows = await waitingRows(at);
    const lost = Object.values(rows.lost);

    // A run that is not the hourly one leaves them.
    await atTime(at - 30 * MINUTE, () => runCron(captured.env, at - 30 * MINUTE));
    expect(captured.queues.push.ids()).toEqual([]);

    await atTime(at, () => runCron(captured.env, at));
    expect([...captured.queues.push.ids()].sort()).toEqual([...lost].sort());
    // An hour and more later: a message alive after all (one carrying an answer hops ≤ 1 h) goes first.
    expect(captured.queues.push.sent.map((m) => m.delaySeconds)).toEqual([REAPED_DELAY_SECONDS]);
    expect(REAPED_DELAY_SECONDS).toBeGreaterThan(3600);
    const statuses = await statusesOf([...lost, ...Object.values(rows.alive)]);
    for (const id of lost) expect(statuses.get(id)).toBe('queued');
    expect(statuses.get(rows.alive.sent)).toBe('sent');
    expect((await delivery(rows.lost.deferred)).history.at(-1)).toMatchObject({
      status: 'queued',
      reason: 're-enqueued by the reaper',
    });

    // Re-enqueued rows were touched just now: the next hourly run leaves them to their messages.
    await atTime(at + HOUR, () => runCron(captured.env, at + HOUR));
    expect(captured.queues.push.ids()).toHaveLength(lost.length);
  });

  it('gives back what the queue refused, and takes it again in the next hourly run', async () => {
    const captured = envWithCapturedQueues();
    const at = unusedCronTime(true);
    const rows = await waitingRows(at);
    const lost = Object.values(rows.lost);
    captured.queues.push.fail = true;

    await atTime(at, () => runCron(captured.env, at));
    const given = await statusesOf(lost);
    for (const id of lost) expect(given.get(id)).toBe('created');

    captured.queues.push.fail = false;
    await atTime(at + HOUR, () => runCron(captured.env, at + HOUR));
    expect([...captured.queues.push.ids()].sort()).toEqual([...lost].sort());
  });

  it('one run claims at most 5,000 rows and leaves the rest for the next hour', async () => {
    const captured = envWithCapturedQueues();
    const at = unusedCronTime(true);
    const ids = await insertDeliveries({
      count: MAX_REAPED_PER_TICK + 20,
      atMs: at - 3 * DAY,
      channel: 'chat',
      status: 'queued',
    });
    await atTime(at, () => runCron(captured.env, at));
    expect(captured.queues.chat.ids()).toEqual(ids.slice(0, MAX_REAPED_PER_TICK));
    await atTime(at + HOUR, () => runCron(captured.env, at + HOUR));
    expect(captured.queues.chat.ids()).toEqual(ids);
  });
});

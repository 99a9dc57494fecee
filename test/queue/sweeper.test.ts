import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_SWEPT_PER_TICK } from '../../src/services/operations/sweeper';
import { delivery, insertDeliveries, statusesOf } from '../helpers/deliveries';
import { atTime, envWithCapturedQueues, runCron, unusedCronTime } from '../helpers/queues';

afterEach(() => vi.useRealTimers());

const MINUTE = 60_000;

/** How many of `ids` have each status. */
async function countByStatus(ids: readonly string[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const status of (await statusesOf(ids)).values()) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

describe('sweeper', () => {
  it('a channel whose queue refuses does not strand the claimed rows of the other channels', async () => {
    const captured = envWithCapturedQueues();
    const at = unusedCronTime();
    // The refusing channel's rows come first in id order, so they are claimed (and refused) first.
    const email = await insertDeliveries({ count: 3, atMs: at - 10 * MINUTE, channel: 'email' });
    const sms = await insertDeliveries({ count: 3, atMs: at - 9 * MINUTE, channel: 'sms' });
    const push = await insertDeliveries({ count: 2, atMs: at - 8 * MINUTE, channel: 'push' });
    captured.queues.email.fail = true;

    await atTime(at, () => runCron(captured.env, at));
    expect(captured.queues.sms.ids()).toEqual(sms);
    expect(captured.queues.push.ids()).toEqual(push);
    expect(await countByStatus([...sms, ...push])).toEqual({ queued: 5 });
    // The refused rows are given back, with a history entry, for the next minute.
    expect(await countByStatus(email)).toEqual({ created: 3 });
    expect((await delivery(email[0] ?? '')).history.at(-1)).toMatchObject({
      status: 'created',
      reason: 'the queue refused the re-enqueue; left for the next pass',
    });

    captured.queues.email.fail = false;
    await atTime(at + MINUTE, () => runCron(captured.env, at + MINUTE));
    expect(captured.queues.email.ids()).toEqual(email);
    expect(captured.queues.sms.ids()).toEqual(sms);
    expect(await countByStatus(email)).toEqual({ queued: 3 });
  });

  it('one run claims at most 5,000 rows and leaves the rest for the next minute', async () => {
    const captured = envWithCapturedQueues();
    const at = unusedCronTime();
    const ids = await insertDeliveries({
      count: MAX_SWEPT_PER_TICK + 150,
      atMs: at - 10 * MINUTE,
      channel: 'sms',
    });
    expect(MAX_SWEPT_PER_TICK).toBe(5_000);

    await atTime(at, () => runCron(captured.env, at));
    expect(captured.queues.sms.ids()).toEqual(ids.slice(0, MAX_SWEPT_PER_TICK));
    expect(await countByStatus(ids)).toEqual({ queued: MAX_SWEPT_PER_TICK, created: 150 });

    await atTime(at + MINUTE, () => runCron(captured.env, at + MINUTE));
    expect(captured.queues.sms.ids()).toEqual(ids);
    expect(await countByStatus(ids)).toEqual({ queued: ids.length });
  });
});

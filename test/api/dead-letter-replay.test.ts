import { describe, expect, it } from 'vitest';
import { api, json } from '../helpers/api';
import { delivery } from '../helpers/deliveries';
import { type CapturedEnv, deadLetter, envWithCapturedQueues, sendNotification } from '../helpers/queues';

/** Email deliveries that spent their attempts: `failed`, with a dead letter waiting for replay. */
async function deadLetters(captured: CapturedEnv, count: number): Promise<string[]> {
  const accepted = await sendNotification(captured, {
    type: 'security_alert',
    recipients: Array.from({ length: count }, (_, i) => ({ email: `r${i}@example.com` })),
  });
  const ids = accepted.deliveries.map((d) => d.id);
  await deadLetter(captured.env, 'email', ids);
  captured.queues.email.sent.splice(0);
  return ids;
}

const replay = (captured: CapturedEnv, body: Record<string, unknown>) =>
  api('POST', '/v1/admin/dead-letters/replay', body, { env: captured.env }).then((res) =>
    json<{ replayed: number; ids: string[] }>(res),
  );

async function listed(ids: readonly string[]): Promise<string[]> {
  const { data } = await json<{ data: { deliveryId: string }[] }>(
    await api('GET', '/v1/admin/dead-letters?channel=email&limit=1000'),
  );
  return data.map((d) => d.deliveryId).filter((id) => ids.includes(id));
}

describe('dead-letter replay', () => {
  it('two replays at once enqueue each dead letter once', async () => {
    const captured = envWithCapturedQueues();
    const ids = await deadLetters(captured, 3);

    const answers = await Promise.all([replay(captured, { ids }), replay(captured, { ids })]);
    expect(answers.map((a) => a.replayed).sort()).toEqual([0, 3]);
    expect([...captured.queues.email.ids()].sort()).toEqual([...ids].sort());
    for (const id of ids) expect(await delivery(id)).toMatchObject({ status: 'queued', attempts: 0 });
    expect(await listed(ids)).toEqual([]);
  });

  it('a replay the queue refuses leaves the deliveries failed and their dead letters replayable', async () => {
    const captured = envWithCapturedQueues();
    const ids = await deadLetters(captured, 2);
    captured.queues.email.fail = true;

    expect(await replay(captured, { ids })).toEqual({ replayed: 0, ids: [] });
    for (const id of ids) {
      const d = await delivery(id);
      expect(d.status).toBe('failed');
      expect(d.history.at(-1)).toMatchObject({
        status: 'failed',
        reason: 'replay not enqueued (the queue refused it); replay it again',
      });
    }
    expect([...(await listed(ids))].sort()).toEqual([...ids].sort());

    captured.queues.email.fail = false;
    const again = await replay(captured, { ids });
    expect([...again.ids].sort()).toEqual([...ids].sort());
    expect([...captured.queues.email.ids()].sort()).toEqual([...ids].sort());
    for (const id of ids) expect((await delivery(id)).status).toBe('queued');
  });
});

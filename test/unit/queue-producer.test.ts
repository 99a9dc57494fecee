import { describe, expect, it } from 'vitest';
import { MAX_IDS_PER_MESSAGE, type QueueMessage } from '../../src/queue/messages';
import { type ChannelQueues, messagesOf, sendToQueue } from '../../src/queue/producer';

/** A queue that records each sendBatch call, and refuses the calls listed in `failOn`. */
class RecordingQueue {
  readonly calls: MessageSendRequest<QueueMessage>[][] = [];
  constructor(private readonly failOn: ReadonlySet<number> = new Set()) {}
  async send(): Promise<void> {
    throw new Error('the producer sends in batches only');
  }
  async sendBatch(messages: Iterable<MessageSendRequest<QueueMessage>>): Promise<void> {
    const call = [...messages];
    const index = this.calls.length;
    this.calls.push(call);
    if (this.failOn.has(index)) throw new Error('queue unavailable');
  }
}

function queues(overrides: Partial<Record<keyof ChannelQueues, RecordingQueue>> = {}) {
  const names = ['EMAIL', 'SMS', 'PUSH', 'CHAT', 'WEBHOOK'].flatMap((c) => [`QUEUE_${c}`, `DLQ_${c}`]);
  const all = Object.fromEntries(
    names.map((n) => [n, overrides[n as keyof ChannelQueues] ?? new RecordingQueue()]),
  );
  return all as unknown as ChannelQueues & Record<keyof ChannelQueues, RecordingQueue>;
}

const ids = (n: number, prefix = 'dlv_') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe('the queue producer', () => {
  it('packs at most MAX_IDS_PER_MESSAGE ids per message, ids only, with the attempt, delay and hand-over time', () => {
    const messages = messagesOf({ deliveryIds: ids(120), attempt: 2, delaySeconds: 30, at: 1234 });
    expect(messages.map((m) => m.body.deliveryIds.length)).toEqual([
      MAX_IDS_PER_MESSAGE,
      MAX_IDS_PER_MESSAGE,
      20,
    ]);
    expect(messages[0]).toEqual({
      body: { v: 1, deliveryIds: ids(120).slice(0, 50), attempt: 2, at: 1234 },
      contentType: 'json',
      delaySeconds: 30,
    });
  });

  it('leaves out a zero delay and a missing hand-over time', () => {
    expect(messagesOf({ deliveryIds: ['dlv_a'], attempt: 0, delaySeconds: 0 })).toEqual([
      { body: { v: 1, deliveryIds: ['dlv_a'], attempt: 0 }, contentType: 'json' },
    ]);
  });

  it('sends at most 100 messages per sendBatch call to the channel queue', async () => {
    const q = queues();
    const result = await sendToQueue(q, 'sms', [{ deliveryIds: ids(101 * 50), attempt: 0 }], 'sweeper');
    expect(q.QUEUE_SMS.calls.map((c) => c.length)).toEqual([100, 1]);
    expect(result).toEqual({ sent: ids(101 * 50), unsent: [] });
    expect(q.QUEUE_EMAIL.calls).toEqual([]);
  });

  it('a refused call gives its ids back as unsent and the other calls still go', async () => {
    const q = queues({ QUEUE_PUSH: new RecordingQueue(new Set([0])) });
    const result = await sendToQueue(q, 'push', [{ deliveryIds: ids(101 * 50), attempt: 0 }], 'ingest');
    expect(result.unsent).toEqual(ids(100 * 50));
    expect(result.sent).toEqual(ids(101 * 50).slice(100 * 50));
  });

  it('the dead-letter option sends to the channel dead-letter queue', async () => {
    const q = queues();
    await sendToQueue(q, 'webhook', [{ deliveryIds: ['dlv_x'], attempt: 7 }], 'consumer', {
      deadLetter: true,
    });
    expect(q.DLQ_WEBHOOK.calls).toEqual([
      [{ body: { v: 1, deliveryIds: ['dlv_x'], attempt: 7 }, contentType: 'json' }],
    ]);
    expect(q.QUEUE_WEBHOOK.calls).toEqual([]);
  });

  it('nothing to send makes no call', async () => {
    const q = queues();
    expect(await sendToQueue(q, 'chat', [], 'replay')).toEqual({ sent: [], unsent: [] });
    expect(q.QUEUE_CHAT.calls).toEqual([]);
  });
});

import { createExecutionContext, createMessageBatch, getQueueResult } from 'cloudflare:test';
import type { Env } from '../../src/config/env';
import type { Channel } from '../../src/domain/channels';
import worker from '../../src/index';
import type { QueueMessage } from '../../src/queue/messages';
import { testEnv } from './api';

/** A queue binding that records what is sent to it instead of delivering it. */
export class CapturingQueue {
  readonly sent: { body: QueueMessage; delaySeconds?: number }[] = [];
  fail = false;

  async send(body: QueueMessage, options?: QueueSendOptions): Promise<void> {
    if (this.fail) throw new Error('queue unavailable');
    this.sent.push({ body, ...(options?.delaySeconds ? { delaySeconds: options.delaySeconds } : {}) });
  }

  async sendBatch(messages: Iterable<MessageSendRequest<QueueMessage>>): Promise<void> {
    if (this.fail) throw new Error('queue unavailable');
    for (const m of messages)
      this.sent.push({ body: m.body, ...(m.delaySeconds ? { delaySeconds: m.delaySeconds } : {}) });
  }

  ids(): string[] {
    return this.sent.flatMap((m) => m.body.deliveryIds);
  }
}

export interface CapturedEnv {
  env: Env;
  queues: Record<Channel, CapturingQueue>;
  dlqs: Record<Channel, CapturingQueue>;
}

/** The test env with every queue replaced by a capturing one, so no background consumer runs. */
export function envWithCapturedQueues(overrides: Record<string, unknown> = {}): CapturedEnv {
  const make = () => ({
    email: new CapturingQueue(),
    sms: new CapturingQueue(),
    push: new CapturingQueue(),
    chat: new CapturingQueue(),
    webhook: new CapturingQueue(),
  });
  const queues = make();
  const dlqs = make();
  const env = {
    ...testEnv,
    QUEUE_EMAIL: queues.email,
    QUEUE_SMS: queues.sms,
    QUEUE_PUSH: queues.push,
    QUEUE_CHAT: queues.chat,
    QUEUE_WEBHOOK: queues.webhook,
    DLQ_EMAIL: dlqs.email,
    DLQ_SMS: dlqs.sms,
    DLQ_PUSH: dlqs.push,
    DLQ_CHAT: dlqs.chat,
    DLQ_WEBHOOK: dlqs.webhook,
    ...overrides,
  } as unknown as Env;
  return { env, queues, dlqs };
}

let sequence = 0;

/** Runs the Worker's queue() handler on these bodies and returns what it acked and retried. */
export async function runConsumer(env: Env, queue: string, bodies: QueueMessage[], attempts = 1) {
  const messages = bodies.map((body) => {
    sequence += 1;
    return { id: `msg-${sequence}`, timestamp: new Date(), attempts, body };
  });
  const batch = createMessageBatch<QueueMessage>(queue, messages);
  const ctx = createExecutionContext();
  await worker.queue(batch, env, ctx);
  const result = await getQueueResult(batch, ctx);
  return { result, messageIds: messages.map((m) => m.id) };
}

/** Captured queues and real email providers: Resend first, SendGrid as its failover. */
export const resendSendgridEnv = (extra: Record<string, unknown> = {}) =>
  envWithCapturedQueues({
    EMAIL_PROVIDERS: 'resend,sendgrid',
    RESEND_API_KEY: 're_test_key',
    SENDGRID_API_KEY: 'SG.test_key',
    EMAIL_FROM: 'Herald <noreply@example.com>',
    ...extra,
  });

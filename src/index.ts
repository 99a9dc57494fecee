import { createApp } from './api/app';
import type { Env } from './env';
import { handleQueueBatch } from './queue/consumer';

export { Recipient } from './durable/recipient';

const app = createApp();

export default {
  fetch: app.fetch,
  async queue(batch, env, _ctx) {
    await handleQueueBatch(batch, env);
  },
  async scheduled(_controller, _env, _ctx) {},
} satisfies ExportedHandler<Env>;

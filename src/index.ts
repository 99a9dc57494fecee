import { createApp } from './api/app';
import type { Env } from './config/env';
import { handleQueueBatch } from './consumer/queue-handler';
import { createServices } from './services/container';
import { runMinuteCron } from './services/operations/cron';

export { Recipient } from './durable/recipient';

const app = createApp();

export default {
  fetch: app.fetch,
  async queue(batch, env, _ctx) {
    await handleQueueBatch(batch, env);
  },
  async scheduled(controller, env, _ctx) {
    await runMinuteCron(createServices(env), controller.scheduledTime);
  },
} satisfies ExportedHandler<Env>;

import { createApp } from './api/app';
import type { Env } from './env';
import { handleQueueBatch } from './queue/consumer';
import { createServices } from './services/context';
import { runMinuteCron } from './services/scheduled';

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

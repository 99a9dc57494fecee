import { createApp } from './api/app';
import { EnvError, parseEnv } from './config/env';
import { handleQueueBatch } from './consumer/queue-handler';
import type { OpenDigest, StepTimer } from './durable/digest-storage';
import { type InboxChange, InboxObject } from './durable/inbox';
import { Recipient as RecipientObject } from './durable/recipient';
import { log } from './lib/log';
import { createServices } from './services/container';
import { runMinuteCron } from './services/operations/cron';
import { releaseDigest } from './services/operations/digests';
import { releaseSteps } from './services/operations/escalation';
import { recordInboxEvents } from './services/tracking/inbox-events';

/**
 * The Recipient Durable Object as deployed: a digest whose window closed, and an escalation step
 * whose time came, are sent through the queue.
 */
export class Recipient extends RecipientObject {
  protected override async releaseDigest(digest: OpenDigest): Promise<void> {
    await releaseDigest(await this.services(), digest);
  }

  protected override async releaseSteps(timers: StepTimer[]): Promise<void> {
    await releaseSteps(await this.services(), timers);
  }

  private async services() {
    const services = createServices(parseEnv(this.env as Record<string, unknown>));
    await services.router.refresh(services.now());
    return services;
  }
}

/**
 * The inbox Durable Object as deployed: a mark sent on a socket records its delivery events
 * (read → opened, click → clicked) in D1 as the HTTP routes do.
 */
export class Inbox extends InboxObject {
  protected override async onSocketMarks(change: InboxChange): Promise<void> {
    const services = createServices(parseEnv(this.env as Record<string, unknown>));
    await services.router.refresh(services.now());
    await recordInboxEvents(services, change);
  }
}

const app = createApp();

/** A Worker whose configuration is unusable answers every request with what is wrong (names only). */
function misconfigured(error: EnvError): Response {
  log('error', 'config.invalid', { problems: error.problems.join('; ') });
  return Response.json(
    { error: { code: 'misconfigured', message: error.message, details: error.problems } },
    { status: 500 },
  );
}

/** The Worker: the env is parsed once at this edge, so everything inside reads a checked `Env`. */
export default {
  fetch(request: Request, rawEnv: Record<string, unknown>, ctx: ExecutionContext) {
    let env: ReturnType<typeof parseEnv>;
    try {
      env = parseEnv(rawEnv);
    } catch (error) {
      if (error instanceof EnvError) return misconfigured(error);
      throw error;
    }
    return app.fetch(request, env, ctx);
  },
  async queue(batch, rawEnv, _ctx) {
    // A configuration error throws here: the whole batch is retried, nothing is acked unread.
    await handleQueueBatch(batch, parseEnv(rawEnv));
  },
  async scheduled(controller, rawEnv, _ctx) {
    const services = createServices(parseEnv(rawEnv));
    await services.router.refresh(services.now());
    await runMinuteCron(services, controller.scheduledTime);
  },
} satisfies ExportedHandler<Record<string, unknown>>;

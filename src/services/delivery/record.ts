import { raiseAlert } from '../operations/alerts';
import { recordStatusChange } from '../operations/metrics';
import type { DeliveryBatch } from './batch';
import { cleanupStatements, spareMassPrune } from './contact-cleanup';

/**
 * Step 10: what the sandbox captured goes to its outbox (apart, as a provider's own record would
 * be); then every outcome and contact clean-up of the batch is one D1 commit; then one Analytics
 * Engine data point per status change.
 */
export async function recordBatch(batch: DeliveryBatch): Promise<void> {
  const { services, channel, now } = batch;
  if (spareMassPrune(channel, batch.pending)) {
    await raiseAlert(
      services,
      'apns-bad-device-token-batch',
      'APNs answered BadDeviceToken for every token of a batch: check APNS_ENVIRONMENT (sandbox/production) and APNS_TOPIC; tokens were kept',
    );
  }
  await recordOutbox(batch);
  const statements = [...batch.pending.values()].map((p) =>
    services.deliveries.outcomeStatement(p.outcome, now),
  );
  const cleanups = [...batch.pending.values()].flatMap((p) => (p.cleanup ? [p.cleanup] : []));
  statements.push(...(await cleanupStatements(services, cleanups, batch.contacts, now)));
  await services.commit(statements);
  for (const [id, p] of batch.pending) {
    batch.decisions.set(id, p.decision);
    const delivery = batch.loaded.get(id);
    if (!delivery) continue;
    recordStatusChange(services.env, {
      deliveryId: id,
      notificationId: delivery.notificationId,
      channel,
      type: delivery.type,
      status: p.outcome.status,
      provider: p.outcome.provider ?? null,
    });
  }
}

async function recordOutbox(batch: DeliveryBatch): Promise<void> {
  if (batch.captured.length === 0) return;
  const { services, channel, now } = batch;
  await services.env.DB.batch(
    batch.captured.map((request) =>
      services.outbox.insertStatement(
        {
          deliveryId: request.deliveryId,
          notificationId: request.notificationId,
          userId: batch.loaded.get(request.deliveryId)?.userId ?? null,
          channel,
          address: request.address,
          message: request.message,
        },
        now,
      ),
    ),
  );
}

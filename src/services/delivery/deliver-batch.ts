import type { Channel } from '../../domain/channels';
import type { Services } from '../container';
import type { Decision } from './batch';
import { foldIntoDigests } from './digest-fold';
import { type BatchInput, loadBatch, loadContacts, loadTypeConfigs, openChain, triage } from './load';
import { askRecipients, releaseUnsentOf } from './recipient-gate';
import { recordBatch } from './record';
import { sendAllowed } from './send';
import { checkSuppressions } from './suppression-check';
import { applyPreferences } from './user-preferences';

export type { Decision } from './batch';

/**
 * Delivers one queue batch of a channel as a pipeline of small steps over one batch object:
 * load → provider chain → contacts → triage → type configs → digests → preferences → suppression list →
 * recipient rules → compose and send (each answer recorded at once) → release unsent → record.
 * Every delivery id ends with a decision for the queue consumer; one query loads the batch.
 */
export async function deliverBatch(
  services: Services,
  channel: Channel,
  ids: readonly string[],
  options: BatchInput = {},
): Promise<Map<string, Decision>> {
  const batch = await loadBatch(services, channel, ids, options);
  if (!(await openChain(batch))) return batch.decisions;
  await loadContacts(batch);
  triage(batch);
  await loadTypeConfigs(batch);
  await foldIntoDigests(batch);
  await applyPreferences(batch);
  await checkSuppressions(batch);
  await askRecipients(batch);
  const allowed = batch.todo;
  await sendAllowed(batch);
  await releaseUnsentOf(batch, allowed);
  await recordBatch(batch);
  return batch.decisions;
}

import type { Channel } from '../../domain/channels';
import type { ProviderDeps } from '../../providers/types';
import type { Services } from '../container';
import type { Decision } from './batch';
import { loadBatch, loadContacts, loadTypeConfigs, openChain, triage } from './load';
import { askRecipients, releaseUnsentOf } from './recipient-gate';
import { recordBatch } from './record';
import { sendAllowed } from './send';
import { applyPreferences } from './user-preferences';

export type { Decision } from './batch';

/**
 * Delivers one queue batch of a channel as a pipeline of small steps over one batch object:
 * load → provider chain → contacts → triage → type configs → preferences → recipient rules →
 * compose and send → release unsent → record. Every delivery id ends with a decision for the
 * queue consumer; one query loads the batch and one D1 commit records it.
 */
export async function deliverBatch(
  services: Services,
  channel: Channel,
  ids: readonly string[],
  options: { deps?: ProviderDeps; handedAt?: ReadonlyMap<string, number> } = {},
): Promise<Map<string, Decision>> {
  const batch = await loadBatch(services, channel, ids, options);
  if (!(await openChain(batch))) return batch.decisions;
  await loadContacts(batch);
  triage(batch);
  await loadTypeConfigs(batch);
  await applyPreferences(batch);
  await askRecipients(batch);
  const allowed = batch.todo;
  await sendAllowed(batch);
  await releaseUnsentOf(batch, allowed);
  await recordBatch(batch);
  return batch.decisions;
}

import { AppError } from '../../domain/errors';
import { isId, isType } from '../../domain/identifiers';
import type { Services } from '../container';
import { type Accepted, acceptNotifications, type NotificationInput } from '../ingest/accept';
import { cancelNotification } from '../ingest/cancel';
import { claimIdempotencyKey, idFromKey, keyReused, releaseIdempotencyKey } from './idempotency';

/** Novu's TriggerEventResponseDto, as Herald fills it. */
export interface TriggerResult {
  acknowledged: true;
  status: 'processed' | 'error';
  transactionId?: string;
  error?: string[];
}

/** Triggers as the route validated them, with what the idempotency key needs. */
export interface TriggerRequest {
  /** Herald's notifications in request order; `id` is the transactionId when one was given. */
  inputs: readonly NotificationInput[];
  idempotencyKey?: string;
  /** The method and path, and the body as sent: what a written-down key is bound to. */
  scope: string;
  body: unknown;
}

export interface TriggerAnswer {
  results: TriggerResult[];
  /** Nothing new was accepted: every trigger was answered before (Novu's `Idempotency-Replay`). */
  replayed: boolean;
}

/** Novu's answer for a workflow it does not know; Herald's type without templates is one. */
export const WORKFLOW_NOT_FOUND = 'workflow_not_found';

export const workflowNotFound = (type: string) =>
  new AppError(422, WORKFLOW_NOT_FOUND, WORKFLOW_NOT_FOUND, [
    { field: 'name', message: `no workflow "${type}": Herald has no templates for this notification type` },
  ]);

const processed = (accepted: Accepted): TriggerResult => ({
  acknowledged: true,
  status: 'processed',
  transactionId: accepted.id,
});

const failed = (message: string, transactionId?: string): TriggerResult => ({
  acknowledged: true,
  status: 'error',
  error: [message],
  ...(transactionId !== undefined ? { transactionId } : {}),
});

/**
 * What Novu does with a transactionId it has seen: ignore the trigger. Herald says so, without
 * failing the call: a repeated transactionId with the same body is a replay (`processed`), with
 * another body this entry, and nothing is sent either way.
 */
const ignored = (transactionId: string) =>
  failed(
    `transactionId "${transactionId}" was triggered before with a different body; this trigger was ignored`,
    transactionId,
  );

const isConflict = (error: unknown) => error instanceof AppError && error.code === 'idempotency_conflict';
const isUnknownType = (error: unknown) => error instanceof AppError && error.code === 'unknown_type';

/**
 * `POST /v1/events/trigger`: one notification. With an idempotency key and no transactionId the
 * key is the notification id; with both, the key is written down (see ./idempotency.ts).
 */
export async function triggerOne(services: Services, request: TriggerRequest): Promise<TriggerAnswer> {
  const [input] = request.inputs;
  if (!input || request.inputs.length !== 1) throw new Error('triggerOne takes one notification');
  const key = request.idempotencyKey;
  const fromKey = key !== undefined && input.id === undefined;
  const claimed =
    key !== undefined && !fromKey
      ? await claimIdempotencyKey(services, key, request.scope, request.body)
      : false;
  const prepared = fromKey ? { ...input, id: await idFromKey(key) } : input;
  try {
    if (!isType(prepared.type)) throw workflowNotFound(prepared.type);
    const [accepted] = await acceptNotifications(services, [prepared]);
    if (!accepted) throw new Error('no notification accepted');
    // A replay of this key: written down (with a transactionId), or the key is the id. The same
    // transactionId under a fresh key (the SDK's next call) is not one, as in Novu.
    return { results: [processed(accepted)], replayed: claimed || (fromKey && accepted.replayed) };
  } catch (error) {
    await releaseIdempotencyKey(services);
    if (isConflict(error) && key !== undefined && fromKey) throw keyReused(key);
    if (isConflict(error) && prepared.id !== undefined)
      return { results: [ignored(prepared.id)], replayed: false };
    if (isUnknownType(error)) throw workflowNotFound(prepared.type);
    throw error;
  }
}

/** The types among `inputs` that have templates (one read per type, cached per request). */
async function knownTypes(services: Services, inputs: readonly NotificationInput[]): Promise<Set<string>> {
  const types = [...new Set(inputs.map((i) => i.type))].filter(isType);
  const templated = await Promise.all(
    types.map(async (t) => (await services.templates.channelsOf(t)).length > 0),
  );
  return new Set(types.filter((_, i) => templated[i]));
}

/** One event of a bulk request alone, its refusal as its entry (Novu answers per event). */
async function acceptAlone(services: Services, input: NotificationInput): Promise<TriggerResult> {
  try {
    const [accepted] = await acceptNotifications(services, [input]);
    if (!accepted) throw new Error('no notification accepted');
    return processed(accepted);
  } catch (error) {
    if (!(error instanceof AppError) || error.status >= 500) throw error;
    if (isConflict(error) && input.id !== undefined) return ignored(input.id);
    return failed(isUnknownType(error) ? WORKFLOW_NOT_FOUND : error.message);
  }
}

/**
 * The events Herald knows the workflow of go in one accept (one commit); an event it refuses
 * fails that accept whole without writing anything, and then each event goes alone, so every
 * other event still gets its answer. Unknown workflows are entries, as in Novu.
 */
async function acceptEvents(
  services: Services,
  inputs: readonly NotificationInput[],
): Promise<TriggerResult[]> {
  const known = await knownTypes(services, inputs);
  const sendable = inputs.filter((i) => known.has(i.type));
  let together: Accepted[] | null = null;
  try {
    together = sendable.length > 0 ? await acceptNotifications(services, sendable) : [];
  } catch (error) {
    if (!(error instanceof AppError) || error.status >= 500) throw error;
  }
  const results: TriggerResult[] = [];
  for (const input of inputs) {
    if (!known.has(input.type)) results.push(failed(WORKFLOW_NOT_FOUND));
    else {
      const accepted = together?.shift();
      results.push(accepted ? processed(accepted) : await acceptAlone(services, input));
    }
  }
  return results;
}

/**
 * `POST /v1/events/trigger/bulk`: up to 100 events, one answer each. An idempotency key is
 * written down for the whole body, and an event without a transactionId takes the key and its
 * position as its id, so a replay answers the same transactionIds and sends nothing again.
 */
export async function triggerBulk(services: Services, request: TriggerRequest): Promise<TriggerAnswer> {
  const key = request.idempotencyKey;
  const claimed =
    key !== undefined ? await claimIdempotencyKey(services, key, request.scope, request.body) : false;
  try {
    const inputs = await Promise.all(
      request.inputs.map(async (input, index) =>
        input.id === undefined && key !== undefined ? { ...input, id: await idFromKey(key, index) } : input,
      ),
    );
    return { results: await acceptEvents(services, inputs), replayed: claimed };
  } catch (error) {
    await releaseIdempotencyKey(services);
    throw error;
  }
}

/**
 * `DELETE /v1/events/trigger/{transactionId}`: cancels what of the notification has not gone yet
 * (services/ingest/cancel.ts). True when something was canceled; false when nothing was left to
 * cancel or no notification has this id, as Novu answers.
 */
export async function cancelTrigger(services: Services, transactionId: string): Promise<boolean> {
  if (!isId(transactionId)) return false;
  try {
    return (await cancelNotification(services, transactionId)).canceled.length > 0;
  } catch (error) {
    if (error instanceof AppError && error.status === 404) return false;
    throw error;
  }
}

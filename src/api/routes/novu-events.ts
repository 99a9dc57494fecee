import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { AppError } from '../../domain/errors';
import type { Services } from '../../services/container';
import type { NotificationInput } from '../../services/ingest/accept';
import { type NovuTrigger, novuFieldName, novuPath, toNotificationInput } from '../../services/novu/mapping';
import { cancelTrigger, triggerBulk, triggerOne } from '../../services/novu/triggers';
import { checkChannelUrls } from '../../services/recipients/contacts';
import { sendRestrictionProblem } from '../shared/auth';
import { validationError } from '../shared/errors';
import { NotificationInputSchema } from '../shared/schemas';
import type { AppEnv } from '../shared/types';
import { jsonBody, validationHook } from '../shared/validation';
import { NovuBulkTriggerSchema, NovuTriggerResultSchema, NovuTriggerSchema } from './novu-schemas';
import {
  IdempotencyHeaders,
  idempotencyHeaders,
  idempotencyKeyOf,
  NOVU_AUTH,
  NOVU_TAG,
  novuErrorResponses,
  novuSecurity,
} from './novu-shared';

/*
 * Novu's events API: POST /v1/events/trigger, POST /v1/events/trigger/bulk and
 * DELETE /v1/events/trigger/{transactionId}, answered as Novu answers them, so an application
 * using @novu/api keeps its trigger code and points `serverURL` at Herald.
 */

const sendErrors = novuErrorResponses({
  400: true,
  401: true,
  403: true,
  413: true,
  415: true,
  422: 'Validation failed (`errors` names each field), `workflow_not_found` (no templates for this type), or the idempotency-key was used with another body',
  429: true,
  503: true,
});

const trigger = createRoute({
  method: 'post',
  path: '/v1/events/trigger',
  operationId: 'triggerNovuEvent',
  tags: [NOVU_TAG],
  summary: 'Novu: trigger a workflow (one notification)',
  description:
    'Novu’s trigger, mapped to POST /v1/notifications: `name` is the type, `to` the recipients, `payload` the data, `transactionId` the notification id. A repeated transactionId sends nothing again: with the same body it answers the same, with another it answers `status: "error"` and sends nothing. Without a transactionId the idempotency-key is the notification id.' +
    NOVU_AUTH,
  security: novuSecurity,
  request: { headers: IdempotencyHeaders, body: jsonBody(NovuTriggerSchema) },
  responses: {
    201: {
      description: 'Accepted (`Idempotency-Replay: true` when answered before)',
      content: { 'application/json': { schema: z.object({ data: NovuTriggerResultSchema }) } },
    },
    ...sendErrors,
  },
});

const bulk = createRoute({
  method: 'post',
  path: '/v1/events/trigger/bulk',
  operationId: 'triggerNovuEventsBulk',
  tags: [NOVU_TAG],
  summary: 'Novu: trigger up to 100 workflows; one answer per event',
  description:
    'An event Herald cannot send (unknown workflow, a transactionId used with another body) is an entry with `status: "error"`; the others are accepted. An invalid event fails the whole request with a 422, as in Novu.' +
    NOVU_AUTH,
  security: novuSecurity,
  request: { headers: IdempotencyHeaders, body: jsonBody(NovuBulkTriggerSchema) },
  responses: {
    201: {
      description: 'One entry per event, in request order',
      content: { 'application/json': { schema: z.object({ data: z.array(NovuTriggerResultSchema) }) } },
    },
    ...sendErrors,
  },
});

const cancel = createRoute({
  method: 'delete',
  path: '/v1/events/trigger/{transactionId}',
  operationId: 'cancelNovuTrigger',
  tags: [NOVU_TAG],
  summary: 'Novu: cancel what of a trigger has not gone yet',
  description:
    'DELETE /v1/notifications/{id} by its transactionId: every delivery not yet handed to a provider (waiting in a digest, a later escalation step, a send time, the queue) is canceled. `data` is true when something was canceled, false when nothing was left or no trigger has this id.' +
    NOVU_AUTH,
  security: novuSecurity,
  request: {
    params: z.object({
      transactionId: z
        .string()
        .min(1)
        .max(1024)
        .openapi({ param: { name: 'transactionId', in: 'path' } }),
    }),
  },
  responses: {
    200: {
      description: 'Whether anything was canceled',
      content: { 'application/json': { schema: z.object({ data: z.boolean() }) } },
    },
    ...novuErrorResponses({
      401: true,
      403: true,
      422: 'A transactionId over 1,024 characters',
      429: true,
      503: true,
    }),
  },
});

/** Herald's notifications for these triggers, or the 422 of the first invalid one(s). */
function mapTriggers(
  triggers: readonly NovuTrigger[],
  prefix: PropertyKey[],
): { inputs: NotificationInput[] } | { error: z.ZodError } {
  const inputs: NotificationInput[] = [];
  const issues: z.core.$ZodIssue[] = [];
  triggers.forEach((novu, index) => {
    const at = prefix.length > 0 ? [...prefix, index] : [];
    const parsed = NotificationInputSchema.safeParse(toNotificationInput(novu));
    // A name that cannot be a Herald type is a workflow Herald does not have: the service says so.
    const problems = parsed.success ? [] : parsed.error.issues.filter((i) => i.path[0] !== 'type');
    for (const issue of problems)
      issues.push({
        ...issue,
        path: [...at, ...novuPath(issue.path, Array.isArray(novu.to))],
      } as z.core.$ZodIssue);
    if (problems.length === 0)
      inputs.push(parsed.success ? (parsed.data as NotificationInput) : toNotificationInput(novu));
  });
  return issues.length > 0 ? { error: new z.ZodError(issues) } : { inputs };
}

/**
 * What POST /v1/notifications checks besides the schema: the key's restrictions (403) and the
 * inline chat URLs (the SSRF guard), named as the Novu body names them.
 */
function checkSendable(
  c: Context<AppEnv>,
  services: Services,
  inputs: readonly NotificationInput[],
  toLists: readonly boolean[],
  bulk: boolean,
) {
  const problem = sendRestrictionProblem(c.var.apiKey, inputs, bulk ? 'events' : undefined);
  if (problem) {
    const field = problem.field.replace(/type$/, 'name');
    throw new AppError(403, 'forbidden', problem.message, [{ ...problem, field }]);
  }
  inputs.forEach((input, n) => {
    const toIsList = toLists[n] ?? true;
    input.recipients.forEach((recipient, index) => {
      if (typeof recipient !== 'object' || !('externalChannels' in recipient)) return;
      const field = novuFieldName(`recipients[${index}].externalChannels`, toIsList);
      checkChannelUrls(services, recipient.externalChannels, `${bulk ? `events[${n}].` : ''}${field}`);
    });
  });
}

/**
 * A refusal from ingest (an unknown topic, say) names Herald's fields: named again as the Novu body
 * names them, in `details` and where the message starts with one.
 */
function inNovuTerms(error: unknown, toIsList: boolean): unknown {
  if (!(error instanceof AppError) || !Array.isArray(error.details)) return error;
  const details = (error.details as { field?: unknown }[]).map((d) =>
    typeof d.field === 'string' ? { ...d, field: novuFieldName(d.field, toIsList) } : d,
  );
  const message = error.message.replace(
    /^([A-Za-z.[\]0-9]+):/,
    (_, field: string) => `${novuFieldName(field, toIsList)}:`,
  );
  return new AppError(error.status, error.code, message, details);
}

/** Novu's events API (scope notifications:send; cancel notifications:write). */
export const novuEventRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
  .openapi(trigger, async (c) => {
    const body = c.req.valid('json');
    const key = idempotencyKeyOf(c);
    const mapped = mapTriggers([body], []);
    if ('error' in mapped) return validationError(c, mapped.error) as never; // the envelope; novuErrors reshapes it
    checkSendable(c, c.var.services, mapped.inputs, [Array.isArray(body.to)], false);
    const request = { inputs: mapped.inputs, idempotencyKey: key, scope: 'POST /v1/events/trigger', body };
    const answer = await triggerOne(c.var.services, request).catch((error) => {
      throw inNovuTerms(error, Array.isArray(body.to));
    });
    idempotencyHeaders(c, key, answer.replayed);
    return c.json({ data: answer.results[0] as z.infer<typeof NovuTriggerResultSchema> }, 201);
  })
  .openapi(bulk, async (c) => {
    const body = c.req.valid('json');
    const key = idempotencyKeyOf(c);
    const mapped = mapTriggers(body.events, ['events']);
    if ('error' in mapped) return validationError(c, mapped.error) as never; // the envelope; novuErrors reshapes it
    const toLists = body.events.map((event) => Array.isArray(event.to));
    checkSendable(c, c.var.services, mapped.inputs, toLists, true);
    const answer = await triggerBulk(c.var.services, {
      inputs: mapped.inputs,
      idempotencyKey: key,
      scope: 'POST /v1/events/trigger/bulk',
      body,
    });
    idempotencyHeaders(c, key, answer.replayed);
    return c.json({ data: answer.results }, 201);
  })
  .openapi(cancel, async (c) =>
    c.json({ data: await cancelTrigger(c.var.services, c.req.valid('param').transactionId) }, 200),
  );

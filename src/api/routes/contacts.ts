import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Contact } from '../../domain/contact';
import { notFound } from '../../domain/errors';
import { viewContact } from '../../domain/masking';
import {
  addDeviceToken,
  patchContact,
  removeDeviceToken,
  replaceContact,
} from '../../services/recipients/contacts';
import { eraseContact, exportContact } from '../../services/recipients/erasure';
import { BODY_ERRORS, errorResponses, KEY_ERRORS } from '../shared/responses';
import { ContactInputSchema, ContactSchema, DeviceTokenSchema, UserIdParam } from '../shared/schemas';
import type { AppEnv } from '../shared/types';
import { jsonBody, validationHook } from '../shared/validation';

const security = [{ bearerAuth: [] }];
const errors = errorResponses({ ...KEY_ERRORS, 404: 'No such contact', 422: true });
const bodyErrors = errorResponses({ ...KEY_ERRORS, ...BODY_ERRORS, 404: 'No such contact' });
/**
 * A contact as these routes show it: whole (they need `contacts:read` or `contacts:write`), but a
 * webhook channel's signing secret only as `secretSet`. The secret is write-only.
 */
const shown = (contact: Contact) => viewContact(contact, 'whole');

const contactResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: ContactSchema } },
});

const putContact = createRoute({
  method: 'put',
  path: '/v1/contacts/{userId}',
  operationId: 'upsertContact',
  tags: ['contacts'],
  summary: 'Create or replace a contact',
  security,
  request: { params: UserIdParam, body: jsonBody(ContactInputSchema) },
  responses: {
    200: contactResponse('The contact as stored'),
    ...errorResponses({ ...KEY_ERRORS, ...BODY_ERRORS }),
  },
});

const patchContactRoute = createRoute({
  method: 'patch',
  path: '/v1/contacts/{userId}',
  operationId: 'updateContact',
  tags: ['contacts'],
  summary: 'Change some fields of a contact (null clears a field)',
  security,
  request: { params: UserIdParam, body: jsonBody(ContactInputSchema) },
  responses: { 200: contactResponse('The contact as stored'), ...bodyErrors },
});

const getContact = createRoute({
  method: 'get',
  path: '/v1/contacts/{userId}',
  operationId: 'getContact',
  tags: ['contacts'],
  summary: 'Read a contact',
  security,
  request: { params: UserIdParam },
  responses: { 200: contactResponse('The contact'), ...errors },
});

const deleteContact = createRoute({
  method: 'delete',
  path: '/v1/contacts/{userId}',
  operationId: 'eraseContact',
  tags: ['contacts'],
  summary:
    'Erase a user: the contact (if any), preferences, the addresses of every delivery to the user id and the data of notifications sent to them alone',
  description:
    'Works for a user id that only ever was an inline recipient too, and for one whose deliveries are only in the retention archive: the user key that sealed their archived copies is destroyed, so none can be read again. Deliveries keep their ids, statuses and history. The export then says what was erased. 404 for an id Herald holds nothing on.',
  security,
  request: { params: UserIdParam },
  responses: { 204: { description: 'Deleted' }, ...errors },
});

const exportContactRoute = createRoute({
  method: 'get',
  path: '/v1/contacts/{userId}/export',
  operationId: 'exportContact',
  tags: ['contacts'],
  summary:
    'Everything Herald holds on a user: contact, preferences, deliveries with history, their template data, and what an erasure removed (GDPR access)',
  security,
  request: { params: UserIdParam },
  responses: {
    200: {
      description: 'The export',
      content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } },
    },
    ...errors,
  },
});

const addToken = createRoute({
  method: 'post',
  path: '/v1/contacts/{userId}/device-tokens',
  operationId: 'addDeviceToken',
  tags: ['contacts'],
  summary: 'Register a device token (idempotent)',
  security,
  request: { params: UserIdParam, body: jsonBody(DeviceTokenSchema) },
  responses: { 200: contactResponse('The contact with the token'), ...bodyErrors },
});

const removeToken = createRoute({
  method: 'delete',
  path: '/v1/contacts/{userId}/device-tokens/{token}',
  operationId: 'removeDeviceToken',
  tags: ['contacts'],
  summary: 'Remove a device token (URL-encode web push subscriptions)',
  security,
  request: {
    params: UserIdParam.extend({
      token: z
        .string()
        .min(1)
        .max(4096)
        .openapi({ param: { name: 'token', in: 'path' } }),
    }),
  },
  responses: {
    200: contactResponse('The contact without the token'),
    ...errors,
    ...errorResponses({ 404: 'No such contact, or it has no such token' }),
  },
});

/** Contacts: the seed's contacts table over HTTP. */
export const contactRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
  .openapi(putContact, async (c) => {
    const contact = await replaceContact(c.var.services, c.req.valid('param').userId, c.req.valid('json'));
    return c.json(shown(contact), 200);
  })
  .openapi(patchContactRoute, async (c) => {
    const contact = await patchContact(c.var.services, c.req.valid('param').userId, c.req.valid('json'));
    return c.json(shown(contact), 200);
  })
  .openapi(getContact, async (c) => {
    const { userId } = c.req.valid('param');
    const contact = await c.var.services.contacts.get(userId);
    if (!contact) throw notFound(`contact ${userId}`);
    return c.json(shown(contact), 200);
  })
  .openapi(deleteContact, async (c) => {
    const { userId } = c.req.valid('param');
    await eraseContact(c.var.services, userId);
    return c.body(null, 204);
  })
  .openapi(exportContactRoute, async (c) => {
    c.header('Cache-Control', 'no-store');
    c.header(
      'Content-Disposition',
      `attachment; filename="herald-export-${c.req.valid('param').userId}.json"`,
    );
    return c.json(
      (await exportContact(c.var.services, c.req.valid('param').userId)) as unknown as Record<
        string,
        unknown
      >,
      200,
    );
  })
  .openapi(addToken, async (c) => {
    const contact = await addDeviceToken(c.var.services, c.req.valid('param').userId, c.req.valid('json'));
    return c.json(shown(contact), 200);
  })
  .openapi(removeToken, async (c) => {
    const { userId, token } = c.req.valid('param');
    return c.json(shown(await removeDeviceToken(c.var.services, userId, token)), 200);
  });

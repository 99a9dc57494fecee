import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { CHANNELS } from '../../domain/channels';
import { notFound } from '../../domain/errors';
import { TypeConfigSchema } from '../../domain/type-config';
import { listTemplates, previewTemplate, putTemplate } from '../../services/templates/templates';
import { BODY_ERRORS, errorResponses, KEY_ERRORS } from '../shared/responses';
import { TypeSchema } from '../shared/schemas';
import type { AppEnv } from '../shared/types';
import { jsonBody, validationHook } from '../shared/validation';

const security = [{ bearerAuth: [] }];
const readErrors = errorResponses({ ...KEY_ERRORS, 422: true });
const Locale = z.string().regex(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, 'a BCP 47 language tag such as fr-CA');
const TypeParam = z.object({ type: TypeSchema.openapi({ param: { name: 'type', in: 'path' } }) });
const TypeChannelParams = TypeParam.extend({
  channel: z.enum(CHANNELS).openapi({ param: { name: 'channel', in: 'path' } }),
});
const LocaleQuery = z.object({ locale: Locale.optional() });
const PartsSchema = z
  .object({
    parts: z
      .partialRecord(z.enum(['subject', 'html', 'text', 'title', 'body', 'json']), z.string().max(64 * 1024))
      .openapi({
        example: { subject: 'Hello {{ name }}', text: 'Hi {{ name }}', html: '<p>Hi {{ name }}</p>' },
      }),
  })
  .strict()
  .openapi('TemplateInput');
const StoredSchema = z.object({
  type: z.string(),
  channel: z.enum(CHANNELS),
  locale: z.string().nullable(),
  version: z.string(),
});

const path = '/v1/templates/{type}/{channel}';

/** Templates as a managed asset in R2: read, replace (validated, versioned), delete, preview. */
export const templateRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
  // Fixed paths before `{channel}`, so `config` is never read as a channel name.
  .openapi(
    createRoute({
      method: 'get',
      path: '/v1/templates/{type}/config',
      operationId: 'getTypeConfig',
      tags: ['templates'],
      summary: "The type's configuration (defaults when none is stored)",
      security,
      request: { params: TypeParam },
      responses: {
        200: {
          description: 'The configuration',
          content: { 'application/json': { schema: TypeConfigSchema } },
        },
        ...readErrors,
      },
    }),
    async (c) => c.json(await c.var.services.templates.typeConfig(c.req.valid('param').type), 200),
  )
  .openapi(
    createRoute({
      method: 'put',
      path: '/v1/templates/{type}/config',
      operationId: 'replaceTypeConfig',
      tags: ['templates'],
      summary:
        "Replace the type's configuration: default channels, priority, category, rate limits, dedupe window, preference defaults",
      security,
      request: { params: TypeParam, body: jsonBody(TypeConfigSchema) },
      responses: {
        200: { description: 'Stored', content: { 'application/json': { schema: TypeConfigSchema } } },
        ...errorResponses({ ...KEY_ERRORS, ...BODY_ERRORS, 422: 'Invalid configuration; names the field' }),
      },
    }),
    async (c) => {
      const config = c.req.valid('json');
      await c.var.services.templates.putTypeConfig(c.req.valid('param').type, config);
      return c.json(config, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/v1/templates',
      operationId: 'listTemplates',
      tags: ['templates'],
      summary: 'Every notification type with its channels, locales and configuration',
      security,
      responses: {
        200: {
          description: 'Types',
          content: { 'application/json': { schema: z.object({ data: z.array(z.unknown()) }) } },
        },
        ...errorResponses(KEY_ERRORS),
      },
    }),
    async (c) => c.json({ data: await listTemplates(c.var.services) }, 200),
  )
  .openapi(
    createRoute({
      method: 'get',
      path,
      operationId: 'getTemplate',
      tags: ['templates'],
      summary: 'One template (the exact locale variant when `locale` is given)',
      security,
      request: { params: TypeChannelParams, query: LocaleQuery },
      responses: {
        200: {
          description: 'The template',
          content: {
            'application/json': { schema: StoredSchema.extend({ parts: z.record(z.string(), z.string()) }) },
          },
        },
        ...readErrors,
        ...errorResponses({ 404: 'No such template' }),
      },
    }),
    async (c) => {
      const { type, channel } = c.req.valid('param');
      const { locale } = c.req.valid('query');
      const template = await c.var.services.templates.read(type, channel, locale);
      if (!template) throw notFound(`${channel}${locale ? ` (${locale})` : ''} template for ${type}`);
      return c.json(
        { type, channel, locale: locale ?? null, version: template.version, parts: template.parts },
        200,
      );
    },
  )
  .openapi(
    createRoute({
      method: 'put',
      path,
      operationId: 'upsertTemplate',
      tags: ['templates'],
      summary:
        'Create or replace a template; Liquid is checked first (422 names the part and line); the previous version is kept',
      security,
      request: { params: TypeChannelParams, query: LocaleQuery, body: jsonBody(PartsSchema) },
      responses: {
        200: { description: 'Stored', content: { 'application/json': { schema: StoredSchema } } },
        ...errorResponses({
          ...KEY_ERRORS,
          ...BODY_ERRORS,
          422: 'Invalid Liquid or parts; names the part and line',
        }),
      },
    }),
    async (c) => {
      const { type, channel } = c.req.valid('param');
      const stored = await putTemplate(
        c.var.services,
        type,
        channel,
        c.req.valid('json').parts,
        c.req.valid('query').locale,
      );
      return c.json(stored, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'delete',
      path,
      operationId: 'deleteTemplate',
      tags: ['templates'],
      summary: 'Delete the current template (its versions are kept)',
      security,
      request: { params: TypeChannelParams, query: LocaleQuery },
      responses: {
        204: { description: 'Deleted' },
        ...readErrors,
        ...errorResponses({ 404: 'No such template' }),
      },
    }),
    async (c) => {
      const { type, channel } = c.req.valid('param');
      const { locale } = c.req.valid('query');
      if (!(await c.var.services.templates.delete(type, channel, locale)))
        throw notFound(`${channel} template for ${type}`);
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: `${path}/versions`,
      operationId: 'listTemplateVersions',
      tags: ['templates'],
      summary: 'Every stored version, newest first; `?version=` returns that version’s parts',
      security,
      request: {
        params: TypeChannelParams,
        query: LocaleQuery.extend({
          version: z
            .string()
            .regex(/^[0-9a-f]{16}$/)
            .optional(),
        }),
      },
      responses: {
        200: {
          description: 'Versions, or one version',
          content: { 'application/json': { schema: z.unknown() } },
        },
        ...readErrors,
        ...errorResponses({ 404: 'No such version' }),
      },
    }),
    async (c) => {
      const { type, channel } = c.req.valid('param');
      const { locale, version } = c.req.valid('query');
      if (version) {
        const parts = await c.var.services.templates.version(type, channel, version, locale);
        if (!parts) throw notFound(`version ${version}`);
        return c.json({ type, channel, locale: locale ?? null, version, parts }, 200);
      }
      return c.json({ data: await c.var.services.templates.versions(type, channel, locale) }, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/v1/templates/{type}/preview',
      operationId: 'previewTemplate',
      tags: ['templates'],
      summary: 'Render a template with sample data, as a delivery would be',
      security,
      request: {
        params: TypeParam,
        body: jsonBody(
          z
            .object({
              channel: z.enum(CHANNELS),
              data: z.record(z.string(), z.unknown()).default({}),
              locale: Locale.optional(),
            })
            .strict(),
        ),
      },
      responses: {
        200: {
          description: 'The rendered message',
          content: { 'application/json': { schema: z.unknown() } },
        },
        ...errorResponses({
          ...KEY_ERRORS,
          ...BODY_ERRORS,
          404: 'No such template',
          422: 'Validation failed, or the template does not render',
        }),
      },
    }),
    async (c) =>
      c.json(await previewTemplate(c.var.services, c.req.valid('param').type, c.req.valid('json')), 200),
  );

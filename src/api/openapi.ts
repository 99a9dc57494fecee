import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from './shared/types';

/*
 * The OpenAPI document's own parts (info, servers, tags, security schemes), in one place so the
 * Worker (GET /openapi.json) and scripts/openapi.mjs (`npm run client:generate`, the contract
 * test) produce the same document byte for byte. The routes' rules are in shared/responses.ts.
 */

type DocumentConfig = Parameters<OpenAPIHono<AppEnv>['getOpenAPI31Document']>[0];

/**
 * Every tag an operation may carry, in the order documentation shows them. A route with a tag
 * not listed here fails the contract test: add the tag here, with what it groups.
 */
export const OPENAPI_TAGS = [
  {
    name: 'notifications',
    description: 'Send notifications, read their deliveries and statuses, cancel them',
  },
  { name: 'contacts', description: "A user's addresses per channel and device tokens; export and erasure" },
  {
    name: 'topics',
    description:
      'Named groups of users (“everyone following this project”); a notification reaches them with `{ "topic": key }`',
  },
  { name: 'preferences', description: "A user's opt-outs per type and channel, and quiet hours" },
  { name: 'digests', description: "The open digests a user's deliveries are folded into; flushing one now" },
  {
    name: 'inbox',
    description:
      'The in-app inbox: inbox tokens, the end user client routes (inbox token), an operator’s view, the browser script',
  },
  {
    name: 'templates',
    description: 'Templates per type and channel, their versions and previews; type configuration',
  },
  {
    name: 'admin',
    description:
      'Operator routes (scope admin): API keys, provider switches, dead letters, retention, keys, shards',
  },
  { name: 'operations', description: 'Delivery metrics, as JSON and in the Prometheus text format' },
  {
    name: 'novu-compatible',
    description:
      'Novu’s API as Novu’s SDK (@novu/api) calls it (triggers, bulk, cancel, subscribers, topics), mapped onto Herald: point the SDK’s serverURL at Herald. Also takes `Authorization: ApiKey <key>`; errors in Novu’s shape',
  },
  {
    name: 'sandbox',
    description: 'What the sandbox providers captured instead of sending (development and tests)',
  },
  {
    name: 'webhooks',
    description: 'Delivery callbacks from providers, verified by each provider’s signature',
  },
  {
    name: 'tracking',
    description: 'The open pixel and click redirects in sent messages (signed tokens, public)',
  },
  {
    name: 'unsubscribe',
    description: 'The unsubscribe page and RFC 8058 one-click unsubscribe (signed tokens, public)',
  },
];

/**
 * Info, servers and tags. The servers are fixed, not taken from the request or PUBLIC_BASE_URL:
 * the document must be the same wherever it is produced. `/` is where the document was fetched
 * from (any deployment, or `npm start` on localhost:8787, which Redocly's rules refuse to name); a
 * copy read elsewhere names its deployment's host in the variable.
 */
export function openApiConfig(): DocumentConfig {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Herald',
      version: '0.1.0',
      description:
        'Open-source notification service on Cloudflare Workers. API-key routes take `Authorization: Bearer <key>`; ' +
        'the inbox client routes take an inbox token; provider callbacks, tracking links and unsubscribe pages are public ' +
        '(a signature or a signed token is their authority). Every error is `{ "error": { "code", "message", "details"? } }`.',
      license: { name: 'MIT', url: 'https://spdx.org/licenses/MIT.html' },
    },
    servers: [
      { url: '/', description: 'The Herald serving this document (npm start: http://localhost:8787)' },
      {
        url: 'https://{host}',
        description: 'A deployment',
        variables: {
          host: {
            default: 'herald.your-subdomain.workers.dev',
            description:
              'The host of the deployment’s PUBLIC_BASE_URL (a workers.dev subdomain or a custom domain)',
          },
        },
      },
    ],
    tags: OPENAPI_TAGS,
  };
}

/** The two ways a caller proves who it is, referenced by each operation's `security`. */
export function registerSecuritySchemes(app: OpenAPIHono<AppEnv>): void {
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    description: 'An API key: the bootstrap ADMIN_API_KEY or an hk_live_ key from POST /v1/admin/api-keys',
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'apiKeyAuth', {
    type: 'apiKey',
    in: 'header',
    name: 'Authorization',
    description:
      'The same API key as Novu’s SDK sends it, `Authorization: ApiKey <key>`: on the Novu-compatible routes only',
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'inboxToken', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'An end user inbox token from POST /v1/inbox/tokens',
  });
}

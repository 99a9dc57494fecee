/**
 * What an API key may do. `admin` holds every other scope too: an admin key can mint a key with
 * any scopes, so separating them would protect nothing.
 */
export const SCOPES = [
  'notifications:send',
  'notifications:read',
  'notifications:write',
  'contacts:read',
  'contacts:write',
  'templates:write',
  'inbox:token',
  'admin',
] as const;

export type Scope = (typeof SCOPES)[number];

/**
 * The one table of which scope each route needs, keyed `METHOD /path` exactly as the route appears
 * in GET /openapi.json. A route missing from here needs `admin` (fail closed); a test checks that
 * every documented route has its line, and that every line names a real route.
 *
 * Templates have no read scope: reading, previewing and writing them are the same job (a template
 * pipeline), so all of it is `templates:write`, and a sending or monitoring key sees no template.
 */
export const ROUTE_SCOPES: Readonly<Record<string, Scope>> = {
  'POST /v1/notifications': 'notifications:send',
  'POST /v1/notifications/batch': 'notifications:send',
  'GET /v1/notifications': 'notifications:read',
  'GET /v1/notifications/{id}': 'notifications:read',
  'GET /v1/notifications/{id}/deliveries': 'notifications:read',
  'DELETE /v1/notifications/{id}': 'notifications:write',
  'DELETE /v1/notifications': 'notifications:write',
  'GET /v1/outbox': 'notifications:read',
  'GET /v1/metrics': 'notifications:read',
  'GET /metrics': 'notifications:read',

  'GET /v1/contacts/{userId}': 'contacts:read',
  'PUT /v1/contacts/{userId}': 'contacts:write',
  'PATCH /v1/contacts/{userId}': 'contacts:write',
  'DELETE /v1/contacts/{userId}': 'contacts:write',
  'POST /v1/contacts/{userId}/device-tokens': 'contacts:write',
  'DELETE /v1/contacts/{userId}/device-tokens/{token}': 'contacts:write',
  'GET /v1/contacts/{userId}/export': 'contacts:read',
  'GET /v1/contacts/{userId}/preferences': 'contacts:read',
  'PUT /v1/contacts/{userId}/preferences': 'contacts:write',
  'PATCH /v1/contacts/{userId}/preferences': 'contacts:write',
  'GET /v1/contacts/{userId}/inbox': 'contacts:read',
  'GET /v1/contacts/{userId}/digests': 'contacts:read',
  'POST /v1/contacts/{userId}/digests/{type}/flush': 'notifications:write',
  'DELETE /v1/contacts/{userId}/inbox/{id}': 'contacts:write',
  'POST /v1/inbox/tokens': 'inbox:token',

  // Topics are groups of users: managing them is contact work (sending to one is notifications:send).
  'GET /v1/topics': 'contacts:read',
  'GET /v1/topics/{key}': 'contacts:read',
  'PUT /v1/topics/{key}': 'contacts:write',
  'DELETE /v1/topics/{key}': 'contacts:write',
  'GET /v1/topics/{key}/subscribers': 'contacts:read',
  'POST /v1/topics/{key}/subscribers': 'contacts:write',
  'DELETE /v1/topics/{key}/subscribers': 'contacts:write',

  'GET /v1/templates': 'templates:write',
  'GET /v1/templates/{type}/config': 'templates:write',
  'PUT /v1/templates/{type}/config': 'templates:write',
  'POST /v1/templates/{type}/preview': 'templates:write',
  'GET /v1/templates/{type}/{channel}': 'templates:write',
  'PUT /v1/templates/{type}/{channel}': 'templates:write',
  'DELETE /v1/templates/{type}/{channel}': 'templates:write',
  'GET /v1/templates/{type}/{channel}/versions': 'templates:write',

  // Novu-compatible routes (api/routes/novu.ts): the scope of the Herald route each one maps to.
  'POST /v1/events/trigger': 'notifications:send',
  'POST /v1/events/trigger/bulk': 'notifications:send',
  'DELETE /v1/events/trigger/{transactionId}': 'notifications:write',
  'POST /v2/subscribers': 'contacts:write',
  'POST /v2/topics': 'contacts:write',
  'POST /v2/topics/{topicKey}/subscriptions': 'contacts:write',

  'GET /v1/admin/api-keys': 'admin',
  'POST /v1/admin/api-keys': 'admin',
  'DELETE /v1/admin/api-keys/{id}': 'admin',
  'GET /v1/admin/providers': 'admin',
  'PUT /v1/admin/providers/{name}': 'admin',
  'GET /v1/admin/dead-letters': 'admin',
  'POST /v1/admin/dead-letters/replay': 'admin',
  'POST /v1/admin/rotate-key': 'admin',
  'POST /v1/admin/retention/run': 'admin',
  'GET /v1/admin/shards': 'admin',
  'POST /v1/admin/shards/move': 'admin',
};

/** The scope a route needs; `admin` for a route the table does not name (fail closed). */
export function requiredScope(method: string, openApiPath: string): Scope {
  const route = `${method.toUpperCase()} ${openApiPath}`;
  return Object.hasOwn(ROUTE_SCOPES, route) ? (ROUTE_SCOPES[route] as Scope) : 'admin';
}

/** True when the table names this route (the coverage test's question). */
export function isDeclared(method: string, openApiPath: string): boolean {
  return Object.hasOwn(ROUTE_SCOPES, `${method.toUpperCase()} ${openApiPath}`);
}

/** Hono's `/v1/contacts/:userId` (or `:userId{regex}`) as OpenAPI writes it: `/v1/contacts/{userId}`. */
export function toOpenApiPath(honoPath: string): string {
  return honoPath.replace(/:([A-Za-z0-9_]+)(\{[^}]*\})?/g, '{$1}');
}

/** True when a key granted `granted` may use a route that needs `needed`. */
export function grants(granted: readonly string[], needed: Scope): boolean {
  return granted.includes('admin') || granted.includes(needed);
}

import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Env } from '../../config/env';
import type { ApiKeyPrincipal } from '../../services/access/api-keys';
import type { Services } from '../../services/container';

/** Hono's typing of this app: the Worker env, and what middleware puts in the context. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    requestId: string;
    services: Services;
    /** The authenticated caller, set by requireApiKey on every keyed route. */
    apiKey: ApiKeyPrincipal;
    /** The user whose inbox an inbox token opens, set on the inbox client routes. */
    inboxUserId: string;
  };
}

export type App = OpenAPIHono<AppEnv>;

import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Env } from '../env';
import type { Services } from '../services/context';

/** Hono's typing of this app: the Worker env, and what middleware puts in the context. */
export interface AppEnv {
  Bindings: Env;
  Variables: { requestId: string; services: Services };
}

export type App = OpenAPIHono<AppEnv>;

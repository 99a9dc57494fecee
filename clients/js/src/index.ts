import createClient, { type Client } from 'openapi-fetch';
import type { components, operations, paths } from './schema';

export type { components, operations, paths };

/** Every error's body: `{ error: { code, message, details? } }`. */
export type HeraldErrorBody = components['schemas']['Error'];

/** A typed Herald client: `GET`, `POST`, `PUT`, `PATCH`, `DELETE` over every documented path. */
export type HeraldClient = Client<paths>;

export interface HeraldClientOptions {
  /** Where Herald answers, e.g. `http://localhost:8787` (`npm start`) or `https://herald.example.org`. */
  baseUrl: string;
  /** An API key (`hk_live_…`, or ADMIN_API_KEY): sent as `Authorization: Bearer` with every request. */
  apiKey: string;
  /** Another fetch: a test's, a proxy's, or a Worker's service binding (`(req) => env.HERALD.fetch(req)`). */
  fetch?: (request: Request) => Promise<Response>;
}

/**
 * A client for Herald's API. The inbox's client routes (`/v1/inbox/feed`, …) take an end user's
 * inbox token instead of an API key: give it as `apiKey`, both travel as a Bearer token.
 */
export function createHeraldClient(options: HeraldClientOptions): HeraldClient {
  return createClient<paths>({
    baseUrl: options.baseUrl,
    headers: { Authorization: `Bearer ${options.apiKey}` },
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
}

/** A 4xx or 5xx answer, with Herald's error envelope when it sent one. */
export class HeraldApiError extends Error {
  readonly status: number;
  readonly code: string | undefined;
  readonly body: HeraldErrorBody | undefined;

  constructor(status: number, body: HeraldErrorBody | undefined) {
    super(body ? `${status} ${body.error.code}: ${body.error.message}` : `HTTP ${status}`);
    this.name = 'HeraldApiError';
    this.status = status;
    this.code = body?.error.code;
    this.body = body;
  }
}

/**
 * The data of a successful answer, or a thrown `HeraldApiError`: for code that would rather throw
 * than check `error` after each call.
 */
export async function unwrap<D>(
  call: Promise<{ data?: D; error?: unknown; response: Response }>,
): Promise<D> {
  const { data, error, response } = await call;
  if (!response.ok) throw new HeraldApiError(response.status, errorBody(error));
  return data as D;
}

function errorBody(error: unknown): HeraldErrorBody | undefined {
  const inner = (error as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  return typeof inner?.code === 'string' && typeof inner.message === 'string'
    ? (error as HeraldErrorBody)
    : undefined;
}

import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import type { Env } from '../../src/config/env';
import worker from '../../src/index';

export const testEnv = env as unknown as Env;
export const ADMIN_KEY = 'test-admin-key';

/** Calls the Worker's fetch handler as a producer would. */
export async function api(
  method: string,
  path: string,
  body?: unknown,
  options: { key?: string | null; headers?: Record<string, string>; env?: Env } = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...options.headers };
  const key = options.key === undefined ? ADMIN_KEY : options.key;
  if (key !== null) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined && !('Content-Type' in headers)) headers['Content-Type'] = 'application/json';
  const request = new Request(`https://herald.test${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const ctx = createExecutionContext();
  const response = await worker.fetch(request, options.env ?? testEnv, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

export async function json<T = Record<string, unknown>>(response: Response): Promise<T> {
  return (await response.json()) as T;
}

let counter = 0;
/** A user id no other test uses, so tests never see each other's rows. */
export function uniqueUser(prefix = 'user'): string {
  counter += 1;
  return `${prefix}_${Date.now().toString(36)}_${counter}_${Math.random().toString(36).slice(2, 8)}`;
}

/** Saves a contact with these addresses under a new user id (see `uniqueUser`) and returns the id. */
export async function newContact(body: Record<string, unknown>): Promise<string> {
  const userId = uniqueUser();
  const res = await api('PUT', `/v1/contacts/${userId}`, body);
  if (res.status !== 200) throw new Error(`PUT /v1/contacts: ${res.status} ${await res.text()}`);
  return userId;
}

/** The seed's EventBridge event, as the billing producer posts it (`detail-type` is `<type>_<channel>`). */
export function seedEvent<D>(id: string, detail: D, detailType = 'payment_notification_sms') {
  return {
    version: '0',
    id,
    'detail-type': [detailType],
    source: 'com.example.billing',
    account: '123456789012',
    time: '2026-11-28T10:00:00Z',
    region: 'us-east-1',
    resources: [] as string[],
    detail,
  };
}

export const FCM_TOKEN = `fcm-${'x'.repeat(40)}:APA91b${'Q'.repeat(120)}`;
export const APNS_TOKEN = 'a1'.repeat(32);
export const SLACK_URL = 'https://hooks.slack.com/services/T000/B000/XXXXXXXX';

/** Reads until `done` holds (the Worker's own queues run in the background), for up to `timeoutMs`. */
export async function until<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() - started > timeoutMs) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

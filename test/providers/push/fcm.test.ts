import { decodeProtectedHeader, jwtVerify } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { fcm, fcmConfigFromEnv } from '../../../src/providers/push/fcm';
import { MissingCredentialsError, type Provider, type SendResult } from '../../../src/providers/types';
import { missingCredentials } from '../../helpers/credentials';
import { generateRsa, jsonResponse, manualClock, pkcs8Pem, pushRequest, recordingFetch } from './helpers';

const TOKEN_URL = 'https://oauth2.googleapis.com/token';
const SEND_URL = 'https://fcm.googleapis.com/v1/projects/herald-test/messages:send';
const REGISTRATION = 'fcm-registration-token:APA91bH-example';
const SENT = { name: 'projects/herald-test/messages/0:1700000000000000%abc' };

let keys: CryptoKeyPair;
let serviceAccount: Record<string, string>;

beforeAll(async () => {
  keys = await generateRsa();
  serviceAccount = {
    type: 'service_account',
    project_id: 'herald-test',
    private_key_id: 'key-id-1',
    private_key: await pkcs8Pem(keys.privateKey),
    client_email: 'herald@herald-test.iam.gserviceaccount.com',
    token_uri: TOKEN_URL,
  };
});

type Responder = (request: Request, index: number) => Response | Promise<Response>;

/** A fake Google: the token endpoint hands out numbered tokens, FCM answers with `fcmAnswer`. */
function setup(
  fcmAnswer: Responder = () => jsonResponse(200, SENT),
  options: { tokenAnswer?: Responder; env?: Record<string, string> } = {},
) {
  const clock = manualClock();
  let tokensIssued = 0;
  let sends = 0;
  const recorder = recordingFetch((request) => {
    if (request.url.endsWith('/messages:send')) return fcmAnswer(request, sends++);
    tokensIssued += 1;
    return options.tokenAnswer
      ? options.tokenAnswer(request, tokensIssued - 1)
      : jsonResponse(200, {
          access_token: `ya29.token-${tokensIssued}`,
          expires_in: 3599,
          token_type: 'Bearer',
        });
  });
  const env = { FCM_SERVICE_ACCOUNT: JSON.stringify(serviceAccount), ...options.env };
  const provider = fcm.create(env, { fetch: recorder.fetch, now: clock.now }) as Provider;
  const tokenRequests = () => recorder.requests.filter((request) => !request.url.endsWith('/messages:send'));
  const sendRequests = () => recorder.requests.filter((request) => request.url.endsWith('/messages:send'));
  return { provider, clock, tokenRequests, sendRequests };
}

/** The form body, read as bytes (workerd warns when .text() meets a form content type). */
const formOf = async (request: Request) =>
  new URLSearchParams(new TextDecoder().decode(await request.arrayBuffer()));

const send = (provider: Provider, overrides: Parameters<typeof pushRequest>[2] = {}) =>
  provider.send(pushRequest('fcm', REGISTRATION, overrides));

describe('fcm access token', () => {
  it('posts a jwt-bearer grant whose RS256 assertion verifies with the service-account key', async () => {
    const { provider, clock, tokenRequests } = setup();
    await send(provider);
    const [request] = tokenRequests();
    if (!request) throw new Error('no token request');
    expect(request.url).toBe(TOKEN_URL);
    expect(request.method).toBe('POST');
    expect(request.headers.get('content-type')).toBe('application/x-www-form-urlencoded');
    const form = await formOf(request);
    expect(form.get('grant_type')).toBe('urn:ietf:params:oauth:grant-type:jwt-bearer');
    const assertion = form.get('assertion') ?? '';
    expect(decodeProtectedHeader(assertion)).toEqual({ alg: 'RS256', typ: 'JWT', kid: 'key-id-1' });
    const iat = Math.floor(clock.now() / 1000);
    const { payload } = await jwtVerify(assertion, keys.publicKey, {
      algorithms: ['RS256'],
      currentDate: new Date(clock.now()),
    });
    expect(payload).toEqual({
      iss: 'herald@herald-test.iam.gserviceaccount.com',
      scope: 'https://www.googleapis.com/auth/firebase.messaging',
      aud: TOKEN_URL,
      iat,
      exp: iat + 3600,
    });
  });

  it('uses GOOGLE_OAUTH_TOKEN_URL for the request and the audience', async () => {
    const { provider, tokenRequests } = setup(undefined, {
      env: { GOOGLE_OAUTH_TOKEN_URL: 'http://localhost:9000/token' },
    });
    await send(provider);
    const [request] = tokenRequests();
    expect(request?.url).toBe('http://localhost:9000/token');
    const assertion = (await formOf(request as Request)).get('assertion') ?? '';
    const { payload } = await jwtVerify(assertion, keys.publicKey, {
      currentDate: new Date(Date.UTC(2026, 0, 15, 12)),
    });
    expect(payload.aud).toBe('http://localhost:9000/token');
  });

  it('is cached for 55 minutes, then fetched again', async () => {
    const { provider, clock, tokenRequests, sendRequests } = setup();
    await send(provider);
    clock.advance(54 * 60_000);
    await send(provider);
    expect(tokenRequests()).toHaveLength(1);
    clock.advance(2 * 60_000);
    await send(provider);
    expect(tokenRequests()).toHaveLength(2);
    expect(sendRequests().map((request) => request.headers.get('authorization'))).toEqual([
      'Bearer ya29.token-1',
      'Bearer ya29.token-1',
      'Bearer ya29.token-2',
    ]);
  });

  it('is refreshed once after a 401 and the send is repeated once', async () => {
    const { provider, tokenRequests, sendRequests } = setup((_, index) =>
      index === 0
        ? jsonResponse(401, {
            error: {
              code: 401,
              message: 'Request had invalid authentication credentials.',
              status: 'UNAUTHENTICATED',
            },
          })
        : jsonResponse(200, SENT),
    );
    expect(await send(provider)).toEqual({ kind: 'sent', providerMessageId: SENT.name });
    expect(tokenRequests()).toHaveLength(2);
    expect(sendRequests().map((request) => request.headers.get('authorization'))).toEqual([
      'Bearer ya29.token-1',
      'Bearer ya29.token-2',
    ]);
  });

  it('gives up after the one refresh with a config error', async () => {
    const { provider, sendRequests } = setup(() =>
      jsonResponse(401, { error: { code: 401, message: 'invalid credentials', status: 'UNAUTHENTICATED' } }),
    );
    expect(await send(provider)).toMatchObject({
      kind: 'permanent',
      configError: true,
      code: 'UNAUTHENTICATED',
    });
    expect(sendRequests()).toHaveLength(2);
  });

  it.each<[string, Responder, Partial<SendResult> & Record<string, unknown>]>([
    [
      'invalid_grant',
      () => jsonResponse(400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' }),
      { kind: 'permanent', configError: true, code: 'invalid_grant' },
    ],
    [
      'invalid_client',
      () => jsonResponse(401, { error: 'invalid_client' }),
      { kind: 'permanent', configError: true, code: 'invalid_client' },
    ],
    [
      '503',
      () => new Response('busy', { status: 503, headers: { 'retry-after': '7' } }),
      { kind: 'retryable', retryAfterSeconds: 7 },
    ],
    [
      'network',
      () => {
        throw new TypeError('connect failed');
      },
      { kind: 'retryable', reason: 'network error: connect failed' },
    ],
    ['no token', () => jsonResponse(200, { token_type: 'Bearer' }), { kind: 'retryable' }],
  ])('token endpoint failure %s', async (_, tokenAnswer, expected) => {
    const { provider, sendRequests } = setup(undefined, { tokenAnswer });
    expect(await send(provider)).toMatchObject(expected);
    expect(sendRequests()).toHaveLength(0);
  });

  it('reports an unusable private key as a config error', async () => {
    const { provider, tokenRequests } = setup(undefined, {
      env: { FCM_SERVICE_ACCOUNT: JSON.stringify({ ...serviceAccount, private_key: 'garbage' }) },
    });
    expect(await send(provider)).toMatchObject({ kind: 'permanent', configError: true });
    expect(tokenRequests()).toHaveLength(0);
  });
});

describe('fcm request', () => {
  it('posts the documented message to messages:send', async () => {
    const { provider, clock, sendRequests } = setup();
    const result = await send(provider, {
      priority: 'critical',
      message: {
        title: 'Shipped',
        body: 'Your order is on its way',
        url: 'https://shop.example/orders/42',
        json: {
          orderId: '42',
          count: 3,
          nested: { a: 1 },
          empty: null,
          from: 'x',
          google_x: 'y',
          collapseId: 'order-42',
        },
      },
    });
    expect(result).toEqual({ kind: 'sent', providerMessageId: SENT.name });
    const [request] = sendRequests();
    if (!request) throw new Error('no send');
    expect(request.url).toBe(SEND_URL);
    expect(request.method).toBe('POST');
    expect(request.headers.get('authorization')).toBe('Bearer ya29.token-1');
    expect(request.headers.get('content-type')).toMatch(/^application\/json/);
    const expiration = String(Math.floor(clock.now() / 1000) + 86_400);
    expect(await request.json()).toEqual({
      message: {
        token: REGISTRATION,
        notification: { title: 'Shipped', body: 'Your order is on its way' },
        data: { orderId: '42', count: '3', nested: '{"a":1}', url: 'https://shop.example/orders/42' },
        android: { priority: 'HIGH', ttl: '86400s', collapse_key: 'order-42' },
        apns: {
          headers: { 'apns-priority': '10', 'apns-expiration': expiration, 'apns-collapse-id': 'order-42' },
        },
        webpush: {
          headers: { TTL: '86400', Urgency: 'high' },
          fcm_options: { link: 'https://shop.example/orders/42' },
        },
      },
    });
  });

  it.each([
    ['critical', 'HIGH', '10'],
    ['high', 'HIGH', '10'],
    ['normal', 'NORMAL', '5'],
    ['low', 'NORMAL', '5'],
  ] as const)('priority %s -> android %s, apns %s', async (priority, android, apnsPriority) => {
    const { provider, sendRequests } = setup();
    await send(provider, { priority, message: { title: 't', body: 'b', json: { ttlSeconds: 60 } } });
    const body = (await sendRequests()[0]?.json()) as {
      message: Record<string, { priority?: string; ttl?: string; headers?: Record<string, string> }>;
    };
    expect(body.message.android).toEqual({ priority: android, ttl: '60s' });
    expect(body.message.apns?.headers?.['apns-priority']).toBe(apnsPriority);
    expect(body.message).not.toHaveProperty('data');
  });

  it('honours FCM_BASE_URL with a trailing slash', async () => {
    const { provider, sendRequests } = setup(undefined, { env: { FCM_BASE_URL: 'http://localhost:9000/' } });
    await send(provider);
    expect(sendRequests()[0]?.url).toBe('http://localhost:9000/v1/projects/herald-test/messages:send');
  });
});

type Expectation = Record<string, unknown>;

const fcmError = (
  status: number,
  statusText: string,
  errorCode?: string,
  extra: object[] = [],
  message = 'error',
) =>
  jsonResponse(status, {
    error: {
      code: status,
      message,
      status: statusText,
      details: [
        ...(errorCode ? [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode }] : []),
        ...extra,
      ],
    },
  });

const flags = (result: object) => ({
  invalidAddress: 'invalidAddress' in result && result.invalidAddress === true,
  configError: 'configError' in result && result.configError === true,
});

describe('fcm responses', () => {
  it.each<[string, () => Response, Expectation]>([
    [
      'UNREGISTERED',
      () => fcmError(404, 'NOT_FOUND', 'UNREGISTERED'),
      { kind: 'permanent', invalidAddress: true, code: 'UNREGISTERED' },
    ],
    [
      'INVALID_ARGUMENT about the token',
      () =>
        fcmError(
          400,
          'INVALID_ARGUMENT',
          'INVALID_ARGUMENT',
          [],
          'The registration token is not a valid FCM registration token',
        ),
      { kind: 'permanent', invalidAddress: true, code: 'INVALID_ARGUMENT' },
    ],
    [
      'INVALID_ARGUMENT naming message.token',
      () =>
        fcmError(400, 'INVALID_ARGUMENT', undefined, [
          {
            '@type': 'type.googleapis.com/google.rpc.BadRequest',
            fieldViolations: [{ field: 'message.token', description: 'Invalid registration token' }],
          },
        ]),
      { kind: 'permanent', invalidAddress: true, code: 'INVALID_ARGUMENT' },
    ],
    [
      'INVALID_ARGUMENT about data',
      () =>
        fcmError(
          400,
          'INVALID_ARGUMENT',
          undefined,
          [
            {
              '@type': 'type.googleapis.com/google.rpc.BadRequest',
              fieldViolations: [{ field: 'message.data[0].value', description: 'Invalid value' }],
            },
          ],
          "Invalid value at 'message.data[0].value' (TYPE_STRING), 12",
        ),
      { kind: 'permanent', code: 'INVALID_ARGUMENT' },
    ],
    [
      'SENDER_ID_MISMATCH',
      () => fcmError(403, 'PERMISSION_DENIED', 'SENDER_ID_MISMATCH'),
      { kind: 'permanent', invalidAddress: true, code: 'SENDER_ID_MISMATCH' },
    ],
    [
      'QUOTA_EXCEEDED with Retry-After',
      () =>
        new Response(
          JSON.stringify({
            error: {
              code: 429,
              status: 'RESOURCE_EXHAUSTED',
              message: 'quota',
              details: [
                {
                  '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError',
                  errorCode: 'QUOTA_EXCEEDED',
                },
              ],
            },
          }),
          { status: 429, headers: { 'retry-after': '30' } },
        ),
      { kind: 'retryable', retryAfterSeconds: 30, code: 'QUOTA_EXCEEDED' },
    ],
    [
      'QUOTA_EXCEEDED without Retry-After',
      () => fcmError(429, 'RESOURCE_EXHAUSTED', 'QUOTA_EXCEEDED'),
      { kind: 'retryable', retryAfterSeconds: 60 },
    ],
    [
      'UNAVAILABLE with Retry-After',
      () =>
        new Response(
          JSON.stringify({
            error: {
              code: 503,
              status: 'UNAVAILABLE',
              details: [
                { '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: 'UNAVAILABLE' },
              ],
            },
          }),
          { status: 503, headers: { 'retry-after': '12' } },
        ),
      { kind: 'retryable', retryAfterSeconds: 12, code: 'UNAVAILABLE' },
    ],
    ['INTERNAL', () => fcmError(500, 'INTERNAL', 'INTERNAL'), { kind: 'retryable', code: 'INTERNAL' }],
    [
      'THIRD_PARTY_AUTH_ERROR',
      () =>
        fcmError(401, 'UNAUTHENTICATED', 'THIRD_PARTY_AUTH_ERROR', [
          {
            '@type': 'type.googleapis.com/google.firebase.fcm.v1.ApnsError',
            status_code: 403,
            reason: 'InvalidProviderToken',
          },
        ]),
      { kind: 'permanent', configError: true, code: 'THIRD_PARTY_AUTH_ERROR' },
    ],
    [
      'canonical NOT_FOUND',
      () => fcmError(404, 'NOT_FOUND'),
      { kind: 'permanent', invalidAddress: true, code: 'NOT_FOUND' },
    ],
    [
      '404 that is not Google (wrong base URL)',
      () => new Response('<html>Not Found</html>', { status: 404 }),
      { kind: 'permanent', configError: true, code: '404' },
    ],
    [
      'PERMISSION_DENIED',
      () => fcmError(403, 'PERMISSION_DENIED'),
      { kind: 'permanent', configError: true, code: 'PERMISSION_DENIED' },
    ],
    ['502 without body', () => new Response('', { status: 502 }), { kind: 'retryable', code: '502' }],
  ])('%s', async (_, answer, expected) => {
    const { provider, sendRequests } = setup(answer);
    const result = await send(provider);
    expect(result).toMatchObject(expected);
    expect(flags(result)).toEqual(flags(expected));
    // No refresh loop: a THIRD_PARTY_AUTH_ERROR 401 is not about Herald's own token.
    expect(sendRequests()).toHaveLength(1);
  });

  it('keeps APNs details from FCM in the reason', async () => {
    const { provider } = setup(() =>
      fcmError(401, 'UNAUTHENTICATED', 'THIRD_PARTY_AUTH_ERROR', [
        {
          '@type': 'type.googleapis.com/google.firebase.fcm.v1.ApnsError',
          status_code: 403,
          reason: 'InvalidProviderToken',
        },
      ]),
    );
    const result = await send(provider);
    expect(result.kind !== 'sent' && result.reason).toContain('InvalidProviderToken');
  });

  it.each([
    ['network error', new TypeError('Network connection lost.'), 'network error: Network connection lost.'],
    ['timeout', new DOMException('timed out', 'TimeoutError'), 'timeout'],
  ])('treats a %s on send as retryable', async (_, error, reason) => {
    const { provider } = setup(() => {
      throw error;
    });
    expect(await send(provider)).toEqual({ kind: 'retryable', reason });
  });
});

describe('fcm credentials', () => {
  it('names FCM_SERVICE_ACCOUNT when it is missing', () => {
    expect(() => fcm.create({}, { fetch: async () => new Response(), now: () => 0 })).toThrow(
      MissingCredentialsError,
    );
    expect(() => fcmConfigFromEnv({ FCM_SERVICE_ACCOUNT: '' })).toThrow(/FCM_SERVICE_ACCOUNT/);
  });

  it('names the missing service-account fields without echoing the secret', () => {
    const error = missingCredentials(() =>
      fcmConfigFromEnv({
        FCM_SERVICE_ACCOUNT: JSON.stringify({ client_email: 'x@y', private_key_secret_marker: 's3cr3t' }),
      }),
    );
    expect(error.variables).toEqual(['FCM_SERVICE_ACCOUNT.project_id', 'FCM_SERVICE_ACCOUNT.private_key']);
    expect(error.message).not.toContain('s3cr3t');
  });

  it('rejects a service account that is not JSON', () => {
    expect(() => fcmConfigFromEnv({ FCM_SERVICE_ACCOUNT: '{not json' })).toThrow(MissingCredentialsError);
  });
});

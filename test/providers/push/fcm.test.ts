import { decodeProtectedHeader, jwtVerify } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { FCM_LIMITS, fcm, fcmConfigFromEnv } from '../../../src/providers/push/fcm';
import { MissingCredentialsError, type Provider } from '../../../src/providers/types';
import { missingCredentials } from '../../helpers/credentials';
import {
  type AnswerRow,
  answerTable,
  type ExactRequest,
  expectOutcome,
  expectRequest,
  FIXED_NOW,
  formOf,
  jsonOf,
  jsonResponse,
  manualClock,
  networkRows,
  noNetwork,
  type ProviderCase,
  providerOn,
  type RecordedCall,
  type Reply,
  refusalTable,
  textResponse,
} from '../harness';
import { generateRsa, pkcs8Pem, pushRequest } from './helpers';

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

const envOf = (extra: Record<string, string> = {}) => ({
  FCM_SERVICE_ACCOUNT: JSON.stringify(serviceAccount),
  ...extra,
});

const isSend = (request: Request) => request.url.endsWith('/messages:send');

/** Google's token endpoint handing out numbered tokens. */
function tokenEndpoint() {
  let issued = 0;
  return () => {
    issued += 1;
    return jsonResponse(200, {
      access_token: `ya29.token-${issued}`,
      expires_in: 3599,
      token_type: 'Bearer',
    });
  };
}

/** A fake Google: `tokens` answers the token endpoint, `sends` answers messages:send. */
function setup(
  sends: (index: number) => Reply = () => jsonResponse(200, SENT),
  options: { tokens?: (index: number) => Reply; env?: Record<string, string> } = {},
) {
  const clock = manualClock();
  const issue = tokenEndpoint();
  let sent = 0;
  let tokenCalls = 0;
  const { provider, calls } = providerOn(
    fcm,
    envOf(options.env),
    (request) => {
      if (isSend(request)) return sends(sent++);
      return options.tokens ? options.tokens(tokenCalls++) : issue();
    },
    clock.now,
  );
  const tokenCallsMade = () => calls.filter((call) => !isSend(call.request));
  const sendCallsMade = () => calls.filter((call) => isSend(call.request));
  return { provider, clock, tokenCallsMade, sendCallsMade };
}

const send = (provider: Provider, overrides: Parameters<typeof pushRequest>[2] = {}) =>
  provider.send(pushRequest('fcm', REGISTRATION, overrides));

/** Checks the jwt-bearer assertion of a token request against the service-account key. */
async function expectAssertion(call: RecordedCall, audience: string) {
  const form = new URLSearchParams(formOf(call));
  expect([...form.keys()]).toEqual(['grant_type', 'assertion']);
  expect(form.get('grant_type')).toBe('urn:ietf:params:oauth:grant-type:jwt-bearer');
  const assertion = form.get('assertion') ?? '';
  expect(decodeProtectedHeader(assertion)).toEqual({ alg: 'RS256', typ: 'JWT', kid: 'key-id-1' });
  const { payload } = await jwtVerify(assertion, keys.publicKey, {
    algorithms: ['RS256'],
    currentDate: new Date(FIXED_NOW),
  });
  const iat = Math.floor(FIXED_NOW / 1000);
  expect(payload).toEqual({
    iss: 'herald@herald-test.iam.gserviceaccount.com',
    scope: 'https://www.googleapis.com/auth/firebase.messaging',
    aud: audience,
    iat,
    exp: iat + 3600,
  });
}

// Google OAuth for service accounts: https://developers.google.com/identity/protocols/oauth2/service-account
const TOKEN_REQUEST: ExactRequest = {
  url: TOKEN_URL,
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: { check: (call) => expectAssertion(call, TOKEN_URL) },
};

// messages:send: https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send
const SEND: ExactRequest = {
  url: SEND_URL,
  headers: { authorization: 'Bearer ya29.token-1', 'content-type': 'application/json; charset=UTF-8' },
  body: {
    json: {
      message: {
        token: REGISTRATION,
        notification: { title: 'Shipped', body: 'Your order is on its way' },
        android: { priority: 'NORMAL', ttl: '86400s' },
        apns: {
          headers: { 'apns-priority': '5', 'apns-expiration': String(Math.floor(FIXED_NOW / 1000) + 86_400) },
        },
        webpush: { headers: { TTL: '86400', Urgency: 'normal' } },
      },
    },
  },
};

/** FCM as the answer tables see it: a fresh token, then the row's answer to messages:send. */
const FCM: ProviderCase = {
  definition: fcm,
  env: () => envOf(),
  request: () => pushRequest('fcm', REGISTRATION),
  exact: () => [TOKEN_REQUEST, SEND],
  secrets: () => ['ya29.token', 'BEGIN PRIVATE KEY'],
  route: (reply) => (request) => (isSend(request) ? reply : tokenEndpoint()()),
};

/** The token endpoint answering with the row's reply; messages:send must not be reached. */
const FCM_TOKEN: ProviderCase = {
  ...FCM,
  exact: () => [TOKEN_REQUEST],
  route: (reply) => (request) => (isSend(request) ? new Error('no send without a token') : reply),
};

describe('fcm access token', () => {
  it('uses GOOGLE_OAUTH_TOKEN_URL for the request and the audience', async () => {
    const { provider, tokenCallsMade } = setup(undefined, {
      env: { GOOGLE_OAUTH_TOKEN_URL: 'http://localhost:9000/token' },
    });
    await send(provider);
    const [call] = tokenCallsMade();
    await expectRequest(call, {
      ...TOKEN_REQUEST,
      url: 'http://localhost:9000/token',
      body: { check: (made) => expectAssertion(made, 'http://localhost:9000/token') },
    });
  });

  it('is cached for 55 minutes, then fetched again', async () => {
    const { provider, clock, tokenCallsMade, sendCallsMade } = setup();
    await send(provider);
    clock.advance(54 * 60_000);
    await send(provider);
    expect(tokenCallsMade()).toHaveLength(1);
    clock.advance(2 * 60_000);
    await send(provider);
    expect(tokenCallsMade()).toHaveLength(2);
    expect(sendCallsMade().map((call) => call.request.headers.get('authorization'))).toEqual([
      'Bearer ya29.token-1',
      'Bearer ya29.token-1',
      'Bearer ya29.token-2',
    ]);
  });

  it('is refreshed once after a 401 and the send is repeated once', async () => {
    const { provider, tokenCallsMade, sendCallsMade } = setup((index) =>
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
    expectOutcome(await send(provider), { kind: 'sent', providerMessageId: SENT.name });
    expect(tokenCallsMade()).toHaveLength(2);
    expect(sendCallsMade().map((call) => call.request.headers.get('authorization'))).toEqual([
      'Bearer ya29.token-1',
      'Bearer ya29.token-2',
    ]);
  });

  it('gives up after the one refresh with a config error, and drops the refused token', async () => {
    const { provider, tokenCallsMade, sendCallsMade } = setup(() =>
      jsonResponse(401, { error: { code: 401, message: 'invalid credentials', status: 'UNAUTHENTICATED' } }),
    );
    expectOutcome(await send(provider), {
      kind: 'permanent',
      configError: true,
      code: 'UNAUTHENTICATED',
      reason: 'FCM 401 UNAUTHENTICATED: invalid credentials',
    });
    expect(sendCallsMade()).toHaveLength(2);
    // The next delivery starts with a fresh token instead of the refused one.
    await send(provider);
    expect(tokenCallsMade()).toHaveLength(4);
    expect(sendCallsMade()[2]?.request.headers.get('authorization')).toBe('Bearer ya29.token-3');
  });

  it('reports a token endpoint failure after the refresh instead of sending again', async () => {
    const { provider, sendCallsMade } = setup(
      () => jsonResponse(401, { error: { code: 401, status: 'UNAUTHENTICATED' } }),
      {
        tokens: (index) =>
          index === 0
            ? jsonResponse(200, { access_token: 'ya29.first', expires_in: 3599 })
            : jsonResponse(400, { error: 'invalid_grant' }),
      },
    );
    expectOutcome(await send(provider), {
      kind: 'permanent',
      configError: true,
      code: 'invalid_grant',
      reason: 'Google OAuth 400 invalid_grant',
    });
    expect(sendCallsMade()).toHaveLength(1);
  });

  it('reports an unusable private key as a config error', async () => {
    const { provider, tokenCallsMade } = setup(undefined, {
      env: { FCM_SERVICE_ACCOUNT: JSON.stringify({ ...serviceAccount, private_key: 'garbage' }) },
    });
    expectOutcome(await send(provider), {
      kind: 'permanent',
      configError: true,
      reason: 'FCM_SERVICE_ACCOUNT.private_key is not a usable RS256 PKCS#8 key',
    });
    expect(tokenCallsMade()).toHaveLength(0);
  });
});

describe('fcm token endpoint answers', () => {
  answerTable(FCM_TOKEN, [
    {
      name: 'invalid_grant',
      reply: jsonResponse(400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' }),
      expected: {
        kind: 'permanent',
        configError: true,
        code: 'invalid_grant',
        reason: 'Google OAuth 400 invalid_grant Invalid JWT Signature.',
      },
    },
    {
      name: 'invalid_client',
      reply: jsonResponse(401, { error: 'invalid_client' }),
      expected: { kind: 'permanent', configError: true, code: 'invalid_client' },
    },
    {
      name: '503',
      reply: textResponse(503, 'busy', { 'retry-after': '7' }),
      expected: { kind: 'retryable', code: '503', retryAfterSeconds: 7 },
    },
    {
      name: 'no token',
      reply: jsonResponse(200, { token_type: 'Bearer' }),
      expected: { kind: 'retryable', reason: 'Google OAuth answered without access_token' },
    },
    ...networkRows(TOKEN_URL).map(messageNeverLeft),
  ]);
});

/**
 * A network failure of the token fetch, said of the message: the message itself never left, so
 * even a token request that timed out (unknown) leaves the message retryable on any provider.
 */
function messageNeverLeft(row: AnswerRow): AnswerRow {
  if (row.expected.kind !== 'unknown') return row;
  const { reason } = row.expected;
  return {
    ...row,
    name: `token fetch: ${row.name}, yet the message is retryable`,
    expected: { kind: 'retryable', reason: typeof reason === 'string' ? `Google OAuth: ${reason}` : reason },
  };
}

describe('fcm request', () => {
  it('posts the documented message to messages:send', async () => {
    const { provider, sendCallsMade } = setup();
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
    expectOutcome(result, { kind: 'sent', providerMessageId: SENT.name });
    const expiration = String(Math.floor(FIXED_NOW / 1000) + 86_400);
    await expectRequest(sendCallsMade()[0], {
      ...SEND,
      body: {
        json: {
          message: {
            token: REGISTRATION,
            notification: { title: 'Shipped', body: 'Your order is on its way' },
            // Reserved keys (`from`, `google*`) are dropped; values travel as strings.
            data: { orderId: '42', count: '3', nested: '{"a":1}', url: 'https://shop.example/orders/42' },
            android: { priority: 'HIGH', ttl: '86400s', collapse_key: 'order-42' },
            apns: {
              headers: {
                'apns-priority': '10',
                'apns-expiration': expiration,
                'apns-collapse-id': 'order-42',
              },
            },
            webpush: {
              headers: { TTL: '86400', Urgency: 'high' },
              fcm_options: { link: 'https://shop.example/orders/42' },
            },
          },
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
    const { provider, sendCallsMade } = setup();
    await send(provider, { priority, message: { title: 't', body: 'b', json: { ttlSeconds: 60 } } });
    const body = jsonOf(sendCallsMade()[0] as RecordedCall) as {
      message: Record<string, { priority?: string; ttl?: string; headers?: Record<string, string> }>;
    };
    expect(body.message.android).toEqual({ priority: android, ttl: '60s' });
    expect(body.message.apns?.headers?.['apns-priority']).toBe(apnsPriority);
    expect(body.message).not.toHaveProperty('data');
  });

  it('honours FCM_BASE_URL with a trailing slash', async () => {
    const { provider, sendCallsMade } = setup(undefined, { env: { FCM_BASE_URL: 'http://localhost:9000/' } });
    await send(provider);
    expect(sendCallsMade()[0]?.request.url).toBe(
      'http://localhost:9000/v1/projects/herald-test/messages:send',
    );
  });

  refusalTable(FCM, [
    {
      name: 'an empty registration token',
      request: () => pushRequest('fcm', '  '),
      expected: { kind: 'permanent', invalidAddress: true, reason: 'empty FCM registration token' },
    },
    {
      name: 'an address of another platform',
      request: () => pushRequest('apns', 'abcdef'),
      expected: { kind: 'permanent', reason: 'fcm provider got a non-fcm address' },
    },
  ]);

  it('declares its documented limits', () => {
    expect(fcm.limits).toBe(FCM_LIMITS);
    expect(FCM_LIMITS).toEqual({
      timeoutMs: 10_000,
      maxBodyBytes: 4096,
      recipientsPerRequest: 1,
      documentedRatePerSecond: 10_000,
    });
  });
});

/** A Google error answer, with an FcmError detail when `errorCode` is given. */
function fcmError(
  status: number,
  statusText: string,
  options: { errorCode?: string; extra?: object[]; message?: string; headers?: Record<string, string> } = {},
): Response {
  const { errorCode, extra = [], message = 'error', headers = {} } = options;
  const details = [
    ...(errorCode ? [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode }] : []),
    ...extra,
  ];
  return jsonResponse(status, { error: { code: status, message, status: statusText, details } }, headers);
}

const APNS_DETAIL = {
  '@type': 'type.googleapis.com/google.firebase.fcm.v1.ApnsError',
  status_code: 403,
  reason: 'InvalidProviderToken',
};

// Error codes per https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode
const ANSWERS: AnswerRow[] = [
  { name: '200', reply: jsonResponse(200, SENT), expected: { kind: 'sent', providerMessageId: SENT.name } },
  {
    name: 'UNREGISTERED',
    reply: fcmError(404, 'NOT_FOUND', { errorCode: 'UNREGISTERED' }),
    expected: {
      kind: 'permanent',
      invalidAddress: true,
      code: 'UNREGISTERED',
      reason: 'FCM 404 UNREGISTERED: error',
    },
  },
  {
    name: 'INVALID_ARGUMENT about the token',
    reply: fcmError(400, 'INVALID_ARGUMENT', {
      errorCode: 'INVALID_ARGUMENT',
      message: 'The registration token is not a valid FCM registration token',
    }),
    expected: { kind: 'permanent', invalidAddress: true, code: 'INVALID_ARGUMENT' },
  },
  {
    name: 'INVALID_ARGUMENT naming message.token',
    reply: fcmError(400, 'INVALID_ARGUMENT', {
      extra: [
        {
          '@type': 'type.googleapis.com/google.rpc.BadRequest',
          fieldViolations: [{ field: 'message.token', description: 'Invalid registration token' }],
        },
      ],
    }),
    expected: { kind: 'permanent', invalidAddress: true, code: 'INVALID_ARGUMENT' },
  },
  {
    name: 'INVALID_ARGUMENT about data',
    reply: fcmError(400, 'INVALID_ARGUMENT', {
      extra: [
        {
          '@type': 'type.googleapis.com/google.rpc.BadRequest',
          fieldViolations: [{ field: 'message.data[0].value', description: 'Invalid value' }],
        },
      ],
      message: "Invalid value at 'message.data[0].value' (TYPE_STRING), 12",
    }),
    expected: { kind: 'permanent', code: 'INVALID_ARGUMENT' },
  },
  {
    name: 'SENDER_ID_MISMATCH',
    reply: fcmError(403, 'PERMISSION_DENIED', { errorCode: 'SENDER_ID_MISMATCH' }),
    expected: { kind: 'permanent', invalidAddress: true, code: 'SENDER_ID_MISMATCH' },
  },
  {
    name: 'QUOTA_EXCEEDED with Retry-After',
    reply: fcmError(429, 'RESOURCE_EXHAUSTED', {
      errorCode: 'QUOTA_EXCEEDED',
      headers: { 'retry-after': '30' },
    }),
    expected: { kind: 'retryable', retryAfterSeconds: 30, code: 'QUOTA_EXCEEDED' },
  },
  {
    name: 'QUOTA_EXCEEDED without Retry-After waits the documented minute',
    reply: fcmError(429, 'RESOURCE_EXHAUSTED', { errorCode: 'QUOTA_EXCEEDED' }),
    expected: { kind: 'retryable', retryAfterSeconds: 60, code: 'QUOTA_EXCEEDED' },
  },
  {
    name: 'UNAVAILABLE with Retry-After',
    reply: fcmError(503, 'UNAVAILABLE', { errorCode: 'UNAVAILABLE', headers: { 'retry-after': '12' } }),
    expected: { kind: 'retryable', retryAfterSeconds: 12, code: 'UNAVAILABLE' },
  },
  {
    name: 'INTERNAL',
    reply: fcmError(500, 'INTERNAL', { errorCode: 'INTERNAL' }),
    expected: { kind: 'retryable', code: 'INTERNAL' },
  },
  {
    name: "THIRD_PARTY_AUTH_ERROR (not about Herald's token: no refresh) keeps the APNs detail",
    reply: fcmError(401, 'UNAUTHENTICATED', { errorCode: 'THIRD_PARTY_AUTH_ERROR', extra: [APNS_DETAIL] }),
    expected: {
      kind: 'permanent',
      configError: true,
      code: 'THIRD_PARTY_AUTH_ERROR',
      reason: 'FCM 401 THIRD_PARTY_AUTH_ERROR: error (APNs 403 InvalidProviderToken)',
    },
  },
  {
    name: 'UNSPECIFIED_ERROR falls back to the canonical status',
    reply: fcmError(400, 'FAILED_PRECONDITION', { errorCode: 'UNSPECIFIED_ERROR' }),
    expected: { kind: 'permanent', code: 'FAILED_PRECONDITION' },
  },
  {
    name: 'canonical NOT_FOUND',
    reply: fcmError(404, 'NOT_FOUND'),
    expected: { kind: 'permanent', invalidAddress: true, code: 'NOT_FOUND' },
  },
  {
    name: '404 that is not Google (wrong base URL)',
    reply: textResponse(404, '<html>Not Found</html>'),
    expected: {
      kind: 'permanent',
      configError: true,
      code: '404',
      reason: 'FCM 404 404: <html>Not Found</html>',
    },
  },
  {
    name: 'PERMISSION_DENIED',
    reply: fcmError(403, 'PERMISSION_DENIED'),
    expected: { kind: 'permanent', configError: true, code: 'PERMISSION_DENIED' },
  },
  { name: '502 without body', reply: textResponse(502, ''), expected: { kind: 'retryable', code: '502' } },
  {
    name: '302 redirect is not followed',
    reply: textResponse(302, null, { location: 'https://elsewhere.example/' }),
    expected: { kind: 'permanent', code: '302' },
  },
  ...networkRows(SEND_URL),
];

describe('fcm responses', () => {
  answerTable(FCM, ANSWERS);
});

describe('fcm credentials', () => {
  it('names FCM_SERVICE_ACCOUNT when it is missing', () => {
    expect(() => fcm.create({}, noNetwork)).toThrow(MissingCredentialsError);
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

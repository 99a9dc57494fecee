import { describe, expect, it } from 'vitest';
import {
  buildSesRequest,
  SES_LIMITS,
  ses,
  sesConfigFromEnv,
  sesMailbox,
} from '../../../src/providers/email/ses';
import { missingCredentials } from '../../helpers/credentials';
import {
  type AnswerRow,
  answerTable,
  type ExactRequest,
  expectOutcome,
  expectRequest,
  jsonOf,
  jsonResponse,
  networkRows,
  type ProviderCase,
  type RecordedCall,
  refusalTable,
  sendOnce,
  textResponse,
} from '../harness';
import { DELIVERY_ID, EMAIL_REFUSALS, emailRequest, HTML, NOW_MS, TEXT } from './fixtures';

const ACCESS_KEY_ID = 'AKIDTESTEXAMPLE00000';
const SECRET = 'test/secret+key/notReal0123456789abcdefgh';
const env = {
  AWS_ACCESS_KEY_ID: ACCESS_KEY_ID,
  AWS_SECRET_ACCESS_KEY: SECRET,
  AWS_REGION: 'eu-west-1',
  EMAIL_FROM: 'Herald <noreply@example.com>',
};

// ---------------------------------------------------------------------------------------------
// An independent SigV4 reference, written from AWS's documented algorithm
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html) with WebCrypto.
// It shares no code with aws4fetch and is itself checked against AWS's published test vectors.
// ---------------------------------------------------------------------------------------------
const encoder = new TextEncoder();

function hex(buffer: ArrayBuffer): string {
  return [...new Uint8Array(buffer)].map((byte) => byte.toString(16).padStart(2, '0')).join('');
}

async function sha256(data: string): Promise<string> {
  return hex(await crypto.subtle.digest('SHA-256', encoder.encode(data)));
}

async function hmac(key: ArrayBuffer | Uint8Array, data: string): Promise<ArrayBuffer> {
  const cryptoKey = await crypto.subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, [
    'sign',
  ]);
  return crypto.subtle.sign('HMAC', cryptoKey, encoder.encode(data));
}

interface Canonical {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
  payloadHash: string;
}

async function referenceSignature(
  input: Canonical,
  secret: string,
  amzDate: string,
  region: string,
  service: string,
): Promise<{ signature: string; signedHeaders: string }> {
  const names = Object.keys(input.headers)
    .map((name) => name.toLowerCase())
    .sort();
  const lower = Object.fromEntries(Object.entries(input.headers).map(([k, v]) => [k.toLowerCase(), v]));
  const canonicalHeaders = names
    .map((name) => `${name}:${(lower[name] ?? '').trim().replace(/\s+/g, ' ')}\n`)
    .join('');
  const signedHeaders = names.join(';');
  const canonicalRequest = [
    input.method,
    input.path,
    input.query,
    canonicalHeaders,
    signedHeaders,
    input.payloadHash,
  ].join('\n');
  const date = amzDate.slice(0, 8);
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, await sha256(canonicalRequest)].join('\n');
  const kDate = await hmac(encoder.encode(`AWS4${secret}`), date);
  const kRegion = await hmac(new Uint8Array(kDate), region);
  const kService = await hmac(new Uint8Array(kRegion), service);
  const kSigning = await hmac(new Uint8Array(kService), 'aws4_request');
  return { signature: hex(await hmac(new Uint8Array(kSigning), stringToSign)), signedHeaders };
}

describe('SigV4 reference (self-check against AWS test suite vectors)', () => {
  const suite = { secret: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', date: '20150830T123600Z' };
  it.each([
    ['get-vanilla', 'GET', '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31'],
    ['post-vanilla', 'POST', '5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b'],
  ])('%s', async (_name, method, expected) => {
    const { signature } = await referenceSignature(
      {
        method,
        path: '/',
        query: '',
        headers: { host: 'example.amazonaws.com', 'x-amz-date': suite.date },
        payloadHash: await sha256(''),
      },
      suite.secret,
      suite.date,
      'us-east-1',
      'service',
    );
    expect(signature).toBe(expected);
  });
});

/** Parses `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`. */
function parseAuthorization(value: string | null) {
  const match = /^AWS4-HMAC-SHA256 Credential=([^,]+), SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(
    value ?? '',
  );
  if (!match) throw new Error(`unexpected Authorization: ${value}`);
  return { credential: match[1] as string, signedHeaders: match[2] as string, signature: match[3] as string };
}

async function expectValidSignature(request: Request, body: string, secret: string, region: string) {
  const auth = parseAuthorization(request.headers.get('authorization'));
  const url = new URL(request.url);
  const signed: Record<string, string> = {};
  for (const name of auth.signedHeaders.split(';')) {
    signed[name] = name === 'host' ? url.host : (request.headers.get(name) ?? '');
  }
  const reference = await referenceSignature(
    {
      method: request.method,
      path: url.pathname,
      query: '',
      headers: signed,
      payloadHash: await sha256(body),
    },
    secret,
    request.headers.get('x-amz-date') ?? '',
    region,
    'ses',
  );
  expect(auth.signedHeaders).toBe(reference.signedHeaders);
  expect(auth.signature).toBe(reference.signature);
}

const UNSUBSCRIBE_SES_HEADERS = [
  {
    Name: 'List-Unsubscribe',
    Value: '<https://herald.test/u/tok_123>, <mailto:unsubscribe@example.com?subject=tok_123>',
  },
  { Name: 'List-Unsubscribe-Post', Value: 'List-Unsubscribe=One-Click' },
];

/** The signature pieces, checked against the fixed clock, an independent hash and the reference. */
async function expectSigned(call: RecordedCall, signedHeaders: string) {
  expect(call.request.headers.get('x-amz-content-sha256')).toBe(await sha256(call.body));
  const auth = parseAuthorization(call.request.headers.get('authorization'));
  expect(auth.credential).toBe(`${ACCESS_KEY_ID}/20250304/eu-west-1/ses/aws4_request`);
  expect(auth.signedHeaders).toBe(signedHeaders);
  await expectValidSignature(call.request, call.body, SECRET, 'eu-west-1');
}

// Request shape per https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html
const SEND: ExactRequest = {
  url: 'https://email.eu-west-1.amazonaws.com/v2/email/outbound-emails',
  headers: {
    authorization: /^AWS4-HMAC-SHA256 Credential=\S+, SignedHeaders=\S+, Signature=[0-9a-f]{64}$/,
    'content-type': 'application/json',
    'user-agent': 'herald/0.1',
    'x-amz-content-sha256': /^[0-9a-f]{64}$/,
    'x-amz-date': '20250304T050607Z',
  },
  body: {
    async check(call) {
      expect(jsonOf(call)).toEqual({
        FromEmailAddress: 'Herald <noreply@example.com>',
        Destination: { ToAddresses: ['ada@example.org'] },
        Content: {
          Simple: {
            Subject: { Data: 'Your invoice is paid', Charset: 'UTF-8' },
            Body: { Text: { Data: TEXT, Charset: 'UTF-8' }, Html: { Data: HTML, Charset: 'UTF-8' } },
            Headers: UNSUBSCRIBE_SES_HEADERS,
          },
        },
        EmailTags: [{ Name: 'delivery_id', Value: DELIVERY_ID }],
      });
      await expectSigned(call, 'host;x-amz-content-sha256;x-amz-date');
    },
  },
};

const SES: ProviderCase = {
  definition: ses,
  env: () => env,
  request: () => emailRequest(),
  exact: () => [SEND],
  secrets: () => [SECRET],
  now: () => NOW_MS,
};

describe('ses request', () => {
  it('signs the session token and honours SES_BASE_URL and the configuration set', async () => {
    const withToken = {
      ...env,
      AWS_SESSION_TOKEN: 'session/token+value==',
      SES_BASE_URL: 'https://email-fips.eu-west-1.amazonaws.com/',
      SES_CONFIGURATION_SET: 'herald-events',
      EMAIL_REPLY_TO: 'Support <support@example.com>',
    };
    const { result, calls } = await sendOnce(
      ses,
      withToken,
      emailRequest({ text: undefined, headers: undefined }),
      jsonResponse(200, { MessageId: 'm-1' }),
      () => NOW_MS,
    );
    expectOutcome(result, { kind: 'sent', providerMessageId: 'm-1' });
    await expectRequest(calls[0], {
      url: 'https://email-fips.eu-west-1.amazonaws.com/v2/email/outbound-emails',
      headers: { ...SEND.headers, 'x-amz-security-token': 'session/token+value==' },
      body: {
        async check(call) {
          expect(jsonOf(call)).toEqual({
            FromEmailAddress: 'Herald <noreply@example.com>',
            Destination: { ToAddresses: ['ada@example.org'] },
            ReplyToAddresses: ['Support <support@example.com>'],
            Content: {
              Simple: {
                Subject: { Data: 'Your invoice is paid', Charset: 'UTF-8' },
                Body: { Html: { Data: HTML, Charset: 'UTF-8' } },
              },
            },
            ConfigurationSetName: 'herald-events',
            EmailTags: [{ Name: 'delivery_id', Value: DELIVERY_ID }],
          });
          await expectSigned(call, 'host;x-amz-content-sha256;x-amz-date;x-amz-security-token');
        },
      },
    });
  });

  it('a tampered body no longer matches the signature', async () => {
    const { calls } = await sendOnce(
      ses,
      env,
      emailRequest(),
      jsonResponse(200, { MessageId: 'm-1' }),
      () => NOW_MS,
    );
    const request = (calls[0] as RecordedCall).request;
    const auth = parseAuthorization(request.headers.get('authorization'));
    const url = new URL(request.url);
    const reference = await referenceSignature(
      {
        method: 'POST',
        path: url.pathname,
        query: '',
        headers: {
          host: url.host,
          'x-amz-content-sha256': await sha256('{"tampered":true}'),
          'x-amz-date': request.headers.get('x-amz-date') ?? '',
        },
        payloadHash: await sha256('{"tampered":true}'),
      },
      SECRET,
      request.headers.get('x-amz-date') ?? '',
      'eu-west-1',
      'ses',
    );
    expect(auth.signature).not.toBe(reference.signature);
  });

  it('encodes a non-ASCII display name as an RFC 2047 encoded-word', () => {
    expect(sesMailbox({ email: 'noreply@example.com', name: 'Héraut' })).toBe(
      '=?UTF-8?B?SMOpcmF1dA==?= <noreply@example.com>',
    );
    const config = sesConfigFromEnv({ ...env, EMAIL_FROM: 'noreply@example.com' });
    expect(JSON.parse(buildSesRequest(config, emailRequest()).body).FromEmailAddress).toBe(
      'noreply@example.com',
    );
  });

  it('declares its documented limits', () => {
    expect(ses.limits).toBe(SES_LIMITS);
    expect(SES_LIMITS).toEqual({
      timeoutMs: 10_000,
      maxBodyBytes: 40 * 1024 * 1024,
      recipientsPerRequest: 50,
    });
  });
});

const typed = (status: number, type: string, message: string, headers: Record<string, string> = {}) =>
  jsonResponse(
    status,
    { message },
    { 'x-amzn-ErrorType': `${type}:http://internal.amazon.com/coral/com.amazonaws.sesv2/`, ...headers },
  );

// Errors per https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html#API_SendEmail_Errors
const ANSWERS: AnswerRow[] = [
  {
    name: '200 with the message id',
    reply: jsonResponse(200, { MessageId: '0102018f-aaaa-bbbb-cccc-000000000000-000000' }),
    expected: { kind: 'sent', providerMessageId: '0102018f-aaaa-bbbb-cccc-000000000000-000000' },
  },
  {
    name: 'MessageRejected',
    reply: typed(400, 'MessageRejected', 'The message contains invalid content.'),
    expected: {
      kind: 'permanent',
      code: 'MessageRejected',
      reason: 'MessageRejected: The message contains invalid content.',
    },
  },
  {
    name: 'MessageRejected unverified identity',
    reply: typed(
      400,
      'MessageRejected',
      'Email address is not verified. The following identities failed the check.',
    ),
    expected: { kind: 'permanent', code: 'MessageRejected', configError: true },
  },
  {
    name: 'MailFromDomainNotVerifiedException',
    reply: typed(400, 'MailFromDomainNotVerifiedException', 'The MAIL FROM domain is not verified.'),
    expected: { kind: 'permanent', code: 'MailFromDomainNotVerifiedException', configError: true },
  },
  {
    name: 'BadRequestException',
    reply: typed(400, 'BadRequestException', 'Missing final @domain'),
    expected: { kind: 'permanent', code: 'BadRequestException' },
  },
  {
    name: 'AccountSuspendedException',
    reply: typed(400, 'AccountSuspendedException', 'Account suspended.'),
    expected: { kind: 'permanent', code: 'AccountSuspendedException', configError: true },
  },
  {
    name: 'SendingPausedException',
    reply: typed(400, 'SendingPausedException', 'Sending is paused for this configuration set.'),
    expected: { kind: 'permanent', code: 'SendingPausedException', configError: true },
  },
  {
    name: 'NotFoundException',
    reply: typed(404, 'NotFoundException', 'Configuration set herald-events does not exist.'),
    expected: { kind: 'permanent', code: 'NotFoundException', configError: true },
  },
  {
    name: 'LimitExceededException',
    reply: typed(400, 'LimitExceededException', 'Maximum sending rate exceeded.'),
    expected: { kind: 'retryable', code: 'LimitExceededException' },
  },
  {
    name: 'TooManyRequestsException',
    reply: typed(429, 'TooManyRequestsException', 'Too many requests.', { 'Retry-After': '4' }),
    expected: { kind: 'retryable', code: 'TooManyRequestsException', retryAfterSeconds: 4 },
  },
  {
    name: 'body __type only',
    reply: jsonResponse(400, { __type: 'com.amazonaws.sesv2#AccountSuspendedException', message: 'x' }),
    expected: { kind: 'permanent', code: 'AccountSuspendedException', configError: true },
  },
  {
    name: '403 signature mismatch',
    reply: typed(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match.'),
    expected: { kind: 'permanent', code: 'SignatureDoesNotMatch', configError: true },
  },
  {
    name: '403 unknown key',
    reply: typed(
      403,
      'UnrecognizedClientException',
      'The security token included in the request is invalid.',
    ),
    expected: { kind: 'permanent', code: 'UnrecognizedClientException', configError: true },
  },
  {
    name: '500 InternalFailure',
    reply: typed(500, 'InternalFailure', 'Internal failure.'),
    expected: { kind: 'retryable', code: 'InternalFailure' },
  },
  {
    name: '503 no body',
    reply: textResponse(503, ''),
    expected: { kind: 'retryable', code: 'http_503', reason: 'http_503' },
  },
  {
    name: '301 redirect is not followed',
    reply: textResponse(301, null, { location: 'https://elsewhere.example/' }),
    expected: { kind: 'permanent', code: 'http_301' },
  },
  ...networkRows(SEND.url),
];

describe('ses answers', () => {
  answerTable(SES, ANSWERS);
});

describe('ses refusals', () => {
  refusalTable(SES, EMAIL_REFUSALS);
});

describe('ses config', () => {
  it('names every missing variable', () => {
    const error = missingCredentials(() =>
      sesConfigFromEnv({ EMAIL_FROM: 'noreply@example.com', AWS_SESSION_TOKEN: 'x' }),
    );
    expect(error.variables).toEqual(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION']);
  });

  it('derives the default endpoint from AWS_REGION', () => {
    expect(sesConfigFromEnv({ ...env, AWS_REGION: 'us-east-2' }).baseUrl).toBe(
      'https://email.us-east-2.amazonaws.com',
    );
  });
});

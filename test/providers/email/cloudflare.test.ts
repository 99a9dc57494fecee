import { describe, expect, it } from 'vitest';
import {
  CLOUDFLARE_EMAIL_LIMITS,
  type CloudflareEmailMessage,
  cloudflare,
  cloudflareConfigFromEnv,
} from '../../../src/providers/email/cloudflare';
import { missingCredentials } from '../../helpers/credentials';
import { expectOutcome, noNetwork, type Outcome } from '../harness';
import { EMAIL_REFUSALS, emailRequest, HTML, TEXT, UNSUBSCRIBE_HEADERS } from './fixtures';

/** A fake `send_email` binding that records calls and answers from a script. */
function fakeBinding(answer: { messageId: string } | Error = { messageId: '<0192abcd@example.com>' }) {
  const calls: CloudflareEmailMessage[] = [];
  return {
    calls,
    binding: {
      async send(message: CloudflareEmailMessage) {
        calls.push(structuredClone(message));
        if (answer instanceof Error) throw answer;
        return answer;
      },
    },
  };
}

/** Errors thrown by the binding are standard Errors with a `code` property. */
function bindingError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

// Binding API per https://developers.cloudflare.com/email-service/api/send-emails/workers-api/
describe('cloudflare send_email binding', () => {
  it('calls send() with the structured message and returns its messageId', async () => {
    const { binding, calls } = fakeBinding();
    const provider = cloudflare.create(
      { EMAIL: binding, EMAIL_FROM: 'Herald <noreply@example.com>' },
      noNetwork,
    );
    expectOutcome(await provider.send(emailRequest()), {
      kind: 'sent',
      providerMessageId: '<0192abcd@example.com>',
    });
    expect(calls).toEqual([
      {
        to: 'ada@example.org',
        from: { email: 'noreply@example.com', name: 'Herald' },
        subject: 'Your invoice is paid',
        html: HTML,
        text: TEXT,
        headers: UNSUBSCRIBE_HEADERS,
      },
    ]);
  });

  it('passes a bare sender as a string and sets replyTo', async () => {
    const { binding, calls } = fakeBinding();
    const env = {
      EMAIL: binding,
      EMAIL_FROM: 'noreply@example.com',
      EMAIL_REPLY_TO: 'Support <support@example.com>',
    };
    await cloudflare.create(env, noNetwork).send(emailRequest({ html: undefined, headers: undefined }));
    expect(calls).toEqual([
      {
        to: 'ada@example.org',
        from: 'noreply@example.com',
        subject: 'Your invoice is paid',
        text: TEXT,
        replyTo: { email: 'support@example.com', name: 'Support' },
      },
    ]);
  });

  it('declares its documented limits and no timeout (the binding is not an HTTP call)', () => {
    expect(cloudflare.limits).toBe(CLOUDFLARE_EMAIL_LIMITS);
    expect(CLOUDFLARE_EMAIL_LIMITS).toEqual({ maxBodyBytes: 5 * 1024 * 1024, recipientsPerRequest: 50 });
  });

  const ERRORS: [string, Omit<Outcome, 'code'>][] = [
    ['E_SENDER_NOT_VERIFIED', { kind: 'permanent', configError: true }],
    ['E_SENDER_DOMAIN_NOT_AVAILABLE', { kind: 'permanent', configError: true }],
    ['E_RECIPIENT_NOT_ALLOWED', { kind: 'permanent', configError: true }],
    ['E_RECIPIENT_SUPPRESSED', { kind: 'permanent', invalidAddress: true }],
    ['E_VALIDATION_ERROR', { kind: 'permanent' }],
    ['E_FIELD_MISSING', { kind: 'permanent' }],
    ['E_TOO_MANY_RECIPIENTS', { kind: 'permanent' }],
    ['E_CONTENT_TOO_LARGE', { kind: 'permanent' }],
    ['E_HEADER_NOT_ALLOWED', { kind: 'permanent' }],
    ['E_HEADER_USE_API_FIELD', { kind: 'permanent' }],
    ['E_HEADER_VALUE_INVALID', { kind: 'permanent' }],
    ['E_HEADER_VALUE_TOO_LONG', { kind: 'permanent' }],
    ['E_HEADER_NAME_INVALID', { kind: 'permanent' }],
    ['E_HEADERS_TOO_LARGE', { kind: 'permanent' }],
    ['E_HEADERS_TOO_MANY', { kind: 'permanent' }],
    ['E_DELIVERY_FAILED', { kind: 'retryable' }],
    ['E_RATE_LIMIT_EXCEEDED', { kind: 'retryable' }],
    ['E_DAILY_LIMIT_EXCEEDED', { kind: 'retryable' }],
    ['E_INTERNAL_SERVER_ERROR', { kind: 'retryable' }],
    ['E_SOMETHING_NEW', { kind: 'retryable' }],
  ];

  it.each(ERRORS)('maps the documented error %s', async (code, expected) => {
    const { binding } = fakeBinding(bindingError(code, `${code} happened`));
    const result = await cloudflare
      .create({ EMAIL: binding, EMAIL_FROM: 'noreply@example.com' }, noNetwork)
      .send(emailRequest());
    expectOutcome(result, { ...expected, code, reason: `${code}: ${code} happened` });
  });

  it('treats an error without a code as retryable', async () => {
    const { binding } = fakeBinding(new Error('internal error'));
    const result = await cloudflare
      .create({ EMAIL: binding, EMAIL_FROM: 'noreply@example.com' }, noNetwork)
      .send(emailRequest());
    expectOutcome(result, {
      kind: 'retryable',
      code: 'binding_error',
      reason: 'send_email binding error: internal error',
    });
  });

  it.each(EMAIL_REFUSALS)('refuses $name without calling the binding', async (row) => {
    const { binding, calls } = fakeBinding();
    const provider = cloudflare.create({ EMAIL: binding, EMAIL_FROM: 'noreply@example.com' }, noNetwork);
    expectOutcome(await provider.send(row.request()), row.expected);
    expect(calls).toHaveLength(0);
  });

  it('names the missing binding and sender', () => {
    for (const [env, missing] of [
      [{}, ['EMAIL binding', 'EMAIL_FROM']],
      [{ EMAIL_FROM: 'noreply@example.com' }, ['EMAIL binding']],
      [{ EMAIL: { notSend: true }, EMAIL_FROM: 'noreply@example.com' }, ['EMAIL binding']],
      [{ EMAIL: fakeBinding().binding }, ['EMAIL_FROM']],
    ] as const) {
      expect(missingCredentials(() => cloudflareConfigFromEnv(env)).variables).toEqual(missing);
    }
  });
});

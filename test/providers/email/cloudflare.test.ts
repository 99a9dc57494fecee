import { describe, expect, it } from 'vitest';
import {
  type CloudflareEmailMessage,
  cloudflare,
  cloudflareConfigFromEnv,
} from '../../../src/providers/email/cloudflare';
import { missingCredentials } from '../../helpers/credentials';
import { classOf, deps, emailRequest, UNSUBSCRIBE_HEADERS } from './helpers';

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

const noFetch = deps(async () => {
  throw new Error('the binding provider must not use fetch');
});

// Binding API per https://developers.cloudflare.com/email-service/api/send-emails/workers-api/
describe('cloudflare send_email binding', () => {
  it('calls send() with the structured message and returns its messageId', async () => {
    const { binding, calls } = fakeBinding();
    const provider = cloudflare.create(
      { EMAIL: binding, EMAIL_FROM: 'Herald <noreply@example.com>' },
      noFetch,
    );
    const result = await provider.send(emailRequest());

    expect(result).toEqual({ kind: 'sent', providerMessageId: '<0192abcd@example.com>' });
    expect(calls).toEqual([
      {
        to: 'ada@example.org',
        from: { email: 'noreply@example.com', name: 'Herald' },
        subject: 'Your invoice is paid',
        html: '<p>Thanks, Ada. Invoice <b>#42</b> is paid.</p>',
        text: 'Thanks, Ada. Invoice #42 is paid.',
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
    await cloudflare.create(env, noFetch).send(emailRequest({ html: undefined, headers: undefined }));
    expect(calls).toEqual([
      {
        to: 'ada@example.org',
        from: 'noreply@example.com',
        subject: 'Your invoice is paid',
        text: 'Thanks, Ada. Invoice #42 is paid.',
        replyTo: { email: 'support@example.com', name: 'Support' },
      },
    ]);
  });

  it('maps the documented error codes', async () => {
    const table: [string, Record<string, unknown>][] = [
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
    for (const [code, expected] of table) {
      const { binding } = fakeBinding(bindingError(code, `${code} happened`));
      const result = await cloudflare
        .create({ EMAIL: binding, EMAIL_FROM: 'noreply@example.com' }, noFetch)
        .send(emailRequest());
      expect(classOf(result), code).toEqual(expected);
      expect(result.kind !== 'sent' && result.code, code).toBe(code);
    }
  });

  it('treats an error without a code as retryable', async () => {
    const { binding } = fakeBinding(new Error('internal error'));
    const result = await cloudflare
      .create({ EMAIL: binding, EMAIL_FROM: 'noreply@example.com' }, noFetch)
      .send(emailRequest());
    expect(result.kind).toBe('retryable');
  });

  it('refuses deliveries that cannot be emails without calling the binding', async () => {
    const { binding, calls } = fakeBinding();
    const provider = cloudflare.create({ EMAIL: binding, EMAIL_FROM: 'noreply@example.com' }, noFetch);
    expect((await provider.send(emailRequest({ subject: undefined }))).kind).toBe('permanent');
    expect((await provider.send(emailRequest({}, { channel: 'sms', phone: '+15555550100' }))).kind).toBe(
      'permanent',
    );
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

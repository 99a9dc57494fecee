import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import {
  parseResendCallback,
  resendCallbackConfigFromEnv,
  verifyResendCallback,
} from '../../src/callbacks/resend';
import { CallbackConfigError, type CallbackEvent } from '../../src/callbacks/types';
import { base64, memoryReplayGuard, refused, request, STALE_OFFSETS_SECONDS } from './helpers';

const NOW = Date.parse('2026-05-01T12:00:00Z');
const SECRET = `whsec_${base64(new TextEncoder().encode('herald-test-signing-secret-32byte'))}`;
const OTHER_SECRET = `whsec_${base64(new TextEncoder().encode('an-attacker-chosen-secret-32byte'))}`;
const MSG_ID = 'msg_2Lh9KRb0pzN4LePd3XiA5ZvFSgJ';
const CONFIG = (() => {
  const config = resendCallbackConfigFromEnv({ RESEND_WEBHOOK_SECRET: SECRET });
  if (!config) throw new Error('expected a config');
  return config;
})();

// From Resend's event types page (https://resend.com/docs/dashboard/webhooks/event-types).
const DELIVERED = JSON.stringify({
  type: 'email.delivered',
  created_at: '2024-02-22T23:41:12.126Z',
  data: {
    created_at: '2024-02-22T23:41:11.894719+00:00',
    email_id: '56761188-7520-42d8-8898-ff6fc54ce618',
    from: 'Acme <onboarding@resend.dev>',
    to: ['delivered@resend.dev'],
    subject: 'Sending this example',
  },
});

/** Signs with the standardwebhooks library (the Svix scheme), independent of the code under test. */
function svixRequest(body: string, options: { secret?: string; id?: string; atMs?: number } = {}) {
  const at = new Date(options.atMs ?? NOW);
  const id = options.id ?? MSG_ID;
  const signature = new Webhook(options.secret ?? SECRET).sign(id, at, body);
  return request({
    headers: {
      'content-type': 'application/json',
      'svix-id': id,
      'svix-timestamp': String(Math.floor(at.getTime() / 1000)),
      'svix-signature': signature,
    },
    body,
  });
}

describe('resend callback config', () => {
  it('is null when unset, decodes whsec_ secrets, refuses malformed ones', () => {
    expect(resendCallbackConfigFromEnv({})).toBeNull();
    expect(new TextDecoder().decode(CONFIG.key)).toBe('herald-test-signing-secret-32byte');
    expect(() => resendCallbackConfigFromEnv({ RESEND_WEBHOOK_SECRET: 'whsec_!!!' })).toThrow(
      CallbackConfigError,
    );
    expect(() => resendCallbackConfigFromEnv({ RESEND_WEBHOOK_SECRET: 'whsec_' })).toThrow(
      CallbackConfigError,
    );
  });
});

describe('resend (svix) signature', () => {
  it('accepts a request signed by the standardwebhooks library', async () => {
    expect(await verifyResendCallback(svixRequest(DELIVERED), CONFIG, NOW)).toEqual({ ok: true });
  });

  it('accepts when one of several signatures matches (secret rotation)', async () => {
    const genuine = svixRequest(DELIVERED);
    const signature = genuine.headers.get('svix-signature') ?? '';
    const stale = new Webhook(OTHER_SECRET).sign(MSG_ID, new Date(NOW), DELIVERED);
    genuine.headers.set('svix-signature', `${stale} v1a,ignored ${signature}`);
    expect(await verifyResendCallback(genuine, CONFIG, NOW)).toEqual({ ok: true });
  });

  it('refuses a request signed with another secret (forged)', async () => {
    const verdict = await verifyResendCallback(svixRequest(DELIVERED, { secret: OTHER_SECRET }), CONFIG, NOW);
    expect(verdict).toEqual(refused('signature mismatch'));
  });

  it('refuses an altered body', async () => {
    const genuine = svixRequest(DELIVERED);
    const altered = { ...genuine, body: DELIVERED.replace('email.delivered', 'email.bounced') };
    expect(await verifyResendCallback(altered, CONFIG, NOW)).toEqual(refused('signature mismatch'));
  });

  it('refuses an altered svix-id (the id is part of the signed content)', async () => {
    const genuine = svixRequest(DELIVERED);
    genuine.headers.set('svix-id', 'msg_other');
    expect(await verifyResendCallback(genuine, CONFIG, NOW)).toEqual(refused('signature mismatch'));
  });

  it.each(STALE_OFFSETS_SECONDS)('refuses a genuinely signed timestamp %s', async (_name, offsetSeconds) => {
    const offsetMs = offsetSeconds * 1000;
    const verdict = await verifyResendCallback(svixRequest(DELIVERED, { atMs: NOW + offsetMs }), CONFIG, NOW);
    expect(verdict).toEqual(refused('stale timestamp'));
  });

  it('accepts a timestamp 4 minutes old', async () => {
    expect(await verifyResendCallback(svixRequest(DELIVERED, { atMs: NOW - 240_000 }), CONFIG, NOW)).toEqual({
      ok: true,
    });
  });

  it('refuses missing headers and signatures without a v1 entry', async () => {
    for (const header of ['svix-id', 'svix-timestamp', 'svix-signature']) {
      const genuine = svixRequest(DELIVERED);
      genuine.headers.delete(header);
      expect(await verifyResendCallback(genuine, CONFIG, NOW)).toEqual(refused('missing signature'));
    }
    const unversioned = svixRequest(DELIVERED);
    unversioned.headers.set(
      'svix-signature',
      (unversioned.headers.get('svix-signature') ?? '').replace('v1,', ''),
    );
    expect((await verifyResendCallback(unversioned, CONFIG, NOW)).ok).toBe(false);
  });

  it('refuses, without throwing, when the replay store fails', async () => {
    const broken = {
      seen: async (): Promise<boolean> => {
        throw new Error('store down');
      },
    };
    expect(await verifyResendCallback(svixRequest(DELIVERED), CONFIG, NOW, broken)).toEqual(
      refused('replay check unavailable'),
    );
  });

  it('refuses an exact replay when given a replay guard, but not a re-signed retry', async () => {
    const replay = memoryReplayGuard();
    const genuine = svixRequest(DELIVERED);
    expect(await verifyResendCallback(genuine, CONFIG, NOW, replay)).toEqual({ ok: true });
    expect(await verifyResendCallback(genuine, CONFIG, NOW, replay)).toEqual(refused('replayed'));
    // Svix retries keep the id and sign again with a new timestamp.
    const retry = svixRequest(DELIVERED, { atMs: NOW + 5_000 });
    expect(await verifyResendCallback(retry, CONFIG, NOW + 5_000, replay)).toEqual({ ok: true });
  });
});

describe('resend event parsing', () => {
  const data = {
    created_at: '2024-11-22T23:41:11.894719+00:00',
    email_id: '56761188-7520-42d8-8898-ff6fc54ce618',
    from: 'Acme <onboarding@resend.dev>',
    to: ['delivered@resend.dev'],
    subject: 'Sending this example',
  };
  const base = {
    providerMessageId: '56761188-7520-42d8-8898-ff6fc54ce618',
    occurredAt: '2024-11-22T23:41:12.126Z',
  };
  const rows: [string, string, Record<string, unknown>, CallbackEvent[]][] = [
    ['sent', 'email.sent', {}, []],
    ['delivery_delayed', 'email.delivery_delayed', {}, []],
    ['delivered', 'email.delivered', {}, [{ status: 'delivered', ...base }]],
    [
      'bounced (documented: permanently rejected)',
      'email.bounced',
      {
        bounce: {
          message:
            "The recipient's email address is on the suppression list because it has a recent history of producing hard bounces.",
          subType: 'Suppressed',
          type: 'Permanent',
        },
      },
      [{ status: 'bounced', ...base, reason: 'resend bounce Permanent Suppressed', suppressAddress: true }],
    ],
    [
      'bounced without a bounce object',
      'email.bounced',
      {},
      [{ status: 'bounced', ...base, reason: 'resend bounce', suppressAddress: true }],
    ],
    [
      'bounced, but Transient (mailbox full)',
      'email.bounced',
      { bounce: { message: 'inbox was full', subType: 'MailboxFull', type: 'Transient' } },
      [{ status: 'failed', ...base, reason: 'resend bounce Transient MailboxFull' }],
    ],
    [
      'complained',
      'email.complained',
      {},
      [{ status: 'complained', ...base, reason: 'resend complaint', suppressAddress: true }],
    ],
    [
      'failed',
      'email.failed',
      { failed: { reason: 'reached_daily_quota' } },
      [{ status: 'failed', ...base, reason: 'resend failed reached_daily_quota' }],
    ],
    [
      'suppressed',
      'email.suppressed',
      {},
      [{ status: 'failed', ...base, reason: 'resend suppressed', suppressAddress: true }],
    ],
    ['opened', 'email.opened', {}, [{ status: 'opened', ...base }]],
    [
      'clicked',
      'email.clicked',
      { click: { link: 'https://resend.com', timestamp: '2024-11-24T05:00:57.163Z' } },
      [{ status: 'clicked', ...base }],
    ],
    ['a contact event', 'contact.created', {}, []],
  ];

  it.each(rows)('%s', (_name, type, extra, expected) => {
    const body = JSON.stringify({
      type,
      created_at: '2024-11-22T23:41:12.126Z',
      data: { ...data, ...extra },
    });
    expect(parseResendCallback(body, new Headers())).toEqual(expected);
  });

  it.each([
    ['object tags', { delivery_id: 'dlv_1', category: 'confirm_email' }],
    [
      'array tags',
      [
        { name: 'category', value: 'x' },
        { name: 'delivery_id', value: 'dlv_1' },
      ],
    ],
  ])('reads the delivery id from %s', (_name, tags) => {
    const body = JSON.stringify({
      type: 'email.delivered',
      created_at: '2024-11-22T23:41:12.126Z',
      data: { ...data, tags },
    });
    expect(parseResendCallback(body, new Headers())).toEqual([
      { status: 'delivered', deliveryId: 'dlv_1', ...base },
    ]);
  });

  it('returns nothing without a data object', () => {
    expect(parseResendCallback('{"type":"email.delivered"}', new Headers())).toEqual([]);
    expect(parseResendCallback('[]', new Headers())).toEqual([]);
  });
});

import { describe, expect, it } from 'vitest';
import type { Address } from '../../src/domain/address';
import type { Contact } from '../../src/domain/contact';
import {
  maskChatId,
  maskDeviceToken,
  maskEmail,
  maskPhone,
  maskUrl,
  viewAddress,
  viewContact,
} from '../../src/domain/masking';

const WEBPUSH = JSON.stringify({
  endpoint: 'https://updates.push.services.mozilla.com/wpush/v2/gAAAAABsecretpath',
  keys: { p256dh: `B${'A'.repeat(86)}`, auth: 'A'.repeat(22) },
});
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

describe('masking rules', () => {
  it.each([
    ['ada@example.com', 'a***@example.com'],
    ['Grace.Hopper+tag@mail.example.org', 'G***@mail.example.org'],
    ['x@y.io', 'x***@y.io'],
    ['"odd@local"@example.com', '"***@example.com'],
    ['no-at-sign', '***'],
    ['@example.com', '***'],
    ['trailing@', '***'],
  ])('an email %s is masked as %s', (email, masked) => {
    expect(maskEmail(email)).toBe(masked);
  });

  it.each([
    ['+14155550123', '+1415***0123'],
    ['+447911123456', '+4479***3456'],
    ['+33612345678', '+3361***5678'],
    ['+12345678', '+12***78'],
    ['+1234567', '+12***67'],
    ['+12345', '+1***5'],
    ['+123', '***'],
  ])('a phone %s is masked as %s', (phone, masked) => {
    expect(maskPhone(phone)).toBe(masked);
  });

  it('a phone shows at most 4 digits on each side, and always hides at least 3', () => {
    for (let digits = 1; digits <= 15; digits += 1) {
      const phone = `+${'123456789012345'.slice(0, digits)}`;
      const shown = maskPhone(phone).replace(/\D/g, '').length;
      expect(shown, phone).toBeLessThanOrEqual(Math.min(8, Math.max(0, digits - 3)));
    }
  });

  it('a device token keeps its last 6 characters; a web push subscription only its push host', () => {
    expect(maskDeviceToken('a1'.repeat(32), 'apns')).toBe('***a1a1a1');
    expect(maskDeviceToken(`fcm-${'x'.repeat(40)}:APA91bQRSTUV`, 'fcm')).toBe('***QRSTUV');
    expect(maskDeviceToken(WEBPUSH, 'webpush')).toBe('https://updates.push.services.mozilla.com/***');
    expect(maskDeviceToken(WEBPUSH)).toBe('https://updates.push.services.mozilla.com/***');
    expect(maskDeviceToken('{not json', 'webpush')).toBe('***');
    expect(maskDeviceToken('short', 'apns')).toBe('***');
  });

  it('a URL keeps its scheme and host only: no path, query, fragment or credentials', () => {
    expect(maskUrl('https://hooks.slack.com/services/T000/B000/XXXX')).toBe('https://hooks.slack.com/***');
    expect(maskUrl('https://user:pass@example.com:8443/a?b=c#d')).toBe('https://example.com:8443/***');
    expect(maskUrl('not a url')).toBe('***');
    expect(maskUrl(undefined)).toBe('***');
  });

  it('a Telegram chat keeps its last 4 characters when it has 8 or more', () => {
    expect(maskChatId('-1001234567890')).toBe('***7890');
    expect(maskChatId('@herald_updates')).toBe('***ates');
    expect(maskChatId('1234567')).toBe('***');
  });
});

describe('views', () => {
  const addresses: Address[] = [
    { channel: 'email', email: 'ada@example.com' },
    { channel: 'sms', phone: '+14155550123' },
    { channel: 'push', platform: 'apns', deviceToken: 'f0'.repeat(32) },
    { channel: 'chat', platform: 'slack', url: 'https://hooks.slack.com/services/T1/B2/S3' },
    { channel: 'chat', platform: 'telegram', chatId: '-1001234567890' },
    { channel: 'webhook', url: 'https://example.com/hook/path', secret: SECRET },
    { channel: 'webhook', url: 'https://example.com/other' },
  ];

  it('masked addresses keep their shape and hide every value', () => {
    expect(addresses.map((a) => viewAddress(a, 'masked'))).toEqual([
      { channel: 'email', email: 'a***@example.com' },
      { channel: 'sms', phone: '+1415***0123' },
      { channel: 'push', platform: 'apns', deviceToken: '***f0f0f0' },
      { channel: 'chat', platform: 'slack', url: 'https://hooks.slack.com/***' },
      { channel: 'chat', platform: 'telegram', chatId: '***7890' },
      { channel: 'webhook', url: 'https://example.com/***', secretSet: true },
      { channel: 'webhook', url: 'https://example.com/***', secretSet: false },
    ]);
  });

  it('whole addresses are as stored, except that a webhook secret is only ever secretSet', () => {
    const whole = addresses.map((a) => viewAddress(a, 'whole'));
    expect(whole.slice(0, 5)).toEqual(addresses.slice(0, 5));
    expect(whole.slice(5)).toEqual([
      { channel: 'webhook', url: 'https://example.com/hook/path', secretSet: true },
      { channel: 'webhook', url: 'https://example.com/other', secretSet: false },
    ]);
    expect(JSON.stringify(whole)).not.toContain('whsec_');
  });

  it('a contact in either view never carries a secret; masked, none of its addresses', () => {
    const contact: Contact = {
      userId: 'u1',
      email: 'ada@example.com',
      phone: '+14155550123',
      deviceTokens: [{ deviceToken: WEBPUSH, platform: 'webpush' }],
      externalChannels: [
        { platform: 'discord', url: 'https://discord.com/api/webhooks/1/abc', status: true },
        { platform: 'webhook', url: 'https://example.com/hook', secret: SECRET, status: false },
      ],
      locale: null,
      timezone: null,
      smsOptedOut: false,
      createdAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-01T00:00:00.000Z',
    };
    const whole = viewContact(contact, 'whole');
    expect(whole.externalChannels).toEqual([
      { platform: 'discord', url: 'https://discord.com/api/webhooks/1/abc', status: true },
      { platform: 'webhook', url: 'https://example.com/hook', secretSet: true, status: false },
    ]);
    expect(whole.deviceTokens).toEqual(contact.deviceTokens);
    const masked = JSON.stringify(viewContact(contact, 'masked'));
    for (const hidden of ['whsec_', 'ada@', '4155550123', 'gAAAA', '/api/webhooks', '/hook']) {
      expect(masked).not.toContain(hidden);
    }
    // the input is never changed
    expect(contact.externalChannels[1]?.secret).toBe(SECRET);
  });
});

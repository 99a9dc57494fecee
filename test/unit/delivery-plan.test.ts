import { describe, expect, it } from 'vitest';
import { planDeliveries, type ResolvedRecipient } from '../../src/domain/delivery-plan';

const base: ResolvedRecipient = {
  userId: 'u1',
  known: true,
  email: null,
  phone: null,
  deviceTokens: [],
  externalChannels: [],
  smsOptedOut: false,
};

describe('planDeliveries', () => {
  it('chat takes active chat platforms only; webhook takes webhook endpoints', () => {
    const r: ResolvedRecipient = {
      ...base,
      externalChannels: [
        { platform: 'slack', url: 'https://hooks.slack.com/a', status: true },
        { platform: 'discord', url: 'https://discord.com/api/webhooks/1/x', status: false },
        { platform: 'telegram', chatId: '42', status: true },
        { platform: 'webhook', url: 'https://example.com/h', status: true },
      ],
    };
    const planned = planDeliveries(r, ['chat', 'webhook'], false);
    expect(planned.map((p) => p.address)).toEqual([
      { channel: 'chat', platform: 'slack', url: 'https://hooks.slack.com/a' },
      { channel: 'chat', platform: 'telegram', chatId: '42' },
      { channel: 'webhook', url: 'https://example.com/h' },
    ]);
  });

  it('channels without an address are left out when the producer named none', () => {
    const planned = planDeliveries({ ...base, email: 'a@example.com' }, ['email', 'sms', 'push'], false);
    expect(planned.map((p) => [p.channel, p.status])).toEqual([['email', 'created']]);
  });

  it('named channels without an address are skipped with a reason', () => {
    const planned = planDeliveries({ ...base, email: 'a@example.com' }, ['email', 'sms'], true);
    expect(planned.map((p) => [p.channel, p.status, p.reason])).toEqual([
      ['email', 'created', undefined],
      ['sms', 'skipped', 'no phone number for this recipient'],
    ]);
  });

  it('a recipient with no address at all gets one skipped delivery per candidate channel', () => {
    const planned = planDeliveries(base, ['email', 'sms'], false);
    expect(planned.map((p) => [p.channel, p.status])).toEqual([
      ['email', 'skipped'],
      ['sms', 'skipped'],
    ]);
  });

  it('an unknown user id is skipped as unknown recipient', () => {
    const planned = planDeliveries({ ...base, known: false }, ['email'], false);
    expect(planned[0]?.reason).toBe('unknown recipient');
  });

  it('an SMS opt-out is suppressed at planning time', () => {
    const planned = planDeliveries({ ...base, phone: '+14155550123', smsOptedOut: true }, ['sms'], false);
    expect(planned[0]).toMatchObject({ status: 'suppressed', reason: 'recipient opted out of SMS (STOP)' });
  });
});

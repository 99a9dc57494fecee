import { describe, expect, it } from 'vitest';
import { NOVU_SOURCE, novuFieldName, novuPath, toNotificationInput } from '../../src/services/novu/mapping';
import { APNS_TOKEN, FCM_TOKEN, SLACK_URL } from '../helpers/api';

/** The mapping table (Novu's trigger → Herald's notification), rule by rule. */
describe('Novu trigger → Herald notification', () => {
  it('maps name, payload, transactionId and actor; the source says where it came from', () => {
    expect(
      toNotificationInput({
        name: 'comment_added',
        to: 'user_1',
        payload: { post: 42 },
        transactionId: 'tx-1',
        actor: 'user_2',
      }),
    ).toEqual({
      id: 'tx-1',
      type: 'comment_added',
      source: NOVU_SOURCE,
      recipients: ['user_1'],
      data: { post: 42 },
      actor: 'user_2',
    });
    const minimal = toNotificationInput({ name: 't', to: ['a', 'b'], actor: { subscriberId: 'user_3' } });
    expect(minimal).toEqual({ type: 't', source: 'novu', recipients: ['a', 'b'], actor: 'user_3' });
  });

  it('a subscriber with addresses is an inline recipient; names, avatar, data and nulls are dropped', () => {
    const { recipients } = toNotificationInput({
      name: 't',
      to: [
        { subscriberId: 'plain', firstName: 'Ada', avatar: 'https://x.example/a.png', data: { a: 1 } },
        {
          subscriberId: 'inline',
          email: 'ada@example.com',
          phone: null,
          locale: 'en_GB',
          timezone: 'Europe/London',
          lastName: 'Lovelace',
        },
      ],
    });
    expect(recipients).toEqual([
      'plain',
      { userId: 'inline', email: 'ada@example.com', locale: 'en-GB', timezone: 'Europe/London' },
    ]);
  });

  it('maps fcm and apns tokens and slack, discord and msteams webhooks; other providers are ignored', () => {
    const { recipients } = toNotificationInput({
      name: 't',
      to: {
        subscriberId: 'u',
        channels: [
          { providerId: 'fcm', credentials: { deviceTokens: [FCM_TOKEN] } },
          { providerId: 'apns', credentials: { deviceTokens: [APNS_TOKEN] } },
          { providerId: 'slack', credentials: { webhookUrl: SLACK_URL } },
          { providerId: 'discord', credentials: { webhookUrl: 'https://discord.com/api/webhooks/1/x' } },
          { providerId: 'msteams', credentials: { webhookUrl: 'https://x.webhook.office.com/y' } },
          { providerId: 'msteams', credentials: {} },
          { providerId: 'expo', credentials: { deviceTokens: ['ExponentPushToken[x]'] } },
          { providerId: 'telegram', credentials: { webhookUrl: 'https://t.example' } },
        ],
      },
    });
    expect(recipients).toEqual([
      {
        userId: 'u',
        deviceTokens: [
          { deviceToken: FCM_TOKEN, platform: 'fcm' },
          { deviceToken: APNS_TOKEN, platform: 'apns' },
        ],
        externalChannels: [
          { platform: 'slack', url: SLACK_URL, status: true },
          { platform: 'discord', url: 'https://discord.com/api/webhooks/1/x', status: true },
          { platform: 'teams', url: 'https://x.webhook.office.com/y', status: true },
        ],
      },
    ]);
  });

  it('a topic is { topic, exclude }', () => {
    const { recipients } = toNotificationInput({
      name: 't',
      to: [
        { type: 'Topic', topicKey: 'followers', exclude: ['u_1'] },
        { type: 'Topic', topicKey: 'all', exclude: [] },
      ],
    });
    expect(recipients).toEqual([{ topic: 'followers', exclude: ['u_1'] }, { topic: 'all' }]);
  });

  it('names a Herald field as the Novu body does', () => {
    const cases: [string, boolean, string][] = [
      ['type', true, 'name'],
      ['id', true, 'transactionId'],
      ['data', true, 'payload'],
      ['data.big', true, 'payload.big'],
      ['recipients', true, 'to'],
      ['recipients[2].email', true, 'to[2].email'],
      ['recipients[0].email', false, 'to.email'],
      ['recipients[1].userId', true, 'to[1].subscriberId'],
      ['recipients[1].deviceTokens[0].deviceToken', true, 'to[1].channels'],
      ['recipients[0].topic', false, 'to.topicKey'],
      ['recipients[0].exclude[3]', true, 'to[0].exclude[3]'],
      ['actor', true, 'actor'],
    ];
    for (const [herald, toIsList, novu] of cases) {
      expect(novuFieldName(herald, toIsList), herald).toBe(novu);
    }
    expect(novuPath(['recipients', 0, 'phone'], true)).toEqual(['to', 0, 'phone']);
  });
});

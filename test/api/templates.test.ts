import { describe, expect, it } from 'vitest';
import { api, json, newContact, uniqueUser } from '../helpers/api';
import { readDelivery, readOutbox } from '../helpers/deliveries';
import { drainQueues, envWithCapturedQueues, sendNotification } from '../helpers/queues';

interface ErrorBody {
  error: { code: string; message: string; details?: { field: string; line?: number }[] };
}

const uniqueType = () =>
  `t_${uniqueUser('x')
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')}`;

describe('templates API', () => {
  it('PUT validates Liquid: a broken template is a 422 naming the part and the line, and nothing is stored', async () => {
    const type = uniqueType();
    const res = await api('PUT', `/v1/templates/${type}/email`, {
      parts: { subject: 'Hi', text: 'line one\nline two {% if x %}\nline three' },
    });
    expect(res.status).toBe(422);
    const err = await json<ErrorBody>(res);
    expect(err.error.code).toBe('template_error');
    expect(err.error.details?.[0]).toMatchObject({ field: 'parts.text', line: 2 });
    expect((await api('GET', `/v1/templates/${type}/email`)).status).toBe(404);
  });

  it('a part the channel does not have is refused', async () => {
    const res = await api('PUT', `/v1/templates/${uniqueType()}/sms`, { parts: { text: 'ok', title: 'no' } });
    expect(res.status).toBe(422);
    expect((await json<ErrorBody>(res)).error.details?.[0]?.field).toBe('parts.title');
  });

  it('PUT stores, GET reads, every version is kept and retrievable, DELETE removes the current one', async () => {
    const type = uniqueType();
    const v1 = await json<{ version: string }>(
      await api('PUT', `/v1/templates/${type}/sms`, { parts: { text: 'Hello {{ name }}' } }),
    );
    const v2 = await json<{ version: string }>(
      await api('PUT', `/v1/templates/${type}/sms`, { parts: { text: 'Hi {{ name }}!' } }),
    );
    expect(v1.version).not.toBe(v2.version);
    expect(await json(await api('GET', `/v1/templates/${type}/sms`))).toMatchObject({
      version: v2.version,
      parts: { text: 'Hi {{ name }}!' },
    });
    const versions = await json<{ data: { version: string }[] }>(
      await api('GET', `/v1/templates/${type}/sms/versions`),
    );
    expect(versions.data.map((v) => v.version).sort()).toEqual([v1.version, v2.version].sort());
    const old = await json(await api('GET', `/v1/templates/${type}/sms/versions?version=${v1.version}`));
    expect(old).toMatchObject({ parts: { text: 'Hello {{ name }}' } });
    expect((await api('DELETE', `/v1/templates/${type}/sms`)).status).toBe(204);
    expect((await api('GET', `/v1/templates/${type}/sms`)).status).toBe(404);
    expect(
      (await json<{ data: unknown[] }>(await api('GET', `/v1/templates/${type}/sms/versions`))).data,
    ).toHaveLength(2);
  });

  it('the version used is recorded on each delivery, so a sent message can be reproduced', async () => {
    const type = uniqueType();
    const { version } = await json<{ version: string }>(
      await api('PUT', `/v1/templates/${type}/email`, { parts: { subject: 'S {{ n }}', text: 'T {{ n }}' } }),
    );
    const captured = envWithCapturedQueues();
    const accepted = await sendNotification(captured, {
      type,
      recipients: [{ email: 'a@example.com' }],
      data: { n: 1 },
    });
    await drainQueues(captured);
    expect(await readDelivery(accepted.id)).toMatchObject({ status: 'sent', templateVersion: version });
  });

  it('locale fallback: fr-CA → fr → default', async () => {
    const type = uniqueType();
    await api('PUT', `/v1/templates/${type}/sms`, { parts: { text: 'Hello' } });
    await api('PUT', `/v1/templates/${type}/sms?locale=fr`, { parts: { text: 'Bonjour' } });
    const preview = async (locale?: string) =>
      await json<{ message: { text: string }; locale: string | null }>(
        await api('POST', `/v1/templates/${type}/preview`, {
          channel: 'sms',
          data: {},
          ...(locale ? { locale } : {}),
        }),
      );
    expect(await preview('fr-CA')).toMatchObject({ locale: 'fr', message: { text: 'Bonjour' } });
    expect(await preview('fr')).toMatchObject({ locale: 'fr', message: { text: 'Bonjour' } });
    expect(await preview('de-DE')).toMatchObject({ locale: null, message: { text: 'Hello' } });
    await api('PUT', `/v1/templates/${type}/sms?locale=fr-CA`, { parts: { text: 'Allô' } });
    expect(await preview('fr-CA')).toMatchObject({ locale: 'fr-CA', message: { text: 'Allô' } });
  });

  it('deliveries use the contact locale (order_shipped ships French email and SMS)', async () => {
    const captured = envWithCapturedQueues();
    const userId = await newContact({ email: 'a@example.com', locale: 'fr-CA' });
    await sendNotification(captured, {
      type: 'order_shipped',
      recipients: [userId],
      channels: ['email'],
      data: { order_id: 'A7' },
    });
    await drainQueues(captured);
    const [entry] = await readOutbox({ userId });
    expect(entry?.message.subject).toBe('Votre commande A7 a été expédiée');
  });

  it('preview renders with the sample data, escaping HTML parts', async () => {
    const res = await api('POST', '/v1/templates/payment_reminder/preview', {
      channel: 'email',
      data: { amount: '42.00', currency: 'EUR', due_date: '2026-12-01', name: '<b>Ada</b>' },
    });
    expect(res.status).toBe(200);
    const body = await json<{ message: { subject: string; html: string; text: string } }>(res);
    expect(body.message.subject).toBe('Payment reminder: 42.00 EUR due 2026-12-01');
    expect(body.message.html).toContain('Hello &lt;b&gt;Ada&lt;/b&gt;');
    expect(body.message.text).toContain('Hello <b>Ada</b>');
    expect(
      (await api('POST', '/v1/templates/payment_notification/preview', { channel: 'chat', data: {} })).status,
    ).toBe(404);
  });

  it('GET /v1/templates lists the shipped types with their channels, locales and configuration', async () => {
    const list = await json<{
      data: {
        type: string;
        channels: { channel: string; locales: string[] }[];
        config: Record<string, unknown>;
      }[];
    }>(await api('GET', '/v1/templates'));
    const shipped = list.data.find((t) => t.type === 'order_shipped');
    expect(shipped?.channels).toContainEqual({ channel: 'email', locales: ['fr'] });
    expect(shipped?.config).toMatchObject({ category: 'orders', trackClicks: true });
    expect(list.data.find((t) => t.type === 'security_alert')?.config).toMatchObject({
      preferences: { required: true },
    });
  });

  it('type configuration is validated by its schema at upload', async () => {
    const type = uniqueType();
    const bad = await api('PUT', `/v1/templates/${type}/config`, {
      rateLimits: { sms: { limit: 0, windowSeconds: 60 } },
    });
    expect(bad.status).toBe(422);
    expect((await json<ErrorBody>(bad)).error.details?.[0]?.field).toBe('rateLimits.sms.limit');
    const good = await api('PUT', `/v1/templates/${type}/config`, {
      channels: ['sms'],
      priority: 'high',
      dedupeWindowSeconds: 600,
    });
    expect(good.status).toBe(200);
    expect(await json(await api('GET', `/v1/templates/${type}/config`))).toEqual({
      channels: ['sms'],
      priority: 'high',
      dedupeWindowSeconds: 600,
    });
  });
});

import { afterEach, describe, expect, it, vi } from 'vitest';
import { CHANNELS } from '../../src/domain/channels';
import { ADMIN_KEY, api, json, testEnv } from '../helpers/api';
import { readOutbox } from '../helpers/deliveries';
import { consumeEnqueued, envWithCapturedQueues, sendNotification } from '../helpers/queues';

/**
 * A malicious producer (a key with `notifications:send`) controls only the template data; a
 * template author (`templates:write`) controls the templates. Neither can make Herald evaluate
 * data as a template, inject markup into email HTML, reach secrets, or re-address a message.
 */

afterEach(() => vi.restoreAllMocks());

const LIQUID = '{{ 7 | times: 7 }}{% assign x = 1 %}{% raw %}';
const MARKUP = '<img src=x onerror=alert(1)><script>alert(2)</script>';

interface Preview {
  message: Record<string, unknown>;
}

async function preview(type: string, channel: string, data: Record<string, unknown>): Promise<Preview> {
  const res = await api('POST', `/v1/templates/${type}/preview`, { channel, data });
  expect(res.status, await res.clone().text()).toBe(200);
  return json<Preview>(res);
}

describe('producer data is data, never template code', () => {
  it('Liquid syntax in data comes out literally on every channel', async () => {
    const data = { amount: LIQUID, currency: LIQUID, due_date: LIQUID, name: LIQUID, payment_url: LIQUID };
    for (const channel of CHANNELS) {
      const text = JSON.stringify((await preview('payment_reminder', channel, data)).message);
      expect(text, channel).not.toContain('49');
      // Webhook JSON escapes it, the HTML part entity-escapes quotes: the braces survive either way.
      expect(text, channel).toContain('{{ 7 | times: 7 }}');
    }
  });

  it('markup in data is escaped in email HTML', async () => {
    const { message } = await preview('payment_reminder', 'email', {
      amount: MARKUP,
      name: MARKUP,
      payment_url: 'https://pay.example.com/"><script>alert(3)</script>',
    });
    const html = String(message.html);
    expect(html).not.toMatch(/<script|<img/i);
    expect(html).toContain('&lt;script&gt;');
  });
});

describe('templates cannot reach secrets or the runtime', () => {
  it('a template naming env, secrets or prototypes renders nothing from them', async () => {
    const probe =
      '[{{ SIGNING_SECRET }}][{{ ADMIN_API_KEY }}][{{ env.SIGNING_SECRET }}][{{ env }}][{{ process.env }}]' +
      '[{{ recipient.constructor.constructor }}][{{ data.__proto__ }}][{{ globalThis }}]';
    const put = await api('PUT', '/v1/templates/sec_probe/sms', { parts: { text: probe } });
    expect(put.status, await put.clone().text()).toBe(200);
    const { message } = await preview('sec_probe', 'sms', { name: 'x' });
    expect(message.text).toBe('[][][][][][][][]');
    const text = JSON.stringify(message);
    for (const secret of [ADMIN_KEY, String(testEnv.SIGNING_SECRET)]) expect(text).not.toContain(secret);
  });

  it('include, render and layout cannot read files: rendering fails with a 422, no file content', async () => {
    for (const source of [
      "{% include 'wrangler.toml' %}",
      "{% render '/etc/passwd' %}",
      "{% layout 'package.json' %}",
    ]) {
      // They parse (so the template may be stored), but there is no file system to read at render time.
      const put = await api('PUT', '/v1/templates/sec_files/sms', { parts: { text: source } });
      expect([200, 422], source).toContain(put.status);
      if (put.status !== 200) continue;
      const res = await api('POST', '/v1/templates/sec_files/preview', { channel: 'sms', data: {} });
      expect(res.status, source).toBe(422);
      const text = await res.text();
      expect(text).not.toMatch(/compatibility_date|root:|"devDependencies"/);
    }
  });
});

describe('data cannot re-address a message', () => {
  it('recipient, delivery and notification in data do not override the real ones', async () => {
    const put = await api('PUT', '/v1/templates/sec_context/sms', {
      parts: { text: 'to={{ recipient.phone }} dlv={{ delivery.id }} ntf={{ notification.id }}' },
    });
    expect(put.status, await put.clone().text()).toBe(200);
    const captured = envWithCapturedQueues();
    const accepted = await sendNotification(captured, {
      type: 'sec_context',
      recipients: [{ phone: '+14155550100' }],
      channels: ['sms'],
      data: {
        recipient: { phone: '+19005550199' },
        delivery: { id: 'dlv_forged' },
        notification: { id: 'ntf_forged' },
      },
    });
    await consumeEnqueued(captured, 'sms');
    const [entry] = await readOutbox({ notificationId: accepted.id }, captured.env);
    const text = entry?.message.text ?? '';
    expect(text).toContain('to=+14155550100');
    expect(text).toContain(`dlv=${accepted.deliveries[0]?.id}`);
    expect(text).toContain(`ntf=${accepted.id}`);
    expect(text).not.toMatch(/forged|19005550199/);
  });
});

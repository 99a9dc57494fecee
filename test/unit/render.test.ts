import { describe, expect, it } from 'vitest';
import type { ChannelTemplate } from '../../src/domain/template';
import { renderTemplate, TemplateError, validateTemplateParts } from '../../src/services/templates/render';

const template = (channel: ChannelTemplate['channel'], parts: Record<string, string>): ChannelTemplate => ({
  type: 't',
  channel,
  parts,
  version: `v-${JSON.stringify(parts).length}-${Math.random()}`,
});

describe('template rendering', () => {
  it('fills data into every part', async () => {
    const message = await renderTemplate(
      template('email', {
        subject: 'Due {{ amount }}',
        text: 'Hi {{ recipient.email }}, {{ amount }}',
        html: '<p>{{ amount }}</p>',
      }),
      { amount: '42.00', recipient: { email: 'a@example.com' } },
    );
    expect(message).toEqual({ subject: 'Due 42.00', text: 'Hi a@example.com, 42.00', html: '<p>42.00</p>' });
  });

  it('escapes data in HTML parts and leaves text parts plain', async () => {
    const evil = '<script>alert("x")</script> & \'quotes\'';
    const message = await renderTemplate(
      template('email', { subject: 'Hi {{ name }}', text: 'Hi {{ name }}', html: '<p>Hi {{ name }}</p>' }),
      { name: evil },
    );
    expect(message.html).toBe(
      '<p>Hi &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#39;quotes&#39;</p>',
    );
    expect(message.text).toBe(`Hi ${evil}`);
    expect(message.subject).toBe(`Hi ${evil}`);
  });

  it('an attribute value cannot break out of its quotes', async () => {
    const message = await renderTemplate(
      template('email', { subject: 's', text: 't', html: '<a href="{{ url }}">x</a>' }),
      {
        url: '" onmouseover="alert(1)',
      },
    );
    expect(message.html).toBe('<a href="&#34; onmouseover=&#34;alert(1)">x</a>');
  });

  it('renders sms, push and chat parts', async () => {
    expect(await renderTemplate(template('sms', { text: 'Code {{ code }}' }), { code: 7 })).toEqual({
      text: 'Code 7',
    });
    expect(
      await renderTemplate(template('push', { title: 'T {{ a }}', body: 'B {{ b }}' }), { a: 1, b: 2 }),
    ).toEqual({
      title: 'T 1',
      body: 'B 2',
    });
    expect(await renderTemplate(template('chat', { text: '*{{ a }}*' }), { a: 'x' })).toEqual({
      text: '*x*',
    });
  });

  it('webhook templates render JSON with the json filter, escaping quotes in data', async () => {
    const message = await renderTemplate(
      template('webhook', { json: '{"name": {{ name | json }}, "data": {{ data | json }}}' }),
      {
        name: 'say "hi"',
        data: { n: 1 },
      },
    );
    expect(message.json).toEqual({ name: 'say "hi"', data: { n: 1 } });
  });

  it('a webhook template that renders invalid JSON is a TemplateError', async () => {
    await expect(
      renderTemplate(template('webhook', { json: '{"name": {{ name }}}' }), { name: 'x' }),
    ).rejects.toBeInstanceOf(TemplateError);
  });

  it('templates see only the context own properties: no prototype or constructor access', async () => {
    const message = await renderTemplate(
      template('sms', {
        text: '[{{ data.constructor }}][{{ data.__proto__ }}][{{ amount.length }}][{{ missing.deep }}]',
      }),
      { data: {}, amount: 'abc' },
    );
    expect(message.text).toBe('[][][3][]');
  });

  it('there is no file system: include and render tags fail instead of reading files', async () => {
    await expect(
      renderTemplate(template('sms', { text: "{% include '/etc/passwd' %}" }), {}),
    ).rejects.toBeInstanceOf(TemplateError);
    await expect(
      renderTemplate(template('sms', { text: "{% render 'wrangler.toml' %}" }), {}),
    ).rejects.toBeInstanceOf(TemplateError);
  });

  it('unknown filters are errors, not silently ignored', async () => {
    await expect(
      renderTemplate(template('sms', { text: '{{ a | evil }}' }), { a: 1 }),
    ).rejects.toBeInstanceOf(TemplateError);
  });
});

describe('template validation', () => {
  it('a broken template names the part and the line', () => {
    try {
      validateTemplateParts('email', { subject: 'ok', text: 'line 1\nline 2 {% if x %}\nline 3' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(TemplateError);
      expect((error as TemplateError).part).toBe('text');
      expect((error as TemplateError).line).toBe(2);
    }
  });

  it('include, render and layout are refused at save time, naming the line', () => {
    for (const tag of ['include', 'render', 'layout']) {
      try {
        validateTemplateParts('sms', { text: `ok\n{%- ${tag} 'x' %}` });
        expect.unreachable();
      } catch (error) {
        expect((error as TemplateError).line).toBe(2);
        expect((error as TemplateError).message).toContain(tag);
      }
    }
  });

  it('a missing required part is refused', () => {
    expect(() => validateTemplateParts('push', { title: 'only a title' })).toThrow(/body/);
  });

  it('the optional html part may be absent', () => {
    expect(() => validateTemplateParts('email', { subject: 's', text: 't' })).not.toThrow();
  });
});

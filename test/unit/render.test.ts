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
    ).rejects.toStrictEqual(new TemplateError('json', 'webhook template did not render valid JSON'));
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
    ).rejects.toStrictEqual(
      new TemplateError('text', 'ENOENT: Failed to lookup "/etc/passwd" in ".", line:1, col:1', 1),
    );
    await expect(
      renderTemplate(template('sms', { text: "{% render 'wrangler.toml' %}" }), {}),
    ).rejects.toStrictEqual(
      new TemplateError('text', 'ENOENT: Failed to lookup "wrangler.toml" in ".", line:1, col:1', 1),
    );
  });

  it('unknown filters are errors, not silently ignored', async () => {
    await expect(renderTemplate(template('sms', { text: '{{ a | evil }}' }), { a: 1 })).rejects.toStrictEqual(
      new TemplateError('text', 'undefined filter: evil, line:1, col:1', 1),
    );
  });
});

describe('template validation', () => {
  /** `validate` throws a TemplateError with exactly this part, message and line. */
  function expectRefused(validate: () => void, part: string, message: string, line?: number) {
    expect(validate).toThrow(TemplateError);
    expect(validate).toThrow(expect.objectContaining({ name: 'TemplateError', part, message, line }));
  }

  it('a broken template names the part and the line', () => {
    expectRefused(
      () => validateTemplateParts('email', { subject: 'ok', text: 'line 1\nline 2 {% if x %}\nline 3' }),
      'text',
      'tag {% if x %} not closed, line:2, col:8',
      2,
    );
  });

  it('include, render and layout are refused at save time, naming the line', () => {
    for (const tag of ['include', 'render', 'layout']) {
      expectRefused(
        () => validateTemplateParts('sms', { text: `ok\n{%- ${tag} 'x' %}` }),
        'text',
        `{% ${tag} %} is not available: templates cannot read other files`,
        2,
      );
    }
  });

  it('a missing required part is refused', () => {
    expectRefused(
      () => validateTemplateParts('push', { title: 'only a title' }),
      'body',
      'part "body" is required for push',
    );
  });

  it('the optional html part may be absent', async () => {
    const parts = { subject: 's', text: 't' };
    expect(validateTemplateParts('email', parts)).toBeUndefined();
    expect(await renderTemplate(template('email', parts), {})).toStrictEqual({ subject: 's', text: 't' });
  });
});

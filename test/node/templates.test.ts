import { describe, expect, it } from 'vitest';
import { readTemplates } from '../../scripts/lib/templates.mjs';

describe('templates folder', () => {
  it('every type folder becomes one R2 object per channel, plus its type.json', async () => {
    const objects = await readTemplates('./templates');
    const keys = objects.map((o) => o.key);
    expect(keys).toContain('templates/payment_reminder/email.json');
    expect(keys).toContain('templates/payment_reminder/type.json');
    const email = JSON.parse(
      objects.find((o) => o.key === 'templates/payment_reminder/email.json')?.body ?? '{}',
    );
    expect(Object.keys(email.parts).sort()).toEqual(['html', 'subject', 'text']);
  });
});

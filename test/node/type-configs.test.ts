import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { readTemplates } from '../../scripts/lib/templates.mjs';
import { TypeConfigSchema } from '../../src/domain/type-config';

describe('shipped type configurations', () => {
  it('every templates/<type>/type.json matches the schema the API enforces', async () => {
    const configs = (await readTemplates('./templates')).filter((o) => o.key.endsWith('/type.json'));
    expect(configs.length).toBeGreaterThanOrEqual(4);
    for (const { key, body } of configs) {
      const parsed = TypeConfigSchema.safeParse(JSON.parse(body));
      expect(parsed.success, `${key}: ${parsed.success ? '' : parsed.error.message}`).toBe(true);
    }
    expect(
      JSON.parse(await readFile('./templates/security_alert/type.json', 'utf8')).preferences.required,
    ).toBe(true);
  });
});

import { describe, expect, it } from 'vitest';
import committed from '../../clients/js/openapi.json';
import { createApp } from '../../src/api/app';
import { openApiConfig } from '../../src/api/openapi';
import { api, json } from '../helpers/api';

/**
 * The Worker serves the document the typed client was generated from: GET /openapi.json equals
 * clients/js/openapi.json (made by `npm run client:generate` in Node, without a server), so the
 * script and the Worker build one document from one config (src/api/openapi.ts). Its rules are
 * checked by test/node/openapi-contract.test.ts.
 */
describe('GET /openapi.json', () => {
  it('serves exactly the committed document (clients/js/openapi.json)', async () => {
    const served = await json(await api('GET', '/openapi.json', undefined, { key: null }));
    // A failure here: run `npm run client:generate` and commit what it writes.
    expect(served).toEqual(committed);
  });

  it('is the document the shared config builds', async () => {
    const served = await json(await api('GET', '/openapi.json', undefined, { key: null }));
    expect(served).toEqual(JSON.parse(JSON.stringify(createApp().getOpenAPI31Document(openApiConfig()))));
  });
});

// Which providers make a repeat of a delivery harmless: those whose every request carries a key
// the provider documents for it (each provider's own test asserts the exact header).
import { describe, expect, it } from 'vitest';
import { CHANNELS, IDEMPOTENT_CHANNELS } from '../../src/domain/channels';
import { createSandboxProvider } from '../../src/providers/sandbox';
import { allProviders } from '../../src/services/container';

describe('idempotency keys', () => {
  it('only Resend, webhook, APNs, Web Push and the inbox are idempotent; the others document no key for sends', () => {
    const idempotent = allProviders.filter((d) => d.idempotent === true).map((d) => d.name);
    expect(idempotent.sort()).toEqual(['apns', 'inbox', 'resend', 'webhook', 'webpush']);
    for (const definition of allProviders) {
      if (!idempotent.includes(definition.name))
        expect(definition.idempotent, definition.name).toBeUndefined();
    }
  });

  it('the sandbox is idempotent on the channels whose real providers take a key', () => {
    for (const channel of CHANNELS) {
      const sandbox = createSandboxProvider(channel, () => undefined);
      expect(Boolean(sandbox.idempotent), channel).toBe(IDEMPOTENT_CHANNELS.has(channel));
    }
    expect([...IDEMPOTENT_CHANNELS].sort()).toEqual(['email', 'inapp', 'push', 'webhook']);
  });
});

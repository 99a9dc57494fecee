import type { Channel } from '../domain/channels';
import type { Provider, SendRequest, SendResult } from './types';

/** Receives every message the sandbox "sends"; the deliver service writes them to the outbox. */
export type SandboxSink = (request: SendRequest) => void;

/**
 * The default provider when no real one is configured: it sends nothing and hands the exact
 * message to the sink, so `npm start` and tests can see what would have gone out.
 */
export function createSandboxProvider(channel: Channel, sink: SandboxSink): Provider {
  return {
    name: 'sandbox',
    channel,
    async send(request: SendRequest): Promise<SendResult> {
      sink(request);
      return { kind: 'sent', providerMessageId: `sandbox-${request.deliveryId}` };
    },
  };
}

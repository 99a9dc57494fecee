import { DurableObject } from 'cloudflare:workers';

/** Per-recipient coordination: in-flight leases (more in the reliability work). */
export class Recipient extends DurableObject {
  async ping(): Promise<string> {
    return 'pong';
  }
}

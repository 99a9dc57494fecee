// The email deliveries the email provider tests send, and the ones every provider must refuse.
import type { Address } from '../../../src/domain/address';
import type { RenderedMessage } from '../../../src/domain/message';
import type { SendRequest } from '../../../src/providers/types';
import type { Outcome } from '../harness';

/** A fixed clock: 2025-03-04T05:06:07Z. */
export const NOW_MS = Date.UTC(2025, 2, 4, 5, 6, 7);

export const DELIVERY_ID = 'dlv_01jnabcdefghjkmnpqrstvwxyz';

export const UNSUBSCRIBE_HEADERS = {
  'List-Unsubscribe': '<https://herald.test/u/tok_123>, <mailto:unsubscribe@example.com?subject=tok_123>',
  'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
};

export const HTML = '<p>Thanks, Ada. Invoice <b>#42</b> is paid.</p>';
export const TEXT = 'Thanks, Ada. Invoice #42 is paid.';

/** A fully rendered email with both bodies and the one-click unsubscribe headers. */
export function emailRequest(
  message: Partial<RenderedMessage> = {},
  address: Address = { channel: 'email', email: 'ada@example.org' },
): SendRequest {
  return {
    deliveryId: DELIVERY_ID,
    notificationId: 'ntf_01jnabcdefghjkmnpqrstvwxyz',
    type: 'invoice.paid',
    priority: 'normal',
    address,
    message: {
      subject: 'Your invoice is paid',
      html: HTML,
      text: TEXT,
      headers: { ...UNSUBSCRIBE_HEADERS },
      ...message,
    },
  };
}

/** Deliveries no email provider can send: refused before any call, with Herald's own codes. */
export const EMAIL_REFUSALS: { name: string; request: () => SendRequest; expected: Outcome }[] = [
  {
    name: 'an address that is not an email',
    request: () => emailRequest({}, { channel: 'sms', phone: '+15555550100' }),
    expected: { kind: 'permanent', code: 'invalid_address', reason: 'address is not an email address' },
  },
  {
    name: 'a message without a subject',
    request: () => emailRequest({ subject: undefined }),
    expected: { kind: 'permanent', code: 'invalid_message', reason: 'rendered email has no subject' },
  },
  {
    name: 'a message without a body',
    request: () => emailRequest({ html: undefined, text: undefined }),
    expected: {
      kind: 'permanent',
      code: 'invalid_message',
      reason: 'rendered email has no html or text body',
    },
  },
];

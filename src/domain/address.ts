import type { ChatPlatform, PushPlatform } from './channels';

/**
 * Where one delivery goes. A delivery has exactly one address; it is stored with the delivery so
 * that a later contact change does not alter a message already accepted.
 */
export type Address =
  | { channel: 'email'; email: string }
  | { channel: 'sms'; phone: string }
  | { channel: 'push'; platform: PushPlatform; deviceToken: string }
  | { channel: 'chat'; platform: ChatPlatform; url?: string; chatId?: string }
  | { channel: 'webhook'; url: string; secret?: string }
  /** Every user id has an inbox: the address is the user. */
  | { channel: 'inapp'; userId: string };

export type AddressOf<C extends Address['channel']> = Extract<Address, { channel: C }>;

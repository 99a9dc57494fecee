import type { ExternalPlatform, PushPlatform } from './channels';

export interface DeviceToken {
  deviceToken: string;
  platform: PushPlatform;
}

/** A chat or webhook destination. `status: false` means Herald stopped using it (proven dead). */
export interface ExternalChannel {
  platform: ExternalPlatform;
  url?: string;
  /** Telegram chat id or @channel username (Telegram has no per-user webhook URL). */
  chatId?: string;
  /** Optional per-endpoint Standard Webhooks secret (`whsec_...`) for `webhook` channels. */
  secret?: string;
  status: boolean;
}

export interface Contact {
  userId: string;
  email: string | null;
  phone: string | null;
  deviceTokens: DeviceToken[];
  externalChannels: ExternalChannel[];
  locale: string | null;
  timezone: string | null;
  smsOptedOut: boolean;
  createdAt: string;
  updatedAt: string;
}

/** The address fields a recipient may carry inline on a notification instead of (or over) a contact. */
export interface InlineRecipient {
  userId?: string;
  email?: string;
  phone?: string;
  deviceTokens?: DeviceToken[];
  externalChannels?: ExternalChannel[];
  locale?: string;
  timezone?: string;
}

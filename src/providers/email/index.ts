import type { ProviderDefinition } from '../types';
import { cloudflare } from './cloudflare';
import { mailgun } from './mailgun';
import { postmark } from './postmark';
import { resend } from './resend';
import { sendgrid } from './sendgrid';
import { ses } from './ses';

/** Every email provider Herald can route through; `EMAIL_PROVIDERS` picks and orders them by name. */
export const emailProviders: ProviderDefinition[] = [resend, sendgrid, mailgun, postmark, ses, cloudflare];

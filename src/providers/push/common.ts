// What the push providers (APNs, FCM, Web Push) share: delivery options from the message, key
// handling, and the provider factory. Each platform's tokens and encryption stay in its module.
import type { AddressOf } from '../../domain/address';
import type { Priority, PushPlatform } from '../../domain/channels';
import type { RenderedMessage } from '../../domain/message';
import type { CallLimits } from '../http-call';
import { type HttpSteps, httpProvider } from '../http-provider';
import { permanent } from '../results';
import type { ProviderDefinition, ProviderDeps, ProviderEnv, SendRequest } from '../types';

/** A push delivery's address and request. */
export type PushAddress = AddressOf<'push'>;
export type PushRequest = SendRequest<PushAddress>;

/** Push calls are short; a hung push service must not hold the queue consumer. */
export const PUSH_TIMEOUT_MS = 10_000;

/** How long a push service keeps an undelivered notification when the template does not say. */
export const DEFAULT_TTL_SECONDS = 86_400;

/** FCM's documented maximum TTL (4 weeks); also a sane cap for APNs and Web Push. */
export const MAX_TTL_SECONDS = 2_419_200;

/** Keys in `message.json` that steer delivery instead of travelling as app data. */
export const CONTROL_KEYS = ['collapseId', 'ttlSeconds'] as const;

const encoder = new TextEncoder();

/** Delivery options every push platform understands, derived once from the rendered message. */
export interface PushOptions {
  /** App data: `message.json` without the control keys; non-object json carries no data. */
  data: Record<string, unknown>;
  /** Groups notifications so a newer one replaces an older one on the device. */
  collapseId?: string;
  ttlSeconds: number;
  /** Critical and high priority wake the device now; normal and low may be batched. */
  urgent: boolean;
}

/** Splits `message.json` into app data and the delivery options (`collapseId`, `ttlSeconds`). */
export function pushOptions(message: RenderedMessage, priority: Priority): PushOptions {
  const json = isPlainObject(message.json) ? message.json : {};
  const data = Object.fromEntries(
    Object.entries(json).filter(([key]) => !(CONTROL_KEYS as readonly string[]).includes(key)),
  );
  const collapseId =
    typeof json.collapseId === 'string' && json.collapseId !== '' ? json.collapseId : undefined;
  return {
    data,
    ...(collapseId ? { collapseId } : {}),
    ttlSeconds: ttlFrom(json.ttlSeconds),
    urgent: priority === 'critical' || priority === 'high',
  };
}

function ttlFrom(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) return DEFAULT_TTL_SECONDS;
  return Math.min(MAX_TTL_SECONDS, Math.max(0, Math.floor(value)));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `apns-expiration` (also FCM's `apns` block): 0 means "try once, do not store". */
export function apnsExpiration(options: PushOptions, nowMs: number): string {
  return options.ttlSeconds === 0 ? '0' : String(Math.floor(nowMs / 1000) + options.ttlSeconds);
}

/** Accepts a PEM as stored in a secret: real newlines, escaped `\n`, or a bare base64 body. */
export function normalizePem(value: string, label = 'PRIVATE KEY'): string {
  const unescaped = value.replace(/\\n/g, '\n').replace(/\r/g, '').trim();
  if (unescaped.includes('-----BEGIN')) return unescaped;
  const body = unescaped.replace(/\s+/g, '');
  const lines = body.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----`;
}

/** UTF-8 byte length, which is what push services count. */
export function byteLength(text: string): number {
  return encoder.encode(text).byteLength;
}

/** How one push platform is configured and stepped through; its caches live in `steps`. */
export interface PushPlatformSpec<C> {
  name: PushPlatform;
  limits: CallLimits;
  /** The request carries a key that makes a repeat harmless (APNs `apns-collapse-id`, Web Push `Topic`). */
  idempotent?: boolean;
  configFromEnv(env: ProviderEnv): C;
  steps(config: C, deps: ProviderDeps): HttpSteps<PushAddress>;
}

/**
 * The provider definition of a push platform. It serves only its own platform's addresses; a
 * stray one is refused before any token is signed or fetched.
 */
export function pushProvider<C>(platform: PushPlatformSpec<C>): ProviderDefinition {
  const { name } = platform;
  return httpProvider<C, PushAddress>({
    name,
    channel: 'push',
    platforms: [name],
    limits: platform.limits,
    ...(platform.idempotent ? { idempotent: true } : {}),
    configFromEnv: platform.configFromEnv,
    steps(config, deps) {
      const steps = platform.steps(config, deps);
      return {
        ...steps,
        build: (request) =>
          request.address.channel === 'push' && request.address.platform === name
            ? steps.build(request)
            : permanent(`${name} provider got a non-${name} address`),
      };
    },
  });
}

// The shape every HTTP provider shares: config once per instance, then for each delivery
// build -> call -> classify, with the call made by `callHttp` alone.
import type { Address } from '../domain/address';
import type { Channel } from '../domain/channels';
import { type CallLimits, callHttp, type HttpAnswer, type HttpCall, isHttpAnswer } from './http-call';
import type {
  Provider,
  ProviderDefinition,
  ProviderDeps,
  ProviderEnv,
  SendRequest,
  SendResult,
} from './types';

/** What `build` hands over: the call to make (plain or signed), or the result that makes it pointless. */
export type Built = HttpCall | Request | SendResult;

/** One provider instance's own steps; the shared part makes the call between them. */
export interface HttpSteps<A extends Address> {
  /** The exact request for a delivery, or the answer given without one (a refused address, a bad key). */
  build(request: SendRequest<A>): Built | Promise<Built>;
  /** The provider's documented answers mapped to sent, retryable or permanent. */
  classify(answer: HttpAnswer, request: SendRequest<A>): SendResult;
  /** Asked once after an answer: true builds and sends again (FCM's revoked access token). */
  again?(answer: HttpAnswer): boolean;
  /** What to keep out of a network failure's reason (webhook URLs, bot tokens). */
  secrets?(request: SendRequest<A>, call: HttpCall | Request): readonly string[];
}

/** How one HTTP provider is named, limited, configured and stepped through. */
export interface HttpProviderSpec<C, A extends Address> {
  name: string;
  channel: Channel;
  platforms?: readonly string[];
  limits: CallLimits;
  /** Every request carries the provider's documented idempotency key (see `Provider.idempotent`). */
  idempotent?: boolean;
  configFromEnv(env: ProviderEnv): C;
  /** Builds the instance's steps; state kept here (token caches) lives as long as the instance. */
  steps(config: C, deps: ProviderDeps): HttpSteps<A>;
}

/** The provider definition of an HTTP provider: one call per delivery, classified by its own rules. */
export function httpProvider<C, A extends Address>(spec: HttpProviderSpec<C, A>): ProviderDefinition {
  const { name, channel, platforms, limits } = spec;
  const shared = {
    name,
    channel,
    ...(platforms ? { platforms } : {}),
    ...(spec.idempotent ? { idempotent: true } : {}),
  };
  return {
    ...shared,
    limits,
    create(env: ProviderEnv, deps: ProviderDeps): Provider<A> {
      const steps = spec.steps(spec.configFromEnv(env), deps);
      return {
        ...shared,
        send: (request) => sendOnce(deps, limits, steps, request),
      };
    },
  };
}

async function sendOnce<A extends Address>(
  deps: ProviderDeps,
  limits: CallLimits,
  steps: HttpSteps<A>,
  request: SendRequest<A>,
): Promise<SendResult> {
  let answer = await attempt(deps, limits, steps, request);
  if (isHttpAnswer(answer) && steps.again?.(answer)) answer = await attempt(deps, limits, steps, request);
  return isHttpAnswer(answer) ? steps.classify(answer, request) : answer;
}

async function attempt<A extends Address>(
  deps: ProviderDeps,
  limits: CallLimits,
  steps: HttpSteps<A>,
  request: SendRequest<A>,
): Promise<HttpAnswer | SendResult> {
  const built = await steps.build(request);
  if ('kind' in built) return built;
  return callHttp(deps, built, limits, steps.secrets?.(request, built));
}

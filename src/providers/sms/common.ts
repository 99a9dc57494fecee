import type { AddressOf } from '../../domain/address';
import { callHttp, type HttpCall, isHttpAnswer } from '../http-call';
import type {
  Provider,
  ProviderDefinition,
  ProviderDeps,
  ProviderEnv,
  SendRequest,
  SendResult,
} from '../types';

/** The outgoing HTTP request a provider builds; `body` is the exact text sent. */
export type { HttpCall as BuiltRequest } from '../http-call';

/** SMS APIs answer within seconds; a hung connection must not hold the queue consumer. */
export const SMS_TIMEOUT_MS = 15_000;

export { shortReason } from '../http-call';

/** Removes a trailing slash so `${base}/path` never doubles it. */
export function trimBaseUrl(url: string): string {
  return url.replace(/\/+$/, '');
}

/** How one SMS API is configured, called and understood. */
export interface HttpSmsApi<C> {
  name: string;
  configFromEnv(env: ProviderEnv): C;
  build(config: C, request: SendRequest<AddressOf<'sms'>>): HttpCall;
  classify(status: number, body: string, retryAfterSeconds?: number): SendResult;
}

/** The provider definition every SMS API shares: one call with a timeout, then the API's own rules. */
export function httpSmsProvider<C>(api: HttpSmsApi<C>): ProviderDefinition {
  return {
    name: api.name,
    channel: 'sms',
    create(env: ProviderEnv, deps: ProviderDeps): Provider<AddressOf<'sms'>> {
      const config = api.configFromEnv(env);
      return {
        name: api.name,
        channel: 'sms',
        async send(request) {
          const answer = await callHttp(deps, api.build(config, request), { timeoutMs: SMS_TIMEOUT_MS });
          if (!isHttpAnswer(answer)) return answer;
          return api.classify(answer.status, answer.body, answer.retryAfterSeconds);
        },
      };
    },
  };
}

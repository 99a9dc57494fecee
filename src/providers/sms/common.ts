// What the SMS APIs share: the provider factory (build -> call -> classify) and their timeout.
import type { AddressOf } from '../../domain/address';
import type { CallLimits, HttpAnswer, HttpCall } from '../http-call';
import { httpProvider } from '../http-provider';
import type { ProviderDefinition, ProviderEnv, SendRequest, SendResult } from '../types';

/** SMS APIs answer within seconds; a hung connection must not hold the queue consumer. */
export const SMS_TIMEOUT_MS = 15_000;

/** How one SMS API is configured, called and understood. */
export interface HttpSmsApi<C> {
  name: string;
  limits: CallLimits;
  configFromEnv(env: ProviderEnv): C;
  build(config: C, request: SendRequest<AddressOf<'sms'>>): HttpCall;
  classify(answer: HttpAnswer): SendResult;
}

/** The provider definition of an SMS API. */
export function httpSmsProvider<C>(api: HttpSmsApi<C>): ProviderDefinition {
  return httpProvider<C, AddressOf<'sms'>>({
    name: api.name,
    channel: 'sms',
    limits: api.limits,
    configFromEnv: api.configFromEnv,
    steps: (config) => ({ build: (request) => api.build(config, request), classify: api.classify }),
  });
}

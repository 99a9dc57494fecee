import type { Env } from '../config/env';
import { log } from '../lib/log';

/**
 * Fault injection for chaos runs (development and test only, every rate off by default), around
 * the consumer's bindings, never inside the delivery path.
 */
type FaultEnv = Pick<
  Env,
  'ENVIRONMENT' | 'SANDBOX_CRASH_RATE' | 'FAULT_D1_WRITE_RATE' | 'FAULT_R2_READ_RATE'
>;

const rateOf = (env: FaultEnv, value: string | undefined): number =>
  env.ENVIRONMENT === 'development' || env.ENVIRONMENT === 'test' ? Number(value ?? 0) || 0 : 0;

/**
 * The consumer dying between the providers' answers and the record of them (`SANDBOX_CRASH_RATE`).
 * `fatal`: nothing in the batch may catch it, as nothing could catch the death of an isolate.
 */
export class InjectedCrash extends Error {
  readonly fatal = true;
  constructor() {
    super('fault injection: the consumer died after sending, before recording the outcomes');
    this.name = 'InjectedCrash';
  }
}

/** A D1 write the database refused (`FAULT_D1_WRITE_RATE`), as an overloaded or full D1 would. */
export class InjectedWriteFailure extends Error {
  constructor() {
    super('fault injection: D1 refused the write');
    this.name = 'InjectedWriteFailure';
  }
}

/**
 * The consumer's commit with faults, made once per consumer batch: `SANDBOX_CRASH_RATE` of
 * batches die (fatal) at their first commit, as a consumer dying between a provider's answer and
 * its record would; `FAULT_D1_WRITE_RATE` of commits are refused. Both before anything is written.
 * The sandbox's outbox is written apart, so what went out stays visible. The plain commit when both
 * rates are off.
 */
export function withConsumerWriteFaults<R>(
  env: FaultEnv,
  commit: (statements: D1PreparedStatement[]) => Promise<R>,
  random: () => number = Math.random,
): (statements: D1PreparedStatement[]) => Promise<R> {
  const crash = rateOf(env, env.SANDBOX_CRASH_RATE);
  const refuse = rateOf(env, env.FAULT_D1_WRITE_RATE);
  if (!(crash > 0) && !(refuse > 0)) return commit;
  let doomed = random() < crash;
  return async (statements) => {
    if (statements.length > 0) {
      if (doomed) {
        doomed = false;
        throw injected(new InjectedCrash());
      }
      if (random() < refuse) throw injected(new InjectedWriteFailure());
    }
    return commit(statements);
  };
}

/** Logs an injected fault (`fault.injected`), so a chaos run can count them, and returns it. */
function injected<E extends Error>(error: E): E {
  log('warn', 'fault.injected', { fault: error.name });
  return error;
}

/** A template read that fails (`FAULT_R2_READ_RATE`), as an R2 outage would. */
export class InjectedReadFailure extends Error {
  constructor() {
    super('fault injection: R2 read failed');
    this.name = 'InjectedReadFailure';
  }
}

/** One wrapper per bucket, so the isolate's template cache (keyed by bucket) still works. */
const faultyBuckets = new WeakMap<R2Bucket, R2Bucket>();

/** The templates bucket whose `get` fails at `FAULT_R2_READ_RATE`; the bucket itself when off. */
export function withTemplateReadFaults(
  env: FaultEnv,
  bucket: R2Bucket,
  random: () => number = Math.random,
): R2Bucket {
  const rate = rateOf(env, env.FAULT_R2_READ_RATE);
  if (!(rate > 0)) return bucket;
  let faulty = faultyBuckets.get(bucket);
  if (!faulty) {
    faulty = new Proxy(bucket, {
      get(target, property) {
        const value = Reflect.get(target, property, target);
        if (property !== 'get' || typeof value !== 'function')
          return typeof value === 'function' ? value.bind(target) : value;
        return (...args: unknown[]) => {
          if (random() < rate) return Promise.reject(injected(new InjectedReadFailure()));
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    faultyBuckets.set(bucket, faulty);
  }
  return faulty;
}

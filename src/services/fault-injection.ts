import type { Env } from '../config/env';

/** The consumer's outcome write dying after the providers answered (`SANDBOX_CRASH_RATE`). */
export class InjectedCrash extends Error {
  constructor() {
    super('fault injection: the consumer died after sending, before recording the outcomes');
    this.name = 'InjectedCrash';
  }
}

/**
 * Fault injection for chaos runs, around the consumer's writes, never inside the delivery path:
 * with `SANDBOX_CRASH_RATE` set, that share of the consumer's commits throws before writing, as a
 * consumer that died between the providers' answers and the record of them would. The sandbox's
 * outbox is written apart, so what went out stays visible. Off (the plain commit) by default.
 */
export function withConsumerWriteFaults(
  env: Pick<Env, 'SANDBOX_CRASH_RATE'>,
  commit: (statements: D1PreparedStatement[]) => Promise<void>,
  random: () => number = Math.random,
): (statements: D1PreparedStatement[]) => Promise<void> {
  const rate = Number(env.SANDBOX_CRASH_RATE ?? 0);
  if (!(rate > 0)) return commit;
  return async (statements) => {
    if (statements.length > 0 && random() < rate) throw new InjectedCrash();
    await commit(statements);
  };
}

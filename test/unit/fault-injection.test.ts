import { describe, expect, it } from 'vitest';
import {
  InjectedCrash,
  InjectedReadFailure,
  InjectedWriteFailure,
  withConsumerWriteFaults,
  withTemplateReadFaults,
} from '../../src/services/fault-injection';
import { testEnv } from '../helpers/api';

const statement = {} as D1PreparedStatement;
const TEST = { ENVIRONMENT: 'test' } as const;

function recorder() {
  const commits: D1PreparedStatement[][] = [];
  return { commits, commit: async (s: D1PreparedStatement[]) => void commits.push(s) };
}

describe('consumer write faults (SANDBOX_CRASH_RATE, FAULT_D1_WRITE_RATE)', () => {
  it('off by default: the plain commit itself', () => {
    const { commit } = recorder();
    expect(withConsumerWriteFaults(TEST, commit)).toBe(commit);
    expect(
      withConsumerWriteFaults({ ...TEST, SANDBOX_CRASH_RATE: '0', FAULT_D1_WRITE_RATE: '0' }, commit),
    ).toBe(commit);
  });

  it('never in production, whatever the rates say', () => {
    const { commit } = recorder();
    expect(withConsumerWriteFaults({ ENVIRONMENT: 'production', SANDBOX_CRASH_RATE: '1' }, commit)).toBe(
      commit,
    );
  });

  it('a doomed batch dies at its first commit (fatal, nothing written), once; the next batch may live', async () => {
    const { commits, commit } = recorder();
    const doomed = withConsumerWriteFaults({ ...TEST, SANDBOX_CRASH_RATE: '0.1' }, commit, () => 0.01);
    const crash = await doomed([statement]).catch((error: unknown) => error);
    expect(crash).toBeInstanceOf(InjectedCrash);
    expect((crash as InjectedCrash).fatal).toBe(true);
    expect(commits).toEqual([]);
    await doomed([statement]);
    expect(commits).toEqual([[statement]]);
    const spared = withConsumerWriteFaults({ ...TEST, SANDBOX_CRASH_RATE: '0.1' }, commit, () => 0.5);
    await spared([statement]);
    expect(commits).toEqual([[statement], [statement]]);
  });

  it('a refused write is an ordinary error (not fatal) and writes nothing', async () => {
    const { commits, commit } = recorder();
    const faulty = withConsumerWriteFaults({ ...TEST, FAULT_D1_WRITE_RATE: '1' }, commit, () => 0.5);
    const refused = await faulty([statement]).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(InjectedWriteFailure);
    expect((refused as { fatal?: boolean }).fatal).toBeUndefined();
    expect(commits).toEqual([]);
  });

  it('an empty commit never fails: nothing was going to be written', async () => {
    const { commits, commit } = recorder();
    const faulty = withConsumerWriteFaults({ ...TEST, SANDBOX_CRASH_RATE: '1' }, commit, () => 0);
    await faulty([]);
    expect(commits).toEqual([[]]);
  });
});

describe('template read faults (FAULT_R2_READ_RATE)', () => {
  it('off: the bucket itself', () => {
    expect(withTemplateReadFaults(TEST, testEnv.TEMPLATES)).toBe(testEnv.TEMPLATES);
  });

  it('on: reads fail at the rate, other calls pass, one wrapper per bucket', async () => {
    const env = { ...TEST, FAULT_R2_READ_RATE: '0.5' };
    const rolls = [0.1, 0.9];
    const faulty = withTemplateReadFaults(env, testEnv.TEMPLATES, () => rolls.shift() ?? 1);
    await expect(faulty.get('order_shipped/email/subject.liquid')).rejects.toBeInstanceOf(
      InjectedReadFailure,
    );
    expect(await faulty.get('no/such/key')).toBeNull();
    expect((await faulty.list({ limit: 1 })).objects).toHaveLength(1);
    expect(withTemplateReadFaults(env, testEnv.TEMPLATES)).toBe(faulty);
  });
});

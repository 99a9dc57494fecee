import { describe, expect, it } from 'vitest';
import { InjectedCrash, withConsumerWriteFaults } from '../../src/services/fault-injection';

const statement = {} as D1PreparedStatement;

function recorder() {
  const commits: D1PreparedStatement[][] = [];
  return { commits, commit: async (s: D1PreparedStatement[]) => void commits.push(s) };
}

describe('consumer write faults (SANDBOX_CRASH_RATE)', () => {
  it('off by default: the plain commit itself', () => {
    const { commit } = recorder();
    expect(withConsumerWriteFaults({}, commit)).toBe(commit);
    expect(withConsumerWriteFaults({ SANDBOX_CRASH_RATE: '0' }, commit)).toBe(commit);
  });

  it('at the rate, a commit throws before writing anything', async () => {
    const { commits, commit } = recorder();
    const rolls = [0.01, 0.5];
    const faulty = withConsumerWriteFaults({ SANDBOX_CRASH_RATE: '0.1' }, commit, () => rolls.shift() ?? 1);
    await expect(faulty([statement])).rejects.toBeInstanceOf(InjectedCrash);
    expect(commits).toEqual([]);
    await faulty([statement]);
    expect(commits).toEqual([[statement]]);
  });

  it('an empty commit never crashes: nothing was going to be written', async () => {
    const { commits, commit } = recorder();
    const faulty = withConsumerWriteFaults({ SANDBOX_CRASH_RATE: '1' }, commit, () => 0);
    await faulty([]);
    expect(commits).toEqual([[]]);
  });
});

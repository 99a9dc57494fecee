import { expect } from 'vitest';
import { MissingCredentialsError } from '../../src/providers/types';

/** The MissingCredentialsError `read` throws (failing the test when it throws nothing or something else). */
export function missingCredentials(read: () => unknown): MissingCredentialsError {
  let thrown: unknown;
  try {
    read();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(MissingCredentialsError);
  return thrown as MissingCredentialsError;
}

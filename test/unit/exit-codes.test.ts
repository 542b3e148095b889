import { describe, expect, it } from 'vitest';
import { exitCodeOfError, exitCodeOfOutcomes, mostSevere } from '../../src/cli/exit-codes.js';
import {
  BadInputError,
  CommittedRunError,
  ConfigError,
  InternalError,
  RunFailedError,
  StorageError,
  asAudexError,
} from '../../src/errors.js';
import { failed, SKIPPED, SUCCEEDED } from '../../src/run/outcome.js';
import { zeroCounts, type RunRecord } from '../../src/state/records.js';

const record: RunRecord = {
  runId: 'r',
  audienceId: 'a',
  mode: 'full',
  trigger: 'schedule',
  logicalTime: '2026-11-20T05:00:00.000Z',
  snapshotId: 's',
  status: 'success',
  counts: zeroCounts(),
  files: [],
};

describe('the exit code precedence', () => {
  it.each([
    { codes: [], code: 0 },
    { codes: [0, 0], code: 0 },
    { codes: [1, 0], code: 1 },
    { codes: [1, 2], code: 2 },
    { codes: [2, 3, 1], code: 3 },
    { codes: [3, 4], code: 4 },
    { codes: [4, 1, 2, 3], code: 4 },
  ])('$codes → $code', ({ codes, code }) => {
    expect(mostSevere(codes)).toBe(code);
  });

  it('maps outcomes: successes and skips are 0, a failure is its error’s code', () => {
    expect(exitCodeOfOutcomes([SUCCEEDED, SKIPPED])).toBe(0);
    expect(exitCodeOfOutcomes([SUCCEEDED, failed(new RunFailedError('x'))])).toBe(1);
    expect(exitCodeOfOutcomes([failed(new ConfigError('x')), failed(new RunFailedError('y'))])).toBe(2);
    expect(exitCodeOfOutcomes([failed(new StorageError('x')), failed(new ConfigError('y'))])).toBe(3);
    expect(exitCodeOfOutcomes([failed(new StorageError('x')), failed(new BadInputError('y'))])).toBe(4);
  });
});

describe('typed errors', () => {
  it('an untyped error is an internal error: exit 1, asking for a report, the original kept as cause', () => {
    const bug = new TypeError('cannot read properties of undefined');
    const error = asAudexError(bug);
    expect(error).toBeInstanceOf(InternalError);
    expect(error.exitCode).toBe(1);
    expect(error.message).toBe(
      'cannot read properties of undefined\nThis is a bug in audex, please report it with the command you ran.',
    );
    expect(error.cause).toBe(bug);
    expect(exitCodeOfError('a thrown string')).toBe(1);
  });

  it('keeps audex errors as they are', () => {
    const error = new StorageError('disk full');
    expect(asAudexError(error)).toBe(error);
    expect(exitCodeOfError(error)).toBe(3);
  });

  it('a committed run error is an audex error with its cause’s exit code', () => {
    const error = new CommittedRunError(record, new StorageError('history not written'));
    expect(asAudexError(error)).toBe(error);
    expect(error.exitCode).toBe(3);
    expect(error.message).toBe('history not written');
    expect(new CommittedRunError(record, new Error('boom')).exitCode).toBe(1);
  });
});

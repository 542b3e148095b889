// Issue 3 / README "Running it": where output goes. Progress on stderr only: an ora spinner with each
// finished step ticked off on a terminal, one plain `audex: …` line per step otherwise,
// nothing with --quiet; the summary (out) on stdout only.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createReporter, type Reporter } from '../../src/cli/reporter.js';

/** A stand-in for process.stdout / process.stderr that records what is written. */
class FakeStream {
  text = '';
  writes = 0;
  columns = 120;
  rows = 40;
  constructor(readonly isTTY: boolean) {}
  write(chunk: string | Uint8Array, encoding?: unknown, callback?: unknown): boolean {
    this.text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    this.writes += 1;
    const done = typeof encoding === 'function' ? encoding : callback;
    if (typeof done === 'function') (done as () => void)();
    return true;
  }
  // The cursor controls of a tty.WriteStream, which ora uses on a terminal.
  cursorTo(x: number, y?: unknown, callback?: unknown): boolean {
    this.write(`\u001B[${x + 1}G`);
    if (typeof y === 'function') (y as () => void)();
    if (typeof callback === 'function') (callback as () => void)();
    return true;
  }
  moveCursor(dx: number, dy: number, callback?: unknown): boolean {
    this.write(dy < 0 ? `\u001B[${-dy}A` : dy > 0 ? `\u001B[${dy}B` : '');
    if (typeof callback === 'function') (callback as () => void)();
    return true;
  }
  clearLine(_dir: number, callback?: unknown): boolean {
    this.write('\u001B[2K');
    if (typeof callback === 'function') (callback as () => void)();
    return true;
  }
  getWindowSize(): [number, number] {
    return [this.columns, this.rows];
  }
  hasColors(): boolean {
    return false;
  }
  on(): this {
    return this;
  }
  once(): this {
    return this;
  }
  off(): this {
    return this;
  }
  removeListener(): this {
    return this;
  }
}

const plain = (s: string) => s.replace(/\u001B\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');

async function make(
  isTTY: boolean,
  quiet = false,
): Promise<{ reporter: Reporter; stderr: FakeStream; stdout: FakeStream }> {
  const stderr = new FakeStream(isTTY);
  const stdout = new FakeStream(isTTY);
  const reporter = await createReporter({
    quiet,
    stderr: stderr as unknown as NodeJS.WriteStream,
    stdout: stdout as unknown as NodeJS.WritableStream,
  });
  return { reporter, stderr, stdout };
}

let open: Reporter[] = [];
afterEach(() => {
  for (const r of open) r.close();
  open = [];
});
const track = <T extends { reporter: Reporter }>(made: T): T => {
  open.push(made.reporter);
  return made;
};

describe('without a terminal (CI logs, cron mail)', () => {
  it('writes one plain `audex: <message>` line per progress call, on stderr only', async () => {
    const { reporter, stderr, stdout } = track(await make(false));
    reporter.progress('reading snapshot snap-20261120 (2 part(s))');
    reporter.progress('snapshot snap-20261120: 11 profiles');
    reporter.progress('aud-vip: wrote 6 rows in 1 file(s)');
    reporter.close();
    expect(stderr.text).toBe(
      'audex: reading snapshot snap-20261120 (2 part(s))\naudex: snapshot snap-20261120: 11 profiles\naudex: aud-vip: wrote 6 rows in 1 file(s)\n',
    );
    expect(stderr.writes).toBe(3);
    expect(stdout.text).toBe('');
  });

  it('has no spinner frames, ticks, carriage returns or escape codes', async () => {
    const { reporter, stderr } = track(await make(false));
    reporter.progress('one');
    reporter.progress('two');
    reporter.out('summary');
    reporter.close();
    expect(stderr.text).not.toMatch(/[\r\u001B✔⠋]/);
  });

  it('out() writes the summary to stdout only, ending in exactly one newline', async () => {
    const { reporter, stderr, stdout } = track(await make(false));
    reporter.out('{"a":1}');
    reporter.out('line\n');
    expect(stdout.text).toBe('{"a":1}\nline\n');
    expect(stderr.text).toBe('');
  });

  it('warnings go to stderr with their own prefix', async () => {
    const { reporter, stderr, stdout } = track(await make(false));
    reporter.warn('fileName has no date token');
    expect(stderr.text).toBe('audex: warning: fileName has no date token\n');
    expect(stdout.text).toBe('');
  });
});

describe('--quiet', () => {
  it.each([false, true])('writes no progress at all (stderr isTTY=%s)', async (isTTY) => {
    const { reporter, stderr, stdout } = track(await make(isTTY, true));
    reporter.progress('reading snapshot');
    reporter.progress('writing');
    reporter.close();
    expect(stderr.text).toBe('');
    expect(stdout.text).toBe('');
  });

  it('still prints the summary on stdout', async () => {
    const { reporter, stderr, stdout } = track(await make(true, true));
    reporter.progress('reading snapshot');
    reporter.out('done');
    reporter.close();
    expect(stdout.text).toBe('done\n');
    expect(stderr.text).toBe('');
  });
});

describe('on a terminal', () => {
  // ora only animates when it thinks the terminal is interactive: not under CI=…, not TERM=dumb.
  const saved = { CI: process.env['CI'], TERM: process.env['TERM'] };
  beforeAll(() => {
    delete process.env['CI'];
    process.env['TERM'] = 'xterm-256color';
  });
  afterAll(() => {
    if (saved.CI === undefined) delete process.env['CI'];
    else process.env['CI'] = saved.CI;
    if (saved.TERM === undefined) delete process.env['TERM'];
    else process.env['TERM'] = saved.TERM;
  });

  it('shows an ora spinner with the step text on stderr, not a plain `audex:` line', async () => {
    const { reporter, stderr, stdout } = track(await make(true));
    reporter.progress('reading snapshot snap-20261120 (2 part(s))');
    const text = plain(stderr.text);
    expect(text).toContain('reading snapshot snap-20261120 (2 part(s))');
    expect(text).not.toContain('audex: reading snapshot');
    expect(stderr.text).toMatch(/\u001B\[/); // cursor control: it is a live spinner
    expect(text).not.toContain('✔'); // not finished yet
    expect(stdout.text).toBe('');
    reporter.close();
  });

  it('ticks off the finished step with ✔ when the next step starts', async () => {
    const { reporter, stderr, stdout } = track(await make(true));
    reporter.progress('reading snapshot');
    reporter.progress('aud-vip: selecting rows');
    const text = plain(stderr.text);
    expect(text).toMatch(/✔ reading snapshot\n/);
    expect(text).toContain('aud-vip: selecting rows');
    expect(text).not.toMatch(/✔ aud-vip: selecting rows/);
    expect(stdout.text).toBe('');
    reporter.close();
  });

  it('ticks off the last step on close, once', async () => {
    const { reporter, stderr, stdout } = track(await make(true));
    reporter.progress('step one');
    reporter.progress('step two');
    reporter.close();
    reporter.close();
    const text = plain(stderr.text);
    expect(text.match(/✔ step one\n/g)).toHaveLength(1);
    expect(text.match(/✔ step two\n/g)).toHaveLength(1);
    expect(stdout.text).toBe('');
  });

  it('out() settles the spinner first and writes only the summary to stdout', async () => {
    const { reporter, stderr, stdout } = track(await make(true));
    reporter.progress('writing files');
    reporter.out('dataflow acme-crm: 1 run');
    expect(stdout.text).toBe('dataflow acme-crm: 1 run\n');
    expect(plain(stderr.text)).toMatch(/✔ writing files\n/);
    reporter.close();
  });

  it('copes with a terminal that reports 0 columns (a pty whose size was never set, e.g. `docker run -t`, `script`)', async () => {
    const { reporter, stderr } = track(await make(true));
    stderr.columns = 0;
    // Guard: a runaway cursor-control loop must fail this test, not hang the run.
    const write = stderr.write.bind(stderr);
    stderr.write = (chunk: string | Uint8Array, encoding?: unknown, callback?: unknown) => {
      if (stderr.writes > 10_000)
        throw new Error(`runaway output: more than 10000 writes to stderr for two progress steps`);
      return write(chunk, encoding, callback);
    };
    expect(() => {
      reporter.progress('reading snapshot');
      reporter.progress('aud-vip: selecting rows');
      reporter.close();
    }).not.toThrow();
    const text = plain(stderr.text);
    expect(text).toContain('reading snapshot');
    expect(text).toContain('aud-vip: selecting rows');
  });

  it('stops animating after close (no writes once closed)', async () => {
    const { reporter, stderr } = track(await make(true));
    reporter.progress('step');
    reporter.close();
    const written = stderr.writes;
    await new Promise((r) => setTimeout(r, 250));
    expect(stderr.writes).toBe(written);
  });
});

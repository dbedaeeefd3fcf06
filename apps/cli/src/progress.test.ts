import { describe, expect, it } from 'vitest';
import { formatDuration, formatProgress, PROGRESS_REDRAW_MS, ProgressLine } from './progress.js';

/** A terminal stream that keeps what was written. */
function terminal(columns = 120) {
  const stream = {
    columns,
    text: '',
    write(text: string) {
      stream.text += text;
      return true;
    },
  };
  return stream;
}

describe('the replay progress line', () => {
  it('shows the elapsed time, the rate and the time left', () => {
    const line = formatProgress({ value: 25_000_000, total: 100_000_000, elapsedMs: 5000 });
    expect(line).toContain(' 25%');
    expect(line).toContain('25.0M/100.0M steps');
    expect(line).toContain('| 0:05 |'); // elapsed
    expect(line).toContain('5.0 MIPS');
    expect(line).toContain('ETA 0:15');
    expect(formatDuration(3_723_000)).toBe('1:02:03');
  });

  it('is erased before console bytes and not drawn after a console line left unfinished', () => {
    let now = 0;
    const stream = terminal();
    const progress = new ProgressLine(stream, 1000, true, () => now);
    progress.update(10);
    expect(stream.text.startsWith('\r\x1b[Kreplay [')).toBe(true);
    stream.text = '';
    progress.clear();
    expect(stream.text).toBe('\r\x1b[K');
    progress.consoleWrote(new TextEncoder().encode('login: '));
    stream.text = '';
    now += PROGRESS_REDRAW_MS;
    progress.update(20);
    // Drawing now would erase "login: " from the terminal.
    expect(stream.text).toBe('');
    progress.consoleWrote(new TextEncoder().encode('root\n'));
    progress.update(30);
    expect(stream.text).toContain('replay [');
  });

  it('fits in the terminal width (never wraps) and counts a sizeless terminal as 80 columns', () => {
    const narrow = terminal(30);
    new ProgressLine(narrow, 1000, false, () => 0).update(1);
    expect(narrow.text.slice('\r\x1b[K'.length)).toHaveLength(29);
    const sizeless = terminal(0);
    new ProgressLine(sizeless, 1000, false, () => 0).update(1);
    expect(sizeless.text.length).toBeGreaterThan('\r\x1b[K'.length);
    expect(sizeless.text).not.toContain('\x1b[?7l');
  });
});

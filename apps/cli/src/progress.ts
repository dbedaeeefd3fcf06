/**
 * The replay's progress line on a terminal. It owns one line and never moves the cursor elsewhere:
 * it is drawn with `\r`, erased with `\r\x1b[K` before console bytes go out, cut to the terminal's
 * width (so it never wraps; line wrap is left as it was), and erased at the end.
 */

/** Where the line is drawn: stderr when it is a terminal. */
export interface ProgressStream {
  write(text: string): unknown;
  readonly columns?: number;
}

export interface ProgressFigures {
  /** Steps replayed so far, and of the whole recording. */
  readonly value: number;
  readonly total: number;
  readonly elapsedMs: number;
}

// Narrow enough that the whole line, at its longest, fits 80 columns.
const BAR_WIDTH = 12;
/** Redraws at most this often: a terminal repaint per slice costs more than it shows. */
export const PROGRESS_REDRAW_MS = 100;
const ERASE_LINE = '\r\x1b[K';

/** `m:ss`, or `h:mm:ss` from an hour on. */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  const s = String(seconds % 60).padStart(2, '0');
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}:${s}`;
  return `${Math.floor(minutes / 60)}:${String(minutes % 60).padStart(2, '0')}:${s}`;
}

/** A step count in few characters: 950, 12.3k, 4.5M, 1.2G. */
export function formatCount(count: number): string {
  if (count < 1e3) return String(count);
  if (count < 1e6) return `${(count / 1e3).toFixed(1)}k`;
  if (count < 1e9) return `${(count / 1e6).toFixed(1)}M`;
  return `${(count / 1e9).toFixed(1)}G`;
}

/** The line: bar, percentage, steps, elapsed time, rate, estimated time left. */
export function formatProgress({ value, total, elapsedMs }: ProgressFigures): string {
  const fraction = total > 0 ? Math.min(1, value / total) : 1;
  const filled = Math.round(fraction * BAR_WIDTH);
  const bar = `${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}`;
  const stepsPerMs = elapsedMs > 0 ? value / elapsedMs : 0;
  const eta = stepsPerMs > 0 ? formatDuration((total - Math.min(value, total)) / stepsPerMs) : '-:--';
  return (
    `replay [${bar}] ${String(Math.floor(fraction * 100)).padStart(3)}% | ` +
    `${formatCount(value)}/${formatCount(total)} steps | ${formatDuration(elapsedMs)} | ` +
    `${(stepsPerMs / 1e3).toFixed(1)} MIPS | ETA ${eta}`
  );
}

export class ProgressLine {
  private drawn = false;
  private lastDrawMs = Number.NEGATIVE_INFINITY;
  private readonly startMs: number;
  /** Whether the console's last byte ended a line: a progress line drawn mid-line would erase it. */
  private consoleAtLineStart = true;

  /**
   * @param sharesConsole true when console bytes go to the same terminal (stdout is one too).
   */
  constructor(
    private readonly stream: ProgressStream,
    private readonly total: number,
    private readonly sharesConsole: boolean,
    private readonly nowMs: () => number = () => performance.now(),
  ) {
    this.startMs = nowMs();
  }

  /** Redraws with `value` steps done (throttled). */
  update(value: number): void {
    const now = this.nowMs();
    if (now - this.lastDrawMs < PROGRESS_REDRAW_MS) return;
    if (this.sharesConsole && !this.consoleAtLineStart) return;
    this.lastDrawMs = now;
    const line = formatProgress({ value, total: this.total, elapsedMs: now - this.startMs });
    // One column short of the width: a line that fills the last column wraps on some terminals.
    // A terminal with no size (0 columns, a bare pseudo-terminal) counts as 80 wide.
    const width = (this.stream.columns || 80) - 1;
    this.stream.write(`${ERASE_LINE}${line.length > width ? line.slice(0, Math.max(0, width)) : line}`);
    this.drawn = true;
  }

  /** Erases the line, if drawn; call before anything else is written to the terminal. */
  clear(): void {
    if (!this.drawn) return;
    this.stream.write(ERASE_LINE);
    this.drawn = false;
  }

  /** Notes console bytes that went out (after {@link clear}). */
  consoleWrote(bytes: Uint8Array): void {
    if (bytes.length > 0) this.consoleAtLineStart = bytes[bytes.length - 1] === 0x0a;
  }
}

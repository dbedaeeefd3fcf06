import { afterEach, describe, expect, it, vi } from 'vitest';
import { onTerminalRestore, restoreTerminal, signalExitStatus, trapStopSignals } from './terminal.js';

afterEach(() => {
  vi.restoreAllMocks();
  restoreTerminal();
});

describe('signals and the terminal', () => {
  it('stops at the first signal, and at a second one restores the terminal and exits 128 + N', () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const restored: string[] = [];
    onTerminalRestore(() => restored.push('raw mode off'));
    const stops: number[] = [];
    const listeners = process.listenerCount('SIGTERM');
    const trap = trapStopSignals((signal) => stops.push(signal));
    try {
      process.emit('SIGTERM');
      expect(stops).toEqual([15]);
      expect(trap.signal).toBe(15);
      expect(exit).not.toHaveBeenCalled();
      // A command that does not stop: the second signal ends it, the terminal put back first.
      process.emit('SIGINT');
      expect(restored).toEqual(['raw mode off']);
      expect(exit).toHaveBeenCalledWith(130);
      expect(process.stderr.write).toHaveBeenCalledWith('ftvm: terminating on signal 2\n');
    } finally {
      trap.release();
    }
    expect(process.listenerCount('SIGTERM')).toBe(listeners);
  });

  it('runs each restorer once, whether its owner or the exit gets there first', () => {
    let count = 0;
    const restore = onTerminalRestore(() => count++);
    restoreTerminal();
    restore();
    restoreTerminal();
    expect(count).toBe(1);
    expect(signalExitStatus(15)).toBe(143);
  });
});

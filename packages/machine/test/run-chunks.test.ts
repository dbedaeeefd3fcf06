import { describe, expect, it } from 'vitest';
import { RUN_CHUNK_STEPS, RUN_CHUNK_STEPS_MIN, RunChunkSizer } from '../src/execution-mode.js';

describe('the runs of a time-limited slice', () => {
  it('start full-size, shrink at once to ~2 ms when the guest runs slowly, and grow back twice a run', () => {
    const chunks = new RunChunkSizer();
    expect(chunks.steps).toBe(RUN_CHUNK_STEPS);
    // Cold code: 65,536 steps took 100 ms (1.5 µs a step): about 1,300 steps take 2 ms.
    chunks.ran(RUN_CHUNK_STEPS, 100_000_000);
    expect(chunks.steps).toBe(1310);
    // Warm again: 1,310 steps in 0.1 ms. The next run doubles, no more.
    chunks.ran(1310, 100_000);
    expect(chunks.steps).toBe(2620);
    for (let run = 0; run < 10; run++) chunks.ran(chunks.steps, 100_000);
    expect(chunks.steps).toBe(RUN_CHUNK_STEPS);
  });

  it('never goes below its floor, and ignores a run that did nothing', () => {
    const chunks = new RunChunkSizer();
    chunks.ran(10, 1_000_000_000);
    expect(chunks.steps).toBe(RUN_CHUNK_STEPS_MIN);
    chunks.ran(0, 5_000_000_000);
    expect(chunks.steps).toBe(RUN_CHUNK_STEPS_MIN);
    chunks.ran(RUN_CHUNK_STEPS_MIN, 0);
    expect(chunks.steps).toBe(2 * RUN_CHUNK_STEPS_MIN);
  });
});

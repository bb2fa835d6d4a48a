// Timing helpers shared by the benchmarks: warm-up, then the median of several timed samples, each
// ended by a full synchronization of the framework being measured.

export interface TimingOptions {
  /** Untimed runs before the first sample (compiles pipelines, fills buffer pools). */
  warmup?: number;
  /** Timed samples; the median is reported. */
  samples?: number;
  /** Runs inside one sample, between two synchronizations; the sample is divided by this count. */
  runsPerSample?: number;
}

export interface Timing {
  /** Median milliseconds per run. */
  ms: number;
  /** Every sample, in milliseconds per run, in the order measured. */
  samples: number[];
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Times `run` between calls to `sync`, which must wait until every queued kernel has finished.
 * `run` may return a promise (a training step that reads its loss, say); it is awaited.
 */
export async function measure(run: () => unknown, sync: () => Promise<void>, options: TimingOptions = {}): Promise<Timing> {
  const { warmup = 2, samples = 5, runsPerSample = 1 } = options;
  for (let i = 0; i < warmup; i++) await run();
  await sync();
  const perRun: number[] = [];
  for (let s = 0; s < samples; s++) {
    const start = performance.now();
    for (let r = 0; r < runsPerSample; r++) await run();
    await sync();
    perRun.push((performance.now() - start) / runsPerSample);
  }
  return { ms: median(perRun), samples: perRun };
}

export interface Contender {
  run: () => unknown;
  sync: () => Promise<void>;
}

/**
 * Times several contenders with their samples interleaved (A, B, A, B, ...), so that a burst of load from
 * other processes slows them alike and their ratio stays meaningful. Returns one Timing per contender.
 */
export async function measureInterleaved(contenders: readonly Contender[], options: TimingOptions = {}): Promise<Timing[]> {
  const { warmup = 2, samples = 5, runsPerSample = 1 } = options;
  for (const c of contenders) {
    for (let i = 0; i < warmup; i++) await c.run();
    await c.sync();
  }
  const perRun: number[][] = contenders.map(() => []);
  for (let s = 0; s < samples; s++) {
    for (const [k, c] of contenders.entries()) {
      const start = performance.now();
      for (let r = 0; r < runsPerSample; r++) await c.run();
      await c.sync();
      perRun[k].push((performance.now() - start) / runsPerSample);
    }
  }
  return perRun.map((values) => ({ ms: median(values), samples: values }));
}

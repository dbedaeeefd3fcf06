/**
 * The report's plots, derived from its data: what each plot shows, as columns of numbers over
 * one shared x axis (seconds since the start). Pure data, embedded in the page as JSON and drawn
 * there by the page's script.
 */
import type { DemoReportData, HostSample, Sample } from './report-data.js';

/** One line of a plot: a value per sample, `null` where there is none (a gap in the line). */
export interface PlotSeries {
  readonly label: string;
  /** Which y axis: `y` (left) or `y2` (right, for a second unit). */
  readonly axis: 'y' | 'y2';
  readonly color: string;
  /** Decimals shown for a value in the legend. */
  readonly decimals: number;
  readonly values: readonly (number | null)[];
}

export interface PlotSpec {
  /** Stable, made of [a-z-] only: used in element ids. */
  readonly id: string;
  readonly title: string;
  /** What the plot shows, in a sentence (also its accessible description). */
  readonly description: string;
  readonly yLabel: string;
  /** Label of the right axis, when a series uses it. */
  readonly y2Label?: string;
  /** A log scale for the left axis (non-positive values are then gaps). */
  readonly logScale: boolean;
  readonly series: readonly PlotSeries[];
  /** How many values (over all series) are not gaps: what the page must draw. */
  readonly points: number;
}

/** An event as marked on every plot. */
export interface PlotEvent {
  /** Seconds since the start. */
  readonly t: number;
  readonly kind: string;
  /** The short label drawn beside its line: its number in the event list and its kind. */
  readonly label: string;
  readonly color: string;
}

export interface ReportPlots {
  /** Seconds since the start, one per sample. */
  readonly x: readonly number[];
  /** The x axis's span, in seconds: the whole run, every sample and every event in it. */
  readonly xRange: readonly [number, number];
  readonly events: readonly PlotEvent[];
  readonly plots: readonly PlotSpec[];
}

/** The colour of an event's line by its kind: faults red, go-lives green, clones blue, halts grey. */
export function eventColor(kind: string): string {
  switch (kind) {
    case 'fault':
      return '#d62728';
    case 'go-live':
      return '#2ca02c';
    case 'clone-started':
    case 'clone-finished':
      return '#1f77b4';
    case 'halted':
      return '#7f7f7f';
    default:
      return '#9c6d00';
  }
}

/** Line colours for hosts and series, told apart from each other and from the event colours. */
const palette = ['#3b5bdb', '#e8590c', '#0c8599', '#ae3ec9', '#5c940d', '#c2255c', '#495057', '#f08c00'];

function finite(value: number): number | null {
  return Number.isFinite(value) ? value : null;
}

function positive(value: number): number | null {
  return Number.isFinite(value) && value > 0 ? value : null;
}

/** The host that is primary at a sample (the first, should a split brain show two). */
function primaryOf(sample: Sample): HostSample | undefined {
  return sample.hosts.find((host) => host.role === 'primary');
}

function countPoints(series: readonly PlotSeries[]): number {
  let points = 0;
  for (const line of series) for (const value of line.values) if (value !== null) points++;
  return points;
}

function plot(spec: Omit<PlotSpec, 'points'>): PlotSpec {
  return { ...spec, points: countPoints(spec.series) };
}

function line(
  label: string,
  color: string,
  decimals: number,
  values: readonly (number | null)[],
  axis: 'y' | 'y2' = 'y',
): PlotSeries {
  return { label, axis, color, decimals, values };
}

/** The plots of a report: throughput, latency, execution lag, log bandwidth, MIPS, held outputs. */
export function reportPlots(data: DemoReportData): ReportPlots {
  const samples = data.samples;
  const x = samples.map((sample) => sample.atMs / 1000);
  const primaries = samples.map(primaryOf);
  const ofPrimary = (pick: (host: HostSample) => number, scale = 1) =>
    primaries.map((host) => (host === undefined ? null : finite(pick(host) * scale)));

  const hostNames: string[] = [];
  for (const sample of samples)
    for (const host of sample.hosts) if (!hostNames.includes(host.name)) hostNames.push(host.name);

  const plots: PlotSpec[] = [
    plot({
      id: 'throughput',
      title: 'Client throughput',
      description: 'Requests the clients had answered per second, over each sample interval.',
      yLabel: 'ops/s',
      logScale: false,
      series: [
        line(
          'ops/s',
          palette[0]!,
          0,
          samples.map((sample) => finite(sample.client.opsPerSecond)),
        ),
      ],
    }),
    plot({
      id: 'latency',
      title: 'Client latency',
      description:
        'Median (p50) and 99th percentile (p99) latency of the answers in each interval, log scale; a gap where none was answered.',
      yLabel: 'ms',
      logScale: true,
      series: [
        line(
          'p50 ms',
          palette[0]!,
          2,
          samples.map((sample) => positive(sample.client.latencyP50Ms)),
        ),
        line(
          'p99 ms',
          palette[1]!,
          2,
          samples.map((sample) => positive(sample.client.latencyP99Ms)),
        ),
      ],
    }),
    plot({
      id: 'execution-lag',
      title: 'Execution lag of the primary',
      description:
        'How long the oldest log entry the backup has not applied has waited, on whichever host is primary; a gap while there is none.',
      yLabel: 'ms',
      logScale: false,
      series: [
        line(
          'lag ms',
          palette[2]!,
          2,
          ofPrimary((host) => host.executionLagMs),
        ),
      ],
    }),
    plot({
      id: 'log-bandwidth',
      title: 'Log bandwidth',
      description: 'Log bytes per second the primary sent to its backup, in KiB/s.',
      yLabel: 'KiB/s',
      logScale: false,
      series: [
        line(
          'KiB/s',
          palette[3]!,
          1,
          ofPrimary((host) => host.logBytesPerSecond, 1 / 1024),
        ),
      ],
    }),
    plot({
      id: 'mips',
      title: 'Guest MIPS per host',
      description: 'Millions of guest instructions per second on each host; a gap where a host is absent.',
      yLabel: 'MIPS',
      logScale: false,
      series: hostNames.map((name, index) =>
        line(
          name,
          palette[index % palette.length]!,
          2,
          samples.map((sample) => {
            const host = sample.hosts.find((candidate) => candidate.name === name);
            return host === undefined ? null : finite(host.mips);
          }),
        ),
      ),
    }),
    plot({
      id: 'held-outputs',
      title: 'Outputs held',
      description:
        'Outputs the primary holds for the output rule (left axis) and how long the oldest has waited (right axis, ms).',
      yLabel: 'held outputs',
      y2Label: 'oldest held, ms',
      logScale: false,
      series: [
        line(
          'held',
          palette[4]!,
          0,
          ofPrimary((host) => host.heldOutputs),
        ),
        line(
          'oldest held ms',
          palette[5]!,
          2,
          ofPrimary((host) => host.oldestHeldOutputMs),
          'y2',
        ),
      ],
    }),
  ];

  const events = data.events
    .map((event, index) => ({
      t: event.atMs / 1000,
      kind: event.kind,
      label: `${index + 1} ${event.kind}`,
      color: eventColor(event.kind),
    }))
    .filter((event) => Number.isFinite(event.t));
  const times = [0, data.durationMs / 1000, ...x, ...events.map((event) => event.t)].filter(Number.isFinite);
  const xRange: [number, number] = [Math.min(...times), Math.max(...times)];
  if (xRange[1] === xRange[0]) xRange[1] = xRange[0] + 1;
  return { x, xRange, events, plots };
}

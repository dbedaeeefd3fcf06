/**
 * What a demo run records for its report: samples over time, the events that marked it, and the
 * verdict. Plain data (JSON), so a report can be rendered again from a saved file.
 */

/** One host's figures at a sample. */
export interface HostSample {
  readonly name: string;
  /** `primary`, `backup`, `clone` (receiving its state), `standalone`, `dead`, `halted`. */
  readonly role: string;
  readonly epoch: number;
  /** Guest instructions per second since the previous sample, in millions. */
  readonly mips: number;
  /** Primary: how long the oldest entry its backup has not applied has waited. */
  readonly executionLagMs: number;
  /** Primary: log bytes per second sent to its backup since the previous sample. */
  readonly logBytesPerSecond: number;
  /** Primary: outputs held for the output rule, and how long the oldest has waited. */
  readonly heldOutputs: number;
  readonly oldestHeldOutputMs: number;
}

/** The clients' figures over the interval ending at a sample. */
export interface ClientSample {
  readonly opsPerSecond: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  /** Requests sent and not answered yet. */
  readonly inFlight: number;
}

export interface Sample {
  /** Milliseconds since the run started. */
  readonly atMs: number;
  readonly hosts: readonly HostSample[];
  readonly client: ClientSample;
}

/** Something that happened, marked on every plot. */
export interface TimelineEvent {
  readonly atMs: number;
  /** `fault` (an injected failure), `go-live`, `clone-started`, `clone-finished`, `halted`, `note`. */
  readonly kind: string;
  /** One line for people: "kill host-a (primary)", "host-b went live as epoch 2 in 3.1 ms". */
  readonly text: string;
}

export interface VerdictCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface DemoReportData {
  readonly title: string;
  /** The command line that ran it, so it can be run again. */
  readonly command: string;
  readonly startedAt: string;
  readonly durationMs: number;
  readonly seed: number;
  readonly settings: Readonly<Record<string, string | number | boolean>>;
  readonly samples: readonly Sample[];
  readonly events: readonly TimelineEvent[];
  readonly verdict: { readonly ok: boolean; readonly checks: readonly VerdictCheck[] };
}

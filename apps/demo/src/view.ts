import pino from 'pino';
import type { DemoOptions } from './options.js';
import type { DemoReportData, Sample, TimelineEvent } from './report/report-data.js';

/** What the demo shows while it runs: a live panel on a terminal, structured log lines otherwise. */
export interface DemoView {
  started(port: number): void;
  sample(sample: Sample): void;
  event(event: TimelineEvent): void;
  finished(report: DemoReportData): void;
}

export function createView(output: NodeJS.WritableStream, options: DemoOptions): DemoView {
  const isTerminal = (output as { isTTY?: boolean }).isTTY === true;
  return isTerminal ? new TerminalView(output, options) : new LogView(output);
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1).padStart(5)}s`;

/** Redraws a panel in place: hosts and their roles, the clients, the latest events. */
class TerminalView implements DemoView {
  readonly #output: NodeJS.WritableStream;
  readonly #options: DemoOptions;
  readonly #events: TimelineEvent[] = [];
  #lines = 0;
  #port = 0;

  constructor(output: NodeJS.WritableStream, options: DemoOptions) {
    this.#output = output;
    this.#options = options;
  }

  started(port: number): void {
    this.#port = port;
  }

  sample(sample: Sample): void {
    const bold = (text: string) => `\u001b[1m${text}\u001b[0m`;
    // Padded first, coloured by the bare role (a padded role never equals 'primary').
    const roleColour = (role: string, width: number) =>
      role === 'primary'
        ? `\u001b[32m${role.padEnd(width)}\u001b[0m`
        : role === 'dead' || role === 'halted'
          ? `\u001b[31m${role.padEnd(width)}\u001b[0m`
          : role.padEnd(width);
    const lines = [
      `${bold('ftvm demo')}  ${seconds(sample.atMs)} of ${this.#options.seconds}s   kv on udp 127.0.0.1:${this.#port}   transport ${this.#options.transport}, disk ${this.#options.diskMode}`,
      '',
      `${'host'.padEnd(9)}${'role'.padEnd(18)}${'epoch'.padStart(6)}${'MIPS'.padStart(8)}${'lag ms'.padStart(9)}${'log KiB/s'.padStart(11)}${'held'.padStart(6)}${'wait ms'.padStart(9)}`,
      ...sample.hosts.map(
        (host) =>
          `${host.name.padEnd(9)}${roleColour(host.role, 18)}${String(host.epoch).padStart(6)}${host.mips.toFixed(0).padStart(8)}${host.executionLagMs.toFixed(1).padStart(9)}${(host.logBytesPerSecond / 1024).toFixed(1).padStart(11)}${String(host.heldOutputs).padStart(6)}${host.oldestHeldOutputMs.toFixed(1).padStart(9)}`,
      ),
      '',
      `clients: ${sample.client.opsPerSecond.toFixed(0)} ops/s, latency p50 ${sample.client.latencyP50Ms.toFixed(2)} ms, p99 ${sample.client.latencyP99Ms.toFixed(2)} ms, ${sample.client.inFlight} in flight`,
      '',
      ...this.#events.slice(-8).map((event) => `${seconds(event.atMs)}  ${event.text}`),
    ];
    this.#draw(lines);
  }

  event(event: TimelineEvent): void {
    this.#events.push(event);
  }

  finished(report: DemoReportData): void {
    this.#lines = 0;
    this.#output.write('\n');
    for (const check of report.verdict.checks) {
      this.#output.write(
        `${check.ok ? '\u001b[32mok  \u001b[0m' : '\u001b[31mFAIL\u001b[0m'} ${check.name}: ${check.detail}\n`,
      );
    }
    this.#output.write(
      `${report.verdict.ok ? '\u001b[32mverdict: PASS\u001b[0m' : '\u001b[31mverdict: FAIL\u001b[0m'}\n`,
    );
  }

  #draw(lines: string[]): void {
    // Back to the top of the previous panel, then rewrite it line by line.
    if (this.#lines > 0) this.#output.write(`\u001b[${this.#lines}F`);
    for (const line of lines) this.#output.write(`\u001b[2K${line}\n`);
    for (let extra = lines.length; extra < this.#lines; extra++) this.#output.write('\u001b[2K\n');
    this.#lines = Math.max(lines.length, this.#lines);
  }
}

/** One JSON line (pino) per event and one per second of figures. */
class LogView implements DemoView {
  readonly #log: pino.Logger;
  #lastSampleMs = -1000;

  constructor(output: NodeJS.WritableStream) {
    this.#log = pino({ base: { app: 'ftvm-demo' }, timestamp: pino.stdTimeFunctions.isoTime }, output);
  }

  started(port: number): void {
    this.#log.info({ port }, 'kv served on the gateway');
  }

  sample(sample: Sample): void {
    if (sample.atMs - this.#lastSampleMs < 1000) return;
    this.#lastSampleMs = sample.atMs;
    this.#log.info({ atMs: sample.atMs, hosts: sample.hosts, client: sample.client }, 'figures');
  }

  event(event: TimelineEvent): void {
    this.#log.info({ atMs: event.atMs, kind: event.kind }, event.text);
  }

  finished(report: DemoReportData): void {
    for (const check of report.verdict.checks) {
      (check.ok ? this.#log.info.bind(this.#log) : this.#log.error.bind(this.#log))(
        { check: check.name, ok: check.ok },
        check.detail,
      );
    }
    this.#log.info({ ok: report.verdict.ok }, report.verdict.ok ? 'verdict: PASS' : 'verdict: FAIL');
  }
}

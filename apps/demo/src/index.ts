import { ExitStatus, FtvmError } from '@ftvm/core';
import { Command, CommanderError } from 'commander';
import { demoCommand } from './command.js';

export type { ClusterEvent, ClusterSettings, DemoHost } from './cluster.js';
export { InProcessCluster } from './cluster.js';
export { demoCommand } from './command.js';
export type { DemoResult } from './demo.js';
export { describeFault, runDemo } from './demo.js';
export type { DemoOptions, DemoTransport, DiskMode, Fault, FaultTarget } from './options.js';
export { DEFAULT_FAULTS, parseKill, parsePartition, parsePause } from './options.js';
export { renderReport, writeReport } from './report/index.js';
export type { DemoReportData } from './report/report-data.js';

/** `npm run demo [-- options]`: runs the demo command; returns the exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  let status = 0;
  const args = argv.slice(2);
  const program = new Command('ftvm').exitOverride().configureOutput({
    outputError: (text, write) => write(text.startsWith('error: ') ? `ftvm: ${text.slice(7)}` : text),
  });
  program.addCommand(
    demoCommand(
      (code) => {
        status = code;
      },
      ['node', 'ftvm', 'demo', ...args],
    ).copyInheritedSettings(program),
  );
  try {
    await program.parseAsync(['node', 'ftvm', 'demo', ...args]);
    return status;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : ExitStatus.usage;
    if (FtvmError.is(error)) {
      process.stderr.write(`ftvm: ${error.message}\n`);
      return error.exitStatus;
    }
    process.stderr.write(`ftvm: internal error: ${(error as Error).message}\n`);
    return ExitStatus.software;
  }
}

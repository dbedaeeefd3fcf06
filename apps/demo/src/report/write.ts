/** Writing a report to a file (Node-only). */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { renderReport } from './render.js';
import type { DemoReportData } from './report-data.js';

/**
 * Renders the report and writes it to `path` atomically: into a temporary file beside it, then
 * renamed over it, so a reader never sees half a report. Creates the directory when missing.
 */
export async function writeReport(path: string, data: DemoReportData): Promise<void> {
  const html = renderReport(data);
  const directory = dirname(path);
  await mkdir(directory, { recursive: true });
  const temporary = join(
    directory,
    `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`,
  );
  try {
    await writeFile(temporary, html, 'utf8');
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

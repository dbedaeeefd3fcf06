export { escapeHtml, jsonForScript, renderReport } from './render.js';
export type {
  ClientSample,
  DemoReportData,
  HostSample,
  Sample,
  TimelineEvent,
  VerdictCheck,
} from './report-data.js';
export { writeReport } from './write.js';

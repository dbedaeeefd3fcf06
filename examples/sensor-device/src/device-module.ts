import { loadavg } from 'node:os';
import { createSensor, type Sensor } from './sensor.js';

/**
 * The module `ftvm --device` loads: `ftvm run --kernel GUEST --device @ftvm/example-sensor-device/device-module`.
 * Options: `source=load` (default: the 1-minute load average × 1000) or `source=uptime` (seconds);
 * `alert-every-ms=N` raises an alert with the current reading every N ms of host time.
 */
export default function createDevice(options: Record<string, string>): Sensor {
  const readHost =
    options.source === 'uptime' ? () => Math.floor(process.uptime()) : () => Math.round(loadavg()[0]! * 1000);
  const sensor = createSensor({ readHost });
  const every = Number(options['alert-every-ms'] ?? 0);
  if (every > 0) setInterval(() => sensor.alert(readHost()), every).unref();
  return sensor;
}

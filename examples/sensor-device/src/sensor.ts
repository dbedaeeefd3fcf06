import type {
  AccessWidth,
  Device,
  DeviceEnv,
  DeviceEventPayload,
  DevicePlacement,
  DeviceTreeNode,
  StateSection,
} from '@ftvm/core';
import { SnapshotError } from '@ftvm/core';

/**
 * A sensor, written only against the device contract of `@ftvm/core`, to show that such a device is
 * recorded, replayed and fault tolerant with no further work.
 *
 * Registers (32-bit):
 *
 *     0x00  READING        read: takes a reading of the host value (door 2, `nondet`)
 *     0x04  READ_COUNT     read: readings taken since reset
 *     0x08  ALERT_VALUE    read: the value of the latest alert
 *     0x0c  ALERT_PENDING  read: 1 while an alert is pending; write 1: acknowledge (lowers the IRQ)
 *     0x10  ID             read: 0x53454e53 ("SENS")
 *
 * Alerts come from the host half (`alert(value)`) as events (door 1, `inject`), so they reach the
 * guest at a recorded instruction boundary and raise the device's interrupt.
 */
export const SENSOR_ID = 0x53454e53;
export const SENSOR_COMPATIBLE = 'ftvm,example-sensor';

export interface SensorOptions {
  /** Reads the host value; called only on a standalone or primary machine, never on a replay. */
  readHost: () => number;
  /** The PLIC's phandle for `interrupt-parent` (QEMU virt's is 3). */
  plicPhandle?: number;
}

export interface Sensor extends Device {
  /** Host half: raise an alert with a value. Safe to call at any time, from host code. */
  alert(value: number): void;
}

interface SensorState {
  readCount: number;
  alertValue: number;
  alertPending: boolean;
}

export function createSensor(options: SensorOptions): Sensor {
  let env: DeviceEnv | undefined;
  let state: SensorState = { readCount: 0, alertValue: 0, alertPending: false };

  return {
    kind: 'example-sensor',
    mmioSize: 0x1000,

    attach(deviceEnv: DeviceEnv) {
      env = deviceEnv;
    },

    readMmio(offset: number, width: AccessWidth): number {
      if (width !== 4 || !env) return 0;
      switch (offset) {
        case 0x00:
          state.readCount++;
          return env.nondet('reading', () => options.readHost() >>> 0);
        case 0x04:
          return state.readCount;
        case 0x08:
          return state.alertValue;
        case 0x0c:
          return state.alertPending ? 1 : 0;
        case 0x10:
          return SENSOR_ID;
        default:
          return 0;
      }
    },

    writeMmio(offset: number, width: AccessWidth, value: number) {
      if (width === 4 && offset === 0x0c && (value & 1) !== 0) {
        state.alertPending = false;
        env?.irq.set(false);
      }
    },

    applyEvent(event: DeviceEventPayload) {
      // A log may be hostile: accept only what this device sends itself.
      if (event.type !== 'alert' || typeof event.data !== 'number') return;
      state.alertValue = event.data >>> 0;
      state.alertPending = true;
      env?.irq.set(true);
    },

    alert(value: number) {
      env?.inject({ type: 'alert', data: value >>> 0 });
    },

    reset() {
      state = { readCount: 0, alertValue: 0, alertPending: false };
      env?.irq.set(false);
    },

    saveState(): StateSection {
      return { kind: 'example-sensor', version: 1, state: { ...state } };
    },

    restoreState(section: StateSection) {
      const saved = section?.state as Partial<SensorState> | null;
      if (
        section?.kind !== 'example-sensor' ||
        section.version !== 1 ||
        typeof saved?.readCount !== 'number' ||
        typeof saved.alertValue !== 'number' ||
        typeof saved.alertPending !== 'boolean'
      ) {
        throw new SnapshotError('example-sensor: unreadable state');
      }
      state = { readCount: saved.readCount, alertValue: saved.alertValue, alertPending: saved.alertPending };
      env?.irq.set(state.alertPending);
    },

    deviceTree(placement: DevicePlacement): DeviceTreeNode {
      return {
        name: `sensor@${placement.base.toString(16)}`,
        properties: {
          interrupts: [placement.irq],
          'interrupt-parent': [options.plicPhandle ?? 3],
          reg: [0, placement.base, 0, 0x1000],
          compatible: SENSOR_COMPATIBLE,
        },
      };
    },
  };
}

/**
 * `@ftvm/devices/test`: a harness for testing device models, ours and users' custom ones, without a
 * machine. See {@link createDeviceHarness}.
 */
export type {
  DeviceHarnessOptions,
  RecordedNondetRead,
  RecordedOutput,
  ScheduledInjection,
  TestDeviceEnvOptions,
} from './test-device-env.js';
export {
  createDeviceHarness,
  createTestDeviceEnv,
  DeviceHarness,
  HARNESS_EVENTS_PER_DELIVER_MAX,
  TestClock,
  TestDeviceEnv,
  TestGuestMemory,
  TestInterruptLine,
  TestMachineControl,
} from './test-device-env.js';

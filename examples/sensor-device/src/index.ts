export { createSensor, SENSOR_COMPATIBLE, SENSOR_ID, type Sensor, type SensorOptions } from './sensor.js';

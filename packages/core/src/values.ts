/**
 * Plain data that can cross every boundary of ftvm: the log codec (msgpack), a worker's
 * `postMessage`, a snapshot file. No class instances, functions, `undefined`, `bigint` or cycles.
 */
export type PlainValue =
  | null
  | boolean
  | number
  | string
  | Uint8Array
  | readonly PlainValue[]
  | { readonly [key: string]: PlainValue };

/**
 * True when `value` is a {@link PlainValue}. Used where untrusted data (a decoded log, a snapshot
 * file) is about to reach a device.
 */
export function isPlainValue(value: unknown, depthLimit = 64): value is PlainValue {
  if (depthLimit < 0) return false;
  if (value === null) return true;
  switch (typeof value) {
    case 'boolean':
    case 'string':
    case 'number':
      return true;
    case 'object': {
      if (value instanceof Uint8Array) return true;
      if (Array.isArray(value)) return value.every((item) => isPlainValue(item, depthLimit - 1));
      const prototype = Object.getPrototypeOf(value);
      if (prototype !== Object.prototype && prototype !== null) return false;
      return Object.values(value as Record<string, unknown>).every((item) =>
        isPlainValue(item, depthLimit - 1),
      );
    }
    default:
      return false;
  }
}

/**
 * Structural equality of two {@link PlainValue}s (byte arrays by content, objects by key set).
 * Replay uses it to check a logged value against the one a device asks for.
 */
export function plainValuesEqual(a: PlainValue, b: PlainValue): boolean {
  if (a === b) return true;
  if (typeof a === 'number' && typeof b === 'number') return Number.isNaN(a) && Number.isNaN(b);
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!(Array.isArray(a) && Array.isArray(b)) || a.length !== b.length) return false;
    return a.every((item, i) => plainValuesEqual(item, b[i] as PlainValue));
  }
  const aKeys = Object.keys(a);
  const bRecord = b as { readonly [key: string]: PlainValue };
  if (aKeys.length !== Object.keys(bRecord).length) return false;
  return aKeys.every(
    (key) =>
      Object.hasOwn(bRecord, key) &&
      plainValuesEqual(
        (a as { readonly [key: string]: PlainValue })[key] as PlainValue,
        bRecord[key] as PlainValue,
      ),
  );
}

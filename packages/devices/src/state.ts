import { type PlainValue, SnapshotError, type StateSection } from '@ftvm/core';

/**
 * Helpers for reading a device's saved state back. A state section may come from a file or another
 * host, so every field is checked; anything malformed throws `SnapshotError` naming the field (and,
 * for nested state, its path).
 */

/** The fields of a state section, or of an object nested in one, checked one by one. */
export class StateReader {
  readonly #path: string;
  readonly #fields: { readonly [key: string]: PlainValue };

  private constructor(path: string, fields: { readonly [key: string]: PlainValue }) {
    this.#path = path;
    this.#fields = fields;
  }

  /** Opens `section`, which must have been written by `kind` at `version`, with an object state. */
  static open(section: StateSection, kind: string, version: number): StateReader {
    if (typeof section !== 'object' || section === null) {
      throw new SnapshotError(`${kind}: state section is not an object`);
    }
    if (section.kind !== kind) {
      throw new SnapshotError(`${kind}: cannot restore a state section of kind '${String(section.kind)}'`);
    }
    if (section.version !== version) {
      throw new SnapshotError(
        `${kind}: state version ${String(section.version)} is not supported (expected ${version})`,
      );
    }
    return StateReader.of(section.state, kind);
  }

  /** Opens a plain value that must be an object (nested state); `path` names it in errors. */
  static of(value: PlainValue | undefined, path: string): StateReader {
    if (typeof value !== 'object' || value === null || value instanceof Uint8Array || Array.isArray(value)) {
      throw new SnapshotError(`${path}: state is not an object`);
    }
    return new StateReader(path, value as { readonly [key: string]: PlainValue });
  }

  #fail(name: string, expected: string): never {
    throw new SnapshotError(`${this.#path}: state field '${name}' is missing or not ${expected}`);
  }

  /** The raw field, or undefined. */
  raw(name: string): PlainValue | undefined {
    return Object.hasOwn(this.#fields, name) ? this.#fields[name] : undefined;
  }

  /** An integer in `[min, max]`. */
  integer(name: string, max: number, min = 0): number {
    const value = this.raw(name);
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.#fail(name, `an integer in [${min}, ${max}]`);
    }
    return value;
  }

  integerOrNull(name: string, max: number): number | null {
    return this.raw(name) === null ? null : this.integer(name, max);
  }

  string(name: string, maxLength: number): string {
    const value = this.raw(name);
    if (typeof value !== 'string' || value.length > maxLength)
      this.#fail(name, `a string of at most ${maxLength}`);
    return value;
  }

  bytesOrNull(name: string, maxLength: number): Uint8Array | null {
    return this.raw(name) === null ? null : this.bytes(name, maxLength);
  }

  /** An array of at most `maxLength` items, each read by `item`. */
  array<T>(
    name: string,
    maxLength: number,
    item: (value: PlainValue, path: string, index: number) => T,
  ): T[] {
    const value = this.raw(name);
    if (!Array.isArray(value) || value.length > maxLength)
      this.#fail(name, `an array of at most ${maxLength} items`);
    return (value as readonly PlainValue[]).map((entry, i) => item(entry, `${this.#path}.${name}[${i}]`, i));
  }

  /** A nested object. */
  object(name: string): StateReader {
    return StateReader.of(this.raw(name), `${this.#path}.${name}`);
  }

  /** A nested state section (kind, version, state), returned as is for its owner to check. */
  section(name: string): StateSection {
    const fields = this.object(name);
    const kind = fields.string('kind', 64);
    const version = fields.integer('version', 0xffff_ffff);
    const state = fields.raw('state');
    if (state === undefined) this.#fail(`${name}.state`, 'present');
    return { kind, version, state };
  }

  /** A finite number (any sign), or null when `nullable`. */
  finiteOrNull(name: string): number | null {
    const value = this.raw(name);
    if (value === null) return null;
    if (typeof value !== 'number' || !Number.isFinite(value)) this.#fail(name, 'a finite number or null');
    return value;
  }

  boolean(name: string): boolean {
    const value = this.raw(name);
    if (typeof value !== 'boolean') this.#fail(name, 'a boolean');
    return value;
  }

  /** A byte array of at most `maxLength` bytes (copied). */
  bytes(name: string, maxLength: number): Uint8Array {
    const value = this.raw(name);
    if (!(value instanceof Uint8Array) || value.length > maxLength) {
      this.#fail(name, `a byte array of at most ${maxLength} bytes`);
    }
    return value.slice();
  }

  /** A signed 64-bit integer saved as a decimal string (see {@link bigIntToState}). */
  int64(name: string): bigint {
    return this.#bigInt(name, -(1n << 63n), (1n << 63n) - 1n);
  }

  /** An unsigned 64-bit integer saved as a decimal string. */
  uint64(name: string): bigint {
    return this.#bigInt(name, 0n, (1n << 64n) - 1n);
  }

  #bigInt(name: string, min: bigint, max: bigint): bigint {
    const value = this.raw(name);
    if (typeof value !== 'string' || !/^-?[0-9]{1,20}$/.test(value))
      this.#fail(name, 'a decimal integer string');
    const parsed = BigInt(value);
    if (parsed < min || parsed > max) this.#fail(name, `a decimal integer in [${min}, ${max}]`);
    return parsed;
  }

  /** An array of exactly `length` integers, each in `[0, max]`. */
  integers(name: string, length: number, max: number): number[] {
    const value = this.raw(name);
    if (!Array.isArray(value) || value.length !== length) this.#fail(name, `an array of ${length} integers`);
    return (value as readonly PlainValue[]).map((item) => {
      if (typeof item !== 'number' || !Number.isInteger(item) || item < 0 || item > max) {
        this.#fail(name, `an array of integers in [0, ${max}]`);
      }
      return item;
    });
  }
}

/** 64-bit integers travel in state sections as decimal strings: `PlainValue` has no bigint. */
export function bigIntToState(value: bigint): string {
  return value.toString(10);
}

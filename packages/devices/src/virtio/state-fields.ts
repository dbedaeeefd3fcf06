import { type PlainValue, SnapshotError, type StateSection } from '@ftvm/core';

/**
 * Checked reading of nested saved state (objects inside arrays inside a section), for the virtio
 * transport and devices. Every malformed field throws `SnapshotError` naming its path.
 */
export class StateFields {
  readonly #path: string;
  readonly #fields: { readonly [key: string]: PlainValue };

  private constructor(path: string, fields: { readonly [key: string]: PlainValue }) {
    this.#path = path;
    this.#fields = fields;
  }

  /** Opens a section written by `kind` at `version` whose state is an object. */
  static openSection(section: StateSection, kind: string, version: number): StateFields {
    if (typeof section !== 'object' || section === null)
      throw new SnapshotError(`${kind}: state section is not an object`);
    if (section.kind !== kind) {
      throw new SnapshotError(`${kind}: cannot restore a state section of kind '${String(section.kind)}'`);
    }
    if (section.version !== version) {
      throw new SnapshotError(
        `${kind}: state version ${String(section.version)} is not supported (expected ${version})`,
      );
    }
    return StateFields.of(section.state, kind);
  }

  /** Opens a plain value that must be an object. */
  static of(value: PlainValue | undefined, path: string): StateFields {
    if (typeof value !== 'object' || value === null || value instanceof Uint8Array || Array.isArray(value)) {
      throw new SnapshotError(`${path}: state is not an object`);
    }
    return new StateFields(path, value as { readonly [key: string]: PlainValue });
  }

  #fail(name: string, expected: string): never {
    throw new SnapshotError(`${this.#path}: state field '${name}' is missing or not ${expected}`);
  }

  /** The raw field, or undefined. */
  raw(name: string): PlainValue | undefined {
    return Object.hasOwn(this.#fields, name) ? this.#fields[name] : undefined;
  }

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

  boolean(name: string): boolean {
    const value = this.raw(name);
    if (typeof value !== 'boolean') this.#fail(name, 'a boolean');
    return value;
  }

  string(name: string, maxLength: number): string {
    const value = this.raw(name);
    if (typeof value !== 'string' || value.length > maxLength)
      this.#fail(name, `a string of at most ${maxLength}`);
    return value;
  }

  bytes(name: string, maxLength: number): Uint8Array {
    const value = this.raw(name);
    if (!(value instanceof Uint8Array) || value.length > maxLength) {
      this.#fail(name, `a byte array of at most ${maxLength} bytes`);
    }
    return value.slice();
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
  object(name: string): StateFields {
    return StateFields.of(this.raw(name), `${this.#path}.${name}`);
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
}

/** A 64-bit feature set travels as a decimal string (PlainValue has no bigint). */
export function featuresToState(features: bigint): string {
  return features.toString(10);
}

/** Reads a feature set saved by {@link featuresToState}. */
export function featuresFromState(fields: StateFields, name: string): bigint {
  const text = fields.string(name, 20);
  if (!/^[0-9]{1,20}$/.test(text)) throw new SnapshotError(`state field '${name}' is not a decimal integer`);
  const value = BigInt(text);
  if (value >= 1n << 64n) throw new SnapshotError(`state field '${name}' is wider than 64 bits`);
  return value;
}

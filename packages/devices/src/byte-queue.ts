/** A first-in first-out queue of bytes that grows as needed. */
export class ByteQueue {
  #bytes = new Uint8Array(64);
  #head = 0;
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(byte: number): void {
    this.#reserve(1);
    this.#bytes[(this.#head + this.#length) % this.#bytes.length] = byte;
    this.#length++;
  }

  pushAll(bytes: Uint8Array): void {
    this.#reserve(bytes.length);
    for (const byte of bytes) {
      this.#bytes[(this.#head + this.#length) % this.#bytes.length] = byte;
      this.#length++;
    }
  }

  /** Puts `bytes` in front of the contents, to come out first. */
  prependAll(bytes: Uint8Array): void {
    const rest = this.toBytes();
    this.clear();
    this.pushAll(bytes);
    this.pushAll(rest);
  }

  /** Removes and returns the oldest byte; the queue must not be empty. */
  shift(): number {
    if (this.#length === 0) throw new RangeError('shift from an empty byte queue');
    const byte = this.#bytes[this.#head]!;
    this.#head = (this.#head + 1) % this.#bytes.length;
    this.#length--;
    return byte;
  }

  /** Removes and returns up to `count` of the oldest bytes. */
  take(count: number): Uint8Array {
    const taken = new Uint8Array(Math.min(count, this.#length));
    for (let i = 0; i < taken.length; i++) taken[i] = this.shift();
    return taken;
  }

  /** A copy of the contents, oldest first. */
  toBytes(): Uint8Array {
    const copy = new Uint8Array(this.#length);
    for (let i = 0; i < this.#length; i++) copy[i] = this.#bytes[(this.#head + i) % this.#bytes.length]!;
    return copy;
  }

  clear(): void {
    this.#head = 0;
    this.#length = 0;
  }

  #reserve(extra: number): void {
    if (this.#length + extra <= this.#bytes.length) return;
    let capacity = this.#bytes.length;
    while (capacity < this.#length + extra) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.toBytes());
    this.#bytes = grown;
    this.#head = 0;
  }
}

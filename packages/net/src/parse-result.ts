/**
 * What parsing a frame or packet gives: the value, or why it was refused. Parsers never throw on
 * their input; a malformed frame is reported and dropped by whoever asked.
 */

/** Why a frame or packet was refused. */
export type MalformedReason =
  /** Shorter than its header or than a length field says. */
  | 'truncated'
  /** A header field has a value that cannot be right (IP version, header length, UDP length). */
  | 'bad-header'
  /** A checksum does not match. */
  | 'bad-checksum'
  /** An IPv4 fragment: no reassembly here. */
  | 'fragment'
  /** Well-formed but of a kind not handled (ARP for another hardware or protocol type). */
  | 'unsupported';

/** A parse outcome. */
export type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: MalformedReason; detail: string };

export function parsed<T>(value: T): ParseResult<T> {
  return { ok: true, value };
}

export function malformed<T>(reason: MalformedReason, detail: string): ParseResult<T> {
  return { ok: false, reason, detail };
}

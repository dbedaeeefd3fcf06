// Types of the CRC-32C module of the `crc-32` package (its own types cover only CRC-32).
declare module 'crc-32/crc32c.js' {
  export function buf(data: Uint8Array, seed?: number): number;
  const CRC32C: { buf(data: Uint8Array, seed?: number): number };
  export default CRC32C;
}

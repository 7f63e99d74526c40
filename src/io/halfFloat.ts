// 16-bit float decoding (IEEE 754 binary16 "F16" and bfloat16 "BF16") into float32, for reading
// half-precision checkpoints. Decoding only: every F16 and BF16 value is exactly representable in
// float32, so nothing here rounds. Encoding (float32 -> half) is not needed yet and is not here.

/** The float value of one binary16 bit pattern (exact; NaN payloads are not kept). */
export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero and subnormals
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1024 + frac) * 2 ** (exp - 25);
}

let f16Table: Float32Array | null = null;

/** All 65536 binary16 values, built on first use (256 KiB) so large F16 checkpoints decode by lookup. */
function table(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToNumber(h);
  }
  return f16Table;
}

/** out[i] = binary16 value of bits[i]. */
export function decodeF16(bits: Uint16Array, out: Float32Array): void {
  const t = table();
  for (let i = 0; i < bits.length; i++) out[i] = t[bits[i]];
}

/** out[i] = bfloat16 value of bits[i]: bfloat16 is the top half of a float32, so a shift is exact. */
export function decodeBF16(bits: Uint16Array, out: Float32Array): void {
  const u = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) u[i] = bits[i] << 16;
}

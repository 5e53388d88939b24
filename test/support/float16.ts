/** IEEE half-precision bytes (little-endian) of values it represents exactly (ViT pixels k/128 − 1), for fixtures written in tests. */
export function float16Bytes(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => {
    let bits = 0;
    if (v !== 0) {
      const sign = v < 0 ? 0x8000 : 0;
      const a = Math.abs(v);
      const e = Math.floor(Math.log2(a));
      if (e < -14 || e > 15) throw new Error(`${v} is not a normal float16`);
      const mantissa = (a / 2 ** e - 1) * 1024;
      if (!Number.isInteger(mantissa)) throw new Error(`${v} is not exact in float16`);
      bits = sign | ((e + 15) << 10) | mantissa;
    }
    view.setUint16(i * 2, bits, true);
  });
  return out;
}

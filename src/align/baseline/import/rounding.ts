/**
 * How far a printed reference value can be from the number it was printed from. Comparisons add
 * it to the curve tolerance, so a reference printed with `%.3f` is not held to 1e-5.
 */

export interface Rounding {
  /** Half a unit in the last printed place of a fixed-point value. */
  atol: number;
  /** Half a unit in the last printed mantissa place of an E-notation value, relative to |value|. */
  rtol: number;
}

export const EXACT: Rounding = { atol: 0, rtol: 0 };

const NUMBER = /^[+-]?(\d*)(?:\.(\d*))?(?:[eE][+-]?\d+)?$/;

/** A value printed with this many significant digits or more is taken as a full repr, not a rounded one. */
const FULL_PRECISION_DIGITS = 10;

/**
 * The rounding of a column of printed numbers. Megatron's `%.6E` has mantissa ≥ 1, so half a unit
 * in the 6th mantissa decimal is at most 5e-7·|value|: rtol 5e-7. `%.3f` gives atol 5e-4. The
 * largest number of decimals seen wins, because printers drop trailing zeros (json writes 6.2 for
 * a value rounded to 5 decimals). A column holding any full-precision repr is exact.
 */
export function printedRounding(tokens: readonly string[]): Rounding {
  let fixedDecimals = -1;
  let mantissaDecimals = -1;
  for (const token of tokens) {
    const t = token.trim();
    const m = NUMBER.exec(t);
    if (!m) continue;
    const decimals = (m[2] ?? '').length;
    const digits = `${m[1]}${m[2] ?? ''}`.replace(/^0+/, '').length;
    if (digits >= FULL_PRECISION_DIGITS) return EXACT;
    if (/[eE]/.test(t)) mantissaDecimals = Math.max(mantissaDecimals, decimals);
    else fixedDecimals = Math.max(fixedDecimals, decimals);
  }
  return {
    atol: fixedDecimals >= 0 ? halfUnit(fixedDecimals) : 0,
    rtol: mantissaDecimals >= 0 ? halfUnit(mantissaDecimals) : 0,
  };
}

/** 0.5·10^−d as the double nearest the decimal (5 / 10^(d+1) is one correctly rounded division; 0.5 * 10 ** -d is not). */
function halfUnit(decimals: number): number {
  return 5 / 10 ** (decimals + 1);
}

/**
 * chrony's 32-bit network float (candm.h `Float`, util.c): a 7-bit signed exponent and a 25-bit
 * signed coefficient without hidden bit; value = coef * 2^(exp - 25). Encoding follows chronyd's
 * rounding exactly (truncated log2, +0.5 rounding, at most two corrective shifts, clamping) so
 * that chronyc prints the same digits it would print for chronyd.
 */

const EXP_BITS = 7;
const EXP_MIN = -(1 << (EXP_BITS - 1)); // -64
const EXP_MAX = -EXP_MIN - 1; // 63
const COEF_BITS = 32 - EXP_BITS; // 25
const COEF_MIN = -(1 << (COEF_BITS - 1));
const COEF_MAX = -COEF_MIN - 1;

/** Decodes the big-endian 32-bit word `x` (as an unsigned number). */
export function decodeFloat(x: number): number {
  x >>>= 0;
  let exp = x >>> COEF_BITS;
  if (exp >= 1 << (EXP_BITS - 1)) exp -= 1 << EXP_BITS;
  exp -= COEF_BITS;
  let coef = x % 2 ** COEF_BITS;
  if (coef >= 1 << (COEF_BITS - 1)) coef -= 2 ** COEF_BITS;
  return coef * 2 ** exp;
}

/** Encodes a double; NaN becomes 0, magnitudes beyond the range saturate as chronyd's do. */
export function encodeFloat(x: number): number {
  let neg = 0;
  if (x < 0) {
    x = -x;
    neg = 1;
  } else if (!(x >= 0)) {
    x = 0; // NaN
  }
  let exp: number;
  let coef: number;
  if (x < 1e-100) {
    exp = coef = 0;
  } else if (x > 1e100) {
    exp = EXP_MAX;
    coef = COEF_MAX + neg;
  } else {
    exp = Math.trunc(Math.log(x) / Math.log(2) + 1); // C: int conversion truncates
    coef = Math.trunc(x * 2 ** (-exp + COEF_BITS) + 0.5);
    while (coef > COEF_MAX + neg) {
      coef = Math.floor(coef / 2);
      exp++;
    }
    if (exp > EXP_MAX) {
      exp = EXP_MAX;
      coef = COEF_MAX + neg;
    } else if (exp < EXP_MIN) {
      if (exp + COEF_BITS >= EXP_MIN) {
        coef = Math.floor(coef / 2 ** (EXP_MIN - exp));
        exp = EXP_MIN;
      } else {
        exp = coef = 0;
      }
    }
  }
  // Two's complement of the coefficient within its 25 bits.
  if (neg) coef = (2 ** COEF_BITS - coef) % 2 ** COEF_BITS;
  return ((((exp & 0x7f) << COEF_BITS) >>> 0) | coef) >>> 0;
}

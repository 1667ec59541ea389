/**
 * Numbers as Prometheus (Go) prints them, so the sandbox's answers and alert texts read the same as the real thing.
 */

/** A sample value as the Prometheus HTTP API writes it (Go's `FormatFloat(v, 'f', -1, 64)`): "0.0001", "1e21" in full, "NaN", "+Inf". */
export function formatSampleValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  if (Object.is(v, -0)) return '-0';
  const { digits, dp } = decimalDigits(Math.abs(v));
  return (v < 0 ? '-' : '') + fixed(digits, dp, Math.max(digits.length - dp, 0));
}

/**
 * Go's fmt verbs for a float64: `v` (= shortest `g`), `g`, `e`, `f`, with an optional precision, as alert templates
 * use them (`{{ $value }}`, `{{ printf "%.2f" $value }}`, humanize's `%.4g`). Precision -1 with `e` is the shortest
 * form (`strconv.FormatFloat(v, 'e', -1, 64)`, how /api/v1/alerts writes values).
 */
export function formatGoFloat(v: number, verb: 'v' | 'g' | 'e' | 'f', precision?: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  const sign = v < 0 || Object.is(v, -0) ? '-' : '';
  const abs = Math.abs(v);
  switch (verb) {
    case 'f': {
      const p = precision ?? 6;
      // toFixed switches to exponent form from 1e21; every double that large is an integer.
      const text = abs < 1e21 ? abs.toFixed(p) : `${BigInt(abs)}${p > 0 ? `.${'0'.repeat(p)}` : ''}`;
      return sign + text;
    }
    case 'e': {
      if (precision === -1) {
        const { digits, dp } = decimalDigits(abs);
        return sign + exponent(digits, dp, digits.length - 1);
      }
      const p = precision ?? 6;
      const { digits, dp } = decimalDigits(abs, p + 1);
      return sign + exponent(digits, dp, p);
    }
    case 'v':
    case 'g': {
      if (precision === undefined) {
        // Shortest digits; Go switches to exponent form from 1e6 (not 1e21 like JavaScript).
        const { digits, dp } = decimalDigits(abs);
        const exp = dp - 1;
        if (exp < -4 || exp >= 6) return sign + exponent(digits, dp, digits.length - 1);
        return sign + fixed(digits, dp, Math.max(digits.length - dp, 0));
      }
      let p = precision === 0 ? 1 : precision;
      const { digits, dp } = decimalDigits(abs, p);
      let eprec = p;
      if (eprec > digits.length && digits.length >= dp) eprec = digits.length;
      const exp = dp - 1;
      if (exp < -4 || exp >= eprec) return sign + exponent(digits, dp, Math.min(p, digits.length) - 1);
      if (p > dp) p = digits.length;
      return sign + fixed(digits, dp, Math.max(p - dp, 0));
    }
  }
}

/**
 * The decimal digits of a finite non-negative number (no trailing zeros) and where the point goes: value =
 * 0.DIGITS × 10^dp. Shortest round-trip digits, or rounded to `significant` digits.
 */
function decimalDigits(abs: number, significant?: number): { digits: string; dp: number } {
  if (abs === 0) return { digits: '0', dp: 1 };
  const text =
    significant === undefined ? abs.toExponential() : abs.toExponential(Math.max(significant - 1, 0));
  const [mantissa = '0', exp = '0'] = text.split('e');
  const digits = mantissa.replace('.', '').replace(/0+$/, '') || '0';
  return { digits, dp: Number(exp) + 1 };
}

function fixed(digits: string, dp: number, decimals: number): string {
  let int = '';
  if (dp <= 0) int = '0';
  else for (let i = 0; i < dp; i++) int += digits[i] ?? '0';
  let frac = '';
  for (let i = 0; i < decimals; i++) {
    const k = dp + i;
    frac += k < 0 ? '0' : (digits[k] ?? '0');
  }
  return frac ? `${int}.${frac}` : int;
}

function exponent(digits: string, dp: number, decimals: number): string {
  let mantissa = digits[0] ?? '0';
  if (decimals > 0) mantissa += `.${digits.slice(1, decimals + 1).padEnd(decimals, '0')}`;
  const exp = digits === '0' ? 0 : dp - 1;
  return `${mantissa}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
}

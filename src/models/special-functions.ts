// Special functions for the statistics: log-gamma, the regularised incomplete gamma functions and
// the (central and non-central) chi-square distribution. Written from the textbook definitions:
//   P(a, x) = gamma(a, x) / Gamma(a)   (lower),   Q(a, x) = 1 - P(a, x)   (upper)
// P by its power series  x^a e^-x / Gamma(a+1) * sum_n x^n / ((a+1)...(a+n))  when x < a + 1,
// Q by its continued fraction (evaluated with the modified Lentz method) otherwise, so that each is
// computed where it converges fast and without cancellation. Chi-square with k degrees of freedom:
//   CDF(x) = P(k/2, x/2),  SF(x) = Q(k/2, x/2).

const LANCZOS_G = 7;
// Lanczos coefficients for g = 7, n = 9 (good to ~1e-15 in double precision).
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
  -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
  1.5056327351493116e-7,
];

/** ln Gamma(x) for x > 0. */
export function logGamma(x: number): number {
  if (!(x > 0)) throw new RangeError(`logGamma needs x > 0, got ${x}`);
  if (x < 0.5) {
    // reflection: Gamma(x) Gamma(1-x) = pi / sin(pi x)
    return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  }
  const z = x - 1;
  let s = LANCZOS[0];
  for (let i = 1; i < LANCZOS.length; i++) s += LANCZOS[i] / (z + i);
  const t = z + LANCZOS_G + 0.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(s);
}

const EPS = 1e-16;
const TINY = 1e-300;
const MAX_ITER = 100000;

function lowerSeries(a: number, x: number): number {
  let sum = 1 / a;
  let term = sum;
  let ap = a;
  for (let n = 0; n < MAX_ITER; n++) {
    ap += 1;
    term *= x / ap;
    sum += term;
    if (Math.abs(term) < Math.abs(sum) * EPS) break;
  }
  return sum * Math.exp(-x + a * Math.log(x) - logGamma(a));
}

function upperContinuedFraction(a: number, x: number): number {
  // Q(a,x) = e^-x x^a / Gamma(a) * 1/(x+1-a- 1(1-a)/(x+3-a- 2(2-a)/(x+5-a- ...)))
  let b = x + 1 - a;
  let c = 1 / TINY;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < MAX_ITER; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < TINY) d = TINY;
    c = b + an / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPS) break;
  }
  return Math.exp(-x + a * Math.log(x) - logGamma(a)) * h;
}

/** Regularised lower incomplete gamma P(a, x). */
export function gammaP(a: number, x: number): number {
  if (!(a > 0)) throw new RangeError(`gammaP needs a > 0, got ${a}`);
  if (x <= 0) return 0;
  if (x === Infinity) return 1;
  return x < a + 1 ? lowerSeries(a, x) : 1 - upperContinuedFraction(a, x);
}

/** Regularised upper incomplete gamma Q(a, x) = 1 - P(a, x), accurate in the far tail. */
export function gammaQ(a: number, x: number): number {
  if (!(a > 0)) throw new RangeError(`gammaQ needs a > 0, got ${a}`);
  if (x <= 0) return 1;
  if (x === Infinity) return 0;
  return x < a + 1 ? 1 - lowerSeries(a, x) : upperContinuedFraction(a, x);
}

export function chiSquareCdf(x: number, df: number): number {
  return gammaP(df / 2, x / 2);
}

/** Survival function (p-value of a statistic x). */
export function chiSquareSf(x: number, df: number): number {
  return gammaQ(df / 2, x / 2);
}

/** x with SF(x) = alpha (the critical value of a test at level alpha), by bracketing and bisection. */
export function chiSquareUpperQuantile(alpha: number, df: number): number {
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`);
  let lo = 0;
  let hi = Math.max(1, df);
  while (chiSquareSf(hi, df) > alpha) {
    lo = hi;
    hi *= 2;
  }
  for (let i = 0; i < 200 && hi - lo > 1e-12 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (chiSquareSf(mid, df) > alpha) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** x with CDF(x) = p. */
export function chiSquareQuantile(p: number, df: number): number {
  return chiSquareUpperQuantile(1 - p, df);
}

/**
 * Survival function of the non-central chi-square with df degrees of freedom and non-centrality
 * lambda: a Poisson(lambda/2) mixture of central chi-squares with df + 2j degrees of freedom,
 * summed outwards from the Poisson mode until the remaining weight is negligible.
 */
export function nonCentralChiSquareSf(x: number, df: number, lambda: number): number {
  if (lambda === 0) return chiSquareSf(x, df);
  const m = lambda / 2;
  const mode = Math.floor(m);
  const logW = (j: number) => -m + j * Math.log(m) - logGamma(j + 1);
  let sum = 0;
  let weight = 0;
  for (let j = mode; j >= 0; j--) {
    const w = Math.exp(logW(j));
    sum += w * chiSquareSf(x, df + 2 * j);
    weight += w;
    if (w < 1e-17 && j < mode - 10) break;
  }
  for (let j = mode + 1; ; j++) {
    const w = Math.exp(logW(j));
    sum += w * chiSquareSf(x, df + 2 * j);
    weight += w;
    if ((w < 1e-17 && j > mode + 10) || j > mode + 100000) break;
  }
  void weight;
  return Math.min(1, sum);
}

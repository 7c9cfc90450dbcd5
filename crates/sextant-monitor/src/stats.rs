//! The distributions drift tests need: the standard normal, Kolmogorov's
//! (two-sample KS p-values), chi-square (regularized incomplete gamma), and
//! Benjamini–Hochberg adjusted p-values.

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; ~1e-15 relative).
pub fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection.
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularized upper incomplete gamma Q(a, x) = Γ(a, x)/Γ(a).
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if a.is_nan() || x.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 1.0;
    }
    if x == f64::INFINITY {
        return 0.0;
    }
    if a <= 0.0 {
        return 0.0;
    }
    let ln_pre = a * x.ln() - x - ln_gamma(a);
    // Near x = a both expansions need O(√a) terms; a million degrees of freedom is fine.
    let max_iter = 1_000 + (50.0 * a.sqrt()) as usize;
    if x < a + 1.0 {
        // Series for P.
        let mut sum = 1.0 / a;
        let mut term = sum;
        let mut ap = a;
        for _ in 0..max_iter {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        (1.0 - sum * ln_pre.exp()).clamp(0.0, 1.0)
    } else {
        // Continued fraction for Q (modified Lentz).
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..max_iter {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (ln_pre.exp() * h).clamp(0.0, 1.0)
    }
}

/// P(χ²_df > x).
pub fn chi2_sf(x: f64, df: f64) -> f64 {
    if x.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if x == f64::INFINITY {
        return 0.0;
    }
    gamma_q(df / 2.0, x / 2.0)
}

/// The complementary error function, erfc(x) = Q(1/2, x²) for x ≥ 0.
pub fn erfc(x: f64) -> f64 {
    if x >= 0.0 {
        gamma_q(0.5, x * x)
    } else {
        2.0 - gamma_q(0.5, x * x)
    }
}

/// The standard normal's survival function P(Z > z).
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The standard normal's CDF.
pub fn normal_cdf(z: f64) -> f64 {
    normal_sf(-z)
}

/// Kolmogorov's limiting survival function Q_KS(λ) = 2 Σ_{j≥1} (−1)^{j−1} e^{−2j²λ²}
/// (scipy's `special.kolmogorov`).
///
/// The alternating series converges slowly for small λ, so below 1 the complement is taken
/// from Jacobi's dual form K(λ) = (√(2π)/λ) Σ_{j≥1} e^{−(2j−1)²π²/(8λ²)}, which converges
/// fast there; both need only a handful of terms.
pub fn kolmogorov_sf(lambda: f64) -> f64 {
    if lambda.is_nan() {
        return f64::NAN;
    }
    if lambda <= 0.0 {
        return 1.0;
    }
    if lambda < 1.0 {
        let k = std::f64::consts::PI * std::f64::consts::PI / (8.0 * lambda * lambda);
        let mut cdf = 0.0;
        for j in 1..=20 {
            let odd = (2 * j - 1) as f64;
            let term = (-odd * odd * k).exp();
            cdf += term;
            if term < 1e-18 * cdf.max(1e-300) {
                break;
            }
        }
        let cdf = (2.0 * std::f64::consts::PI).sqrt() / lambda * cdf;
        return (1.0 - cdf).clamp(0.0, 1.0);
    }
    let mut sum = 0.0;
    for j in 1..=100u32 {
        let jf = f64::from(j);
        let term = (-2.0 * jf * jf * lambda * lambda).exp();
        sum += if j % 2 == 1 { term } else { -term };
        if term <= 1e-18 * sum {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// The asymptotic two-sample KS p-value of statistic `d` for samples of
/// sizes `n` and `m` (Stephens' correction: λ = (√nₑ + 0.12 + 0.11/√nₑ)·d,
/// nₑ = nm/(n+m)).
pub fn ks_p_value(d: f64, n: u64, m: u64) -> f64 {
    if n == 0 || m == 0 {
        return 1.0;
    }
    let ne = (n as f64 * m as f64) / (n as f64 + m as f64);
    let s = ne.sqrt();
    kolmogorov_sf((s + 0.12 + 0.11 / s) * d)
}

/// Benjamini–Hochberg adjusted p-values (same order as the input; NaN stays NaN).
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..p.len()).filter(|&i| !p[i].is_nan()).collect();
    let m = idx.len() as f64;
    idx.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    let mut out = vec![f64::NAN; p.len()];
    let mut running = 1.0f64;
    for (rank_from_top, &i) in idx.iter().enumerate() {
        let rank = m - rank_from_top as f64;
        running = running.min(p[i] * m / rank);
        out[i] = running.clamp(0.0, 1.0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol * b.abs().max(1e-300), "{a} vs {b}");
    }

    #[test]
    fn against_scipy() {
        // scipy.stats.chi2.sf(x, df)
        close(chi2_sf(3.84145882, 1.0), 0.05, 1e-6);
        close(chi2_sf(10.0, 4.0), 0.04042768199451279, 1e-9);
        close(chi2_sf(150.0, 100.0), 0.0009039320423540184, 1e-6);
        close(chi2_sf(1000.0, 10.0), 1.870290720915977e-208, 1e-6);
        close(chi2_sf(0.5, 30.0), 1.0, 1e-12);
        // scipy.stats.norm.sf
        close(normal_sf(1.959963984540054), 0.025, 1e-9);
        close(normal_sf(6.0), 9.865876450376946e-10, 1e-7);
        // scipy.special.kolmogorov
        close(kolmogorov_sf(1.0), 0.26999967167735456, 1e-9);
        close(kolmogorov_sf(0.5), 0.9639452436648751, 1e-9);
        close(kolmogorov_sf(2.0), 0.0006709252557796953, 1e-9);
        // scipy.stats.false_discovery_control([0.01, 0.04, 0.03, 0.2, 0.5])
        let bh = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.2, 0.5]);
        for (a, b) in bh
            .iter()
            .zip([0.05, 0.06666666666666667, 0.06666666666666667, 0.25, 0.5])
        {
            close(*a, b, 1e-12);
        }
    }
}

//! The little linear algebra the lexicon's training needs: the leading right singular vectors of
//! a sparse matrix by subspace iteration, with a Jacobi eigen-solver for the small projected
//! problem. Deterministic: the random start comes from a seeded generator.

/// A sparse matrix by rows: `(column, value)` pairs.
#[derive(Debug, Clone, Default)]
pub struct SparseRows {
    pub rows: Vec<Vec<(usize, f64)>>,
    pub columns: usize,
}

/// `k` leading singular values (descending) and their right singular vectors, each of length
/// `m.columns`. `oversample` extra directions and `iterations` rounds of `MᵀM` power iteration
/// make the leading ones accurate.
pub fn top_right_singular(
    m: &SparseRows,
    k: usize,
    oversample: usize,
    iterations: usize,
    seed: u64,
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = m.columns;
    let l = (k + oversample).min(n).min(m.rows.len()).max(1);
    // Row-major n × l.
    let mut rng = SplitMix(seed);
    let mut q: Vec<f64> = (0..n * l).map(|_| rng.symmetric()).collect();
    orthonormalise(&mut q, n, l);
    for _ in 0..iterations {
        let z = times(m, &q, l);
        q = transpose_times(m, &z, l);
        orthonormalise(&mut q, n, l);
    }
    let z = times(m, &q, l);
    // G = Zᵀ Z (l × l), symmetric.
    let mut g = vec![0.0; l * l];
    for row in z.chunks_exact(l) {
        for a in 0..l {
            for b in a..l {
                g[a * l + b] += row[a] * row[b];
            }
        }
    }
    for a in 0..l {
        for b in 0..a {
            g[a * l + b] = g[b * l + a];
        }
    }
    let (values, vectors) = jacobi_eigen(g, l);
    let mut order: Vec<usize> = (0..l).collect();
    order.sort_by(|a, b| values[*b].total_cmp(&values[*a]));
    let mut singular = Vec::new();
    let mut right = Vec::new();
    for &e in order.iter().take(k) {
        singular.push(values[e].max(0.0).sqrt());
        // V = Q · u_e
        let v: Vec<f64> = q
            .chunks_exact(l)
            .map(|qi| (0..l).map(|j| qi[j] * vectors[j * l + e]).sum())
            .collect();
        right.push(v);
    }
    (singular, right)
}

/// `M · Q` for a row-major `Q` of width `l`.
fn times(m: &SparseRows, q: &[f64], l: usize) -> Vec<f64> {
    let mut out = vec![0.0; m.rows.len() * l];
    for (r, row) in m.rows.iter().enumerate() {
        let o = &mut out[r * l..(r + 1) * l];
        for &(c, v) in row {
            for (oj, qj) in o.iter_mut().zip(&q[c * l..(c + 1) * l]) {
                *oj += v * qj;
            }
        }
    }
    out
}

/// `Mᵀ · Z` for a row-major `Z` of width `l`.
fn transpose_times(m: &SparseRows, z: &[f64], l: usize) -> Vec<f64> {
    let mut out = vec![0.0; m.columns * l];
    for (r, row) in m.rows.iter().enumerate() {
        let zr = &z[r * l..(r + 1) * l];
        for &(c, v) in row {
            for (oj, zj) in out[c * l..(c + 1) * l].iter_mut().zip(zr) {
                *oj += v * zj;
            }
        }
    }
    out
}

/// Modified Gram–Schmidt on the columns of a row-major `n × l` matrix (a column with nothing
/// left is set to zero).
fn orthonormalise(q: &mut [f64], n: usize, l: usize) {
    for j in 0..l {
        for p in 0..j {
            let dot: f64 = (0..n).map(|i| q[i * l + j] * q[i * l + p]).sum();
            for i in 0..n {
                q[i * l + j] -= dot * q[i * l + p];
            }
        }
        let norm = (0..n).map(|i| q[i * l + j].powi(2)).sum::<f64>().sqrt();
        let scale = if norm > 1e-12 { 1.0 / norm } else { 0.0 };
        for i in 0..n {
            q[i * l + j] *= scale;
        }
    }
}

/// Eigenvalues and eigenvectors (columns of the row-major result) of a symmetric `n × n` matrix,
/// by cyclic Jacobi rotations.
pub fn jacobi_eigen(mut a: Vec<f64>, n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let total: f64 = a.iter().map(|x| x * x).sum();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |j| *j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum();
        if off <= 1e-22 * total.max(1e-300) {
            break;
        }
        for p in 0..n {
            for r in p + 1..n {
                let apr = a[p * n + r];
                if apr.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[r * n + r] - a[p * n + p]) / (2.0 * apr);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let akp = a[k * n + p];
                    let akr = a[k * n + r];
                    a[k * n + p] = c * akp - s * akr;
                    a[k * n + r] = s * akp + c * akr;
                }
                for k in 0..n {
                    let apk = a[p * n + k];
                    let ark = a[r * n + k];
                    a[p * n + k] = c * apk - s * ark;
                    a[r * n + k] = s * apk + c * ark;
                }
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkr = v[k * n + r];
                    v[k * n + p] = c * vkp - s * vkr;
                    v[k * n + r] = s * vkp + c * vkr;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

/// SplitMix64: a small, fixed pseudo-random sequence (training must be reproducible).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn symmetric(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_recovers_known_eigenvalues() {
        // [[2,1],[1,2]] has eigenvalues 1 and 3.
        let (values, vectors) = jacobi_eigen(vec![2.0, 1.0, 1.0, 2.0], 2);
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        assert!((sorted[0] - 1.0).abs() < 1e-9 && (sorted[1] - 3.0).abs() < 1e-9);
        // Each column is an eigenvector.
        for e in 0..2 {
            let (x, y) = (vectors[e], vectors[2 + e]);
            assert!((2.0 * x + y - values[e] * x).abs() < 1e-9);
        }
    }

    #[test]
    fn singular_vectors_of_a_block_matrix() {
        // Two independent blocks: columns {0,1} with strength 3, columns {2,3} with strength 1.
        let m = SparseRows {
            rows: vec![
                vec![(0, 3.0), (1, 3.0)],
                vec![(0, 3.0), (1, 3.0)],
                vec![(2, 1.0), (3, 1.0)],
            ],
            columns: 4,
        };
        let (s, v) = top_right_singular(&m, 2, 1, 5, 7);
        assert!((s[0] - 6.0).abs() < 1e-6, "{s:?}");
        assert!((s[1] - 2.0f64.sqrt()).abs() < 1e-6, "{s:?}");
        assert!((v[0][0].abs() - 0.5f64.sqrt()).abs() < 1e-6 && v[0][2].abs() < 1e-6);
        assert!(v[1][0].abs() < 1e-6 && (v[1][3].abs() - 0.5f64.sqrt()).abs() < 1e-6);
    }
}

//! Poisson sampling by bytes, as jemalloc, tcmalloc and heapprofd do.
//!
//! Sample points fall on the stream of allocated bytes as a Poisson process of mean spacing
//! `mean`: the gap to the next one is exponential (`-ln(u)·mean`), counted down per thread by
//! the C hot path. An allocation of `size` bytes holds at least one sample point with
//! probability `p = 1 − e^(−size/mean)`, so weighing each sampled allocation by `size / p`
//! (and `1 / p` objects) makes the sums unbiased estimates of the bytes and objects allocated.
//! The standard error of a sum of `n` samples of small allocations is about `mean·√n`.

/// xorshift64*: a few cycles, no allocation, state per thread.
pub fn next_random(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// A seed that differs per thread and per process (0 is reserved for "not seeded yet").
pub fn seed(mixed: u64) -> u64 {
    let mut s = mixed ^ 0x9E37_79B9_7F4A_7C15;
    next_random(&mut s);
    s | 1
}

/// Bytes until the next sample: exponential with the given mean, at least 1.
pub fn next_interval(state: &mut u64, mean: u64) -> i64 {
    if mean <= 1 {
        return 1;
    }
    // 53 random bits → u in (0, 1].
    let u = ((next_random(state) >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let gap = -u.ln() * mean as f64;
    (gap as i64).clamp(1, i64::MAX / 2)
}

/// The unbiased weight of a sampled allocation: (estimated bytes, estimated objects × 1000).
pub fn weight(size: u64, mean: u64) -> (u64, u64) {
    let size = size.max(1);
    if mean <= 1 {
        return (size, 1000);
    }
    let p = -(-(size as f64) / mean as f64).exp_m1();
    (
        (size as f64 / p).round() as u64,
        (1000.0 / p).round() as u64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drive the same countdown the C hook keeps over a stream of allocations and compare the
    /// estimate with the truth, for several size mixes and means.
    fn estimate(
        sizes: impl Iterator<Item = u64>,
        mean: u64,
        seed_value: u64,
    ) -> (f64, f64, f64, u64) {
        let mut rng = seed(seed_value);
        let mut countdown = next_interval(&mut rng, mean);
        let (mut true_bytes, mut est_bytes, mut est_objects, mut samples) =
            (0u64, 0u64, 0u64, 0u64);
        let mut objects = 0u64;
        for size in sizes {
            true_bytes += size;
            objects += 1;
            countdown -= size as i64;
            if countdown <= 0 {
                let (w, c) = weight(size, mean);
                est_bytes += w;
                est_objects += c;
                samples += 1;
                countdown = next_interval(&mut rng, mean);
            }
        }
        (
            est_bytes as f64 / true_bytes as f64,
            est_objects as f64 / 1000.0 / objects as f64,
            true_bytes as f64,
            samples,
        )
    }

    #[test]
    fn estimates_are_unbiased_within_their_error() {
        type SizeOf = fn(u64) -> u64;
        let mixes: [(&str, SizeOf); 4] = [
            ("4 KiB blocks", |_| 4096),
            ("small and varied", |i| 16 + (i * 7919) % 500),
            ("mixed with large", |i| {
                if i % 100 == 0 { 3 << 20 } else { 64 + i % 200 }
            }),
            ("all huge", |i| (1 << 20) + i % 4096),
        ];
        for (name, size_of) in mixes {
            for mean in [512 * 1024, 64 * 1024, 4096] {
                let n = 400_000;
                let (bytes_ratio, objects_ratio, total, samples) =
                    estimate((0..n).map(size_of), mean, 42 + mean);
                // For small allocations the relative error of n samples is ≈ 1/√n; allow 5σ.
                let bound = 5.0 / (samples as f64).sqrt();
                assert!(
                    (bytes_ratio - 1.0).abs() < bound,
                    "{name}, mean {mean}: bytes estimate off by {:.3} (bound {bound:.3}, {samples} samples of {total} bytes)",
                    bytes_ratio - 1.0
                );
                assert!(
                    (objects_ratio - 1.0).abs() < bound.max(0.01),
                    "{name}, mean {mean}: objects estimate off by {:.3}",
                    objects_ratio - 1.0
                );
            }
        }
    }

    #[test]
    fn every_allocation_mode_is_exact() {
        let (bytes, objects, _, samples) = estimate((0..1000).map(|i| 1 + i % 300), 1, 7);
        assert_eq!((bytes, objects, samples), (1.0, 1.0, 1000));
    }

    #[test]
    fn large_allocations_weigh_their_size() {
        let (w, c) = weight(64 << 20, 512 * 1024);
        assert_eq!((w, c), (64 << 20, 1000));
        let (w, _) = weight(16, 512 * 1024);
        assert!((w as i64 - 512 * 1024 - 8).abs() <= 1, "{w}");
    }

    #[test]
    fn intervals_have_the_mean() {
        let mut rng = seed(3);
        let n = 200_000;
        let sum: i64 = (0..n).map(|_| next_interval(&mut rng, 65536)).sum();
        let mean = sum as f64 / n as f64;
        assert!((mean / 65536.0 - 1.0).abs() < 0.02, "{mean}");
    }
}

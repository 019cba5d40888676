use super::*;
use crate::memory::{Breakdown, V8Stats};

const MB: f64 = 1e6;

/// SplitMix64: deterministic noise without a dependency.
struct Rng(u64);

impl Rng {
    /// Uniform in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [-a, a).
    fn noise(&mut self, a: f64) -> f64 {
        (self.next() * 2.0 - 1.0) * a
    }
}

fn line(n: usize, dt: f64, y0: f64, per_s: f64, noise: f64, seed: u64) -> Vec<(f64, f64)> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let t = i as f64 * dt;
            (t, y0 + per_s * t + rng.noise(noise))
        })
        .collect()
}

#[test]
fn linear_growth_with_noise() {
    // 1 MB/s for 60 s with ±2 MB of noise: 3.6 GB/h. (One seed in ten puts the truth
    // outside a 90 % interval: `interval_coverage` checks the rate.)
    let t = trend(&line(300, 0.2, 50.0 * MB, MB, 2.0 * MB, 2)).unwrap();
    let truth = 3600.0 * MB;
    assert!((t.slope_per_hour - truth).abs() < 0.03 * truth, "{t:?}");
    assert!(t.low_per_hour <= truth && truth <= t.high_per_hour, "{t:?}");
    assert!(
        t.low_per_hour > 0.0 && t.high_per_hour < 1.1 * truth,
        "{t:?}"
    );
    assert!(t.confidence > 0.999, "{t:?}");
    assert_eq!(t.samples, 300);
    assert!((t.span_seconds - 59.8).abs() < 1e-9);
    assert!((t.first - 50.0 * MB).abs() < MB, "{t:?}");
    assert!((t.last - 109.8 * MB).abs() < MB, "{t:?}");
    assert!(t.is_growing());
}

#[test]
fn falling_series() {
    let t = trend(&line(100, 1.0, 500.0 * MB, -MB, MB, 2)).unwrap();
    assert!(t.high_per_hour < 0.0 && t.confidence > 0.999, "{t:?}");
    assert!(!t.is_growing());
}

#[test]
fn flat_with_noise() {
    let t = trend(&line(200, 0.5, 80.0 * MB, 0.0, 2.0 * MB, 3)).unwrap();
    assert!(t.low_per_hour < 0.0 && 0.0 < t.high_per_hour, "{t:?}");
    assert!(t.confidence < 0.9, "{t:?}");
    assert!(!t.is_growing());
}

/// Over many flat noisy series, the 90 % interval holds the true slope (zero) about 90 %
/// of the time, and the confidence passes 0.9 about 10 % of the time.
#[test]
fn interval_coverage() {
    let runs = 400;
    let mut covered = 0;
    let mut confident = 0;
    for seed in 0..runs {
        let t = trend(&line(40, 1.0, 0.0, 0.0, 1.0, 100 + seed)).unwrap();
        covered += usize::from(t.low_per_hour <= 0.0 && 0.0 <= t.high_per_hour);
        confident += usize::from(t.confidence >= 0.9);
    }
    let covered = covered as f64 / runs as f64;
    let confident = confident as f64 / runs as f64;
    assert!((0.85..=0.95).contains(&covered), "{covered}");
    assert!((0.05..=0.15).contains(&confident), "{confident}");
}

#[test]
fn outliers_are_ignored() {
    // 2 MB/s exactly, with every 7th point wild (a GC spike or a bad read).
    let mut points = line(140, 0.1, 40.0 * MB, 2.0 * MB, 0.0, 4);
    for (i, p) in points.iter_mut().enumerate().filter(|(i, _)| i % 7 == 3) {
        p.1 += if i % 2 == 0 { 900.0 } else { -30.0 } * MB;
    }
    let t = trend(&points).unwrap();
    let truth = 7200.0 * MB;
    assert!((t.slope_per_hour - truth).abs() < 0.01 * truth, "{t:?}");
    assert!(t.low_per_hour <= truth && truth <= t.high_per_hour, "{t:?}");
    assert!((t.first - 40.0 * MB).abs() < 0.1 * MB, "{t:?}");
}

#[test]
fn constant_series_and_ties() {
    let points: Vec<(f64, f64)> = (0..20).map(|i| (i as f64, 42.0 * MB)).collect();
    let t = trend(&points).unwrap();
    assert_eq!(
        (t.slope_per_hour, t.low_per_hour, t.high_per_hour),
        (0.0, 0.0, 0.0)
    );
    assert_eq!(t.confidence, 0.0);
    assert_eq!((t.first, t.last), (42.0 * MB, 42.0 * MB));
    // Two points per instant: the pairs within an instant give no slope.
    let doubled: Vec<(f64, f64)> = (0..20)
        .flat_map(|i| [(i as f64, i as f64), (i as f64, i as f64 + 0.5)])
        .collect();
    let t = trend(&doubled).unwrap();
    assert!((t.slope_per_hour - 3600.0).abs() < 1e-6, "{t:?}");
}

#[test]
fn too_few_points_or_no_span() {
    assert_eq!(trend(&[]), None);
    assert_eq!(trend(&line(MIN_POINTS - 1, 1.0, 0.0, 1.0, 0.0, 5)), None);
    assert!(trend(&line(MIN_POINTS, 1.0, 0.0, 1.0, 0.0, 5)).is_some());
    assert_eq!(trend(&[(3.0, 1.0); 10]), None);
    let mut with_nan = line(MIN_POINTS - 1, 1.0, 0.0, 1.0, 0.0, 5);
    with_nan.push((f64::NAN, 1.0));
    assert_eq!(trend(&with_nan), None);
}

#[test]
fn long_series_are_thinned_deterministically() {
    let points = line(5000, 1.0, 100.0 * MB, 10_000.0, 0.5 * MB, 6);
    let a = trend(&points).unwrap();
    let b = trend(&points).unwrap();
    assert_eq!(a, b);
    assert!(
        a.samples <= MAX_POINTS && a.samples >= MAX_POINTS / 2,
        "{a:?}"
    );
    assert_eq!(a.span_seconds, 4999.0);
    let truth = 36.0 * MB;
    assert!((a.slope_per_hour - truth).abs() < 0.02 * truth, "{a:?}");
    assert!(a.low_per_hour <= truth && truth <= a.high_per_hour, "{a:?}");
}

fn sample(t: f64, rss: f64) -> Sample {
    Sample {
        t,
        unix_ms: 1_700_000_000_000 + (t * 1000.0) as u64,
        pid: 1,
        rss: rss as u64,
        rss_anon: rss as u64,
        rss_file: 0,
        swap: 0,
        breakdown: None,
        v8: None,
        after_snapshot: false,
    }
}

/// Memory figures of one moment, in MB.
#[derive(Default, Clone, Copy)]
struct At {
    v8_heap: f64,
    malloc: f64,
    other: f64,
    code: f64,
    stacks: f64,
    heap_used: f64,
    external: f64,
}

/// Samples every `dt` s for `secs` s: `at(t, rng)` gives the figures, RSS is their sum;
/// a breakdown on every 2nd sample, V8's figures on every sample when `v8`.
fn watch(secs: f64, dt: f64, v8: bool, at: impl Fn(f64, &mut Rng) -> At) -> Vec<Sample> {
    let mut rng = Rng(7);
    let n = (secs / dt).round() as usize + 1;
    (0..n)
        .map(|i| {
            let t = i as f64 * dt;
            let a = at(t, &mut rng);
            let rss = a.v8_heap + a.malloc + a.other + a.code + a.stacks;
            let mut s = sample(t, rss * MB);
            if i % 2 == 0 {
                s.breakdown = Some(Breakdown {
                    v8_heap: (a.v8_heap * MB) as u64,
                    malloc_heap: (a.malloc * MB) as u64,
                    other_anon: (a.other * MB) as u64,
                    file_backed: (a.code * MB) as u64,
                    stacks: (a.stacks * MB) as u64,
                });
            }
            if v8 {
                s.v8 = Some(V8Stats {
                    heap_used: (a.heap_used * MB) as u64,
                    heap_total: (a.v8_heap * MB) as u64,
                    external: (a.external * MB) as u64,
                    array_buffers: (a.external * MB) as u64,
                });
            }
            s
        })
        .collect()
}

/// An idle process: figures wobble by a few hundred kB.
fn idle(_t: f64, rng: &mut Rng) -> At {
    At {
        v8_heap: 6.0 + rng.noise(0.3),
        malloc: 8.0 + rng.noise(0.5),
        other: 1.0 + rng.noise(0.1),
        code: 35.0,
        stacks: 1.0,
        heap_used: 4.5 + rng.noise(0.3),
        external: 1.2 + rng.noise(0.05),
    }
}

/// A process that keeps 10 MB/s of JS objects, with a GC sawtooth on `heap_used`.
fn js_grower(t: f64, rng: &mut Rng) -> At {
    At {
        v8_heap: 6.0 + 10.0 * t + rng.noise(1.0),
        heap_used: 4.5 + 10.0 * t + 3.0 * (t * 1.7).fract() + rng.noise(0.3),
        malloc: 8.0 + 0.2 * t + rng.noise(0.5),
        ..idle(t, rng)
    }
}

/// A process that keeps 10 MB/s of large Buffers (their own mmaps: other anonymous).
fn buffer_grower(t: f64, rng: &mut Rng) -> At {
    At {
        other: 1.0 + 10.0 * t + rng.noise(0.5),
        external: 1.2 + 10.0 * t + rng.noise(0.1),
        v8_heap: 6.0 + 0.1 * t + rng.noise(0.3),
        heap_used: 4.5 + 0.1 * t + rng.noise(0.3),
        ..idle(t, rng)
    }
}

fn verdict(samples: &[Sample]) -> (Verdict, String) {
    let d = diagnose(samples);
    (d.verdict, d.message)
}

#[test]
fn js_leak_in_seconds() {
    for v8 in [true, false] {
        let (v, msg) = verdict(&watch(4.0, 0.15, v8, js_grower));
        assert_eq!(v, Verdict::JsLeak, "{msg}");
        assert!(
            msg.starts_with("V8 heap +3") && msg.contains("leakhound hunt"),
            "{msg}"
        );
    }
}

#[test]
fn external_leak_in_seconds() {
    for v8 in [true, false] {
        let (v, msg) = verdict(&watch(4.0, 0.15, v8, buffer_grower));
        assert_eq!(v, Verdict::ExternalLeak, "{msg}");
        assert!(msg.contains("V8 heap flat"), "{msg}");
        assert!(
            msg.contains("retainers SNAPSHOT --class ArrayBuffer"),
            "{msg}"
        );
    }
    // Small Buffers land in malloc's heap: V8's `external` explains its growth.
    let small = |t: f64, rng: &mut Rng| At {
        malloc: 8.0 + 10.0 * t + rng.noise(0.5),
        other: 1.0 + rng.noise(0.1),
        ..buffer_grower(t, rng)
    };
    let (v, msg) = verdict(&watch(4.0, 0.15, true, small));
    assert_eq!(v, Verdict::ExternalLeak, "{msg}");
}

#[test]
fn native_leak_over_hours() {
    // The field report: the malloc heap grows 8 MB/h for 2 h, sampled every 10 s.
    let native = |t: f64, rng: &mut Rng| At {
        malloc: 15.0 + 8.0 * t / 3600.0 + rng.noise(1.0),
        ..idle(t, rng)
    };
    let samples = watch(7200.0, 10.0, true, native);
    let (v, msg) = verdict(&samples);
    assert_eq!(v, Verdict::NativeLeak, "{msg}");
    assert!(msg.starts_with("malloc heap +8."), "{msg}");
    assert!(
        msg.contains("V8 heap flat, V8 external flat → native leak: name the stacks"),
        "{msg}"
    );
    // Without V8's figures, small Buffers cannot be ruled out.
    let samples = watch(7200.0, 10.0, false, native);
    let (v, msg) = verdict(&samples);
    assert_eq!(v, Verdict::NativeLeak, "{msg}");
    assert!(msg.starts_with("malloc heap +8."), "{msg}");
    assert!(msg.contains("or small Buffers"), "{msg}");
    // The same leak over 10 minutes is under the threshold: not yet a leak.
    let (v, msg) = verdict(&watch(600.0, 10.0, true, native));
    assert_eq!(v, Verdict::NoLeak, "{msg}");
}

#[test]
fn idle_is_no_leak() {
    // The message says how slow a leak could be and hide: in 3 s, only a fast one shows.
    for (secs, dt, expected) in [
        (
            4.0,
            0.15,
            "over 3.1 s (a leak slower than +4.6 GB/h would not show yet)",
        ),
        (
            3600.0,
            2.0,
            "over 50.0 min (a leak slower than +4.8 MB/h would not show yet)",
        ),
    ] {
        let d = diagnose(&watch(secs, dt, true, idle));
        assert_eq!(d.verdict, Verdict::NoLeak, "{}", d.message);
        assert!(d.growing.is_empty());
        assert_eq!(
            d.message,
            format!("flat after warm-up → no leak {expected}")
        );
    }
    // Sure but small growth (a slow cache) is not a leak.
    let slow = |t: f64, rng: &mut Rng| At {
        heap_used: 4.5 + 0.5 * t,
        ..idle(t, rng)
    };
    let d = diagnose(&watch(4.0, 0.15, true, slow));
    assert_eq!(d.verdict, Verdict::NoLeak, "{}", d.message);
    assert!(
        trend(&series(
            &watch(4.0, 0.15, true, slow),
            Metric::V8HeapUsed,
            true
        ))
        .is_some_and(|t| t.low_per_hour > 0.0)
    );
}

#[test]
fn other_components() {
    // Code pages touched for the first time: clean, reclaimable, not a leak.
    let code = |t: f64, rng: &mut Rng| At {
        code: 35.0 + 4.0 * t,
        ..idle(t, rng)
    };
    let (v, msg) = verdict(&watch(4.0, 0.15, true, code));
    assert_eq!(v, Verdict::NoLeak, "{msg}");
    assert!(msg.contains("from file-backed/code +14.4 GB/h"), "{msg}");
    // 8 MiB thread stacks piling up.
    let threads = |t: f64, rng: &mut Rng| At {
        stacks: 1.0 + 8.4 * (t / 0.5).floor(),
        ..idle(t, rng)
    };
    let (v, msg) = verdict(&watch(4.0, 0.15, true, threads));
    assert_eq!(v, Verdict::NativeLeak, "{msg}");
    assert!(
        msg.contains("stacks +") && msg.contains("threads pile up"),
        "{msg}"
    );
}

#[test]
fn growth_during_warmup_only_is_no_leak() {
    // 60 MB loaded in the first 10 % of an hour, flat afterwards: Theil–Sen alone shrugs
    // off a short warm-up.
    let early = |t: f64, rng: &mut Rng| At {
        v8_heap: 6.0 + 60.0 * (t / 360.0).min(1.0) + rng.noise(0.3),
        heap_used: 4.5 + 60.0 * (t / 360.0).min(1.0) + rng.noise(0.3),
        ..idle(t, rng)
    };
    let (v, msg) = verdict(&watch(3600.0, 5.0, true, early));
    assert_eq!(v, Verdict::NoLeak, "{msg}");
    // Start-up taking the first 40 % of a short window: without skipping the warm-up,
    // it would read as growth.
    let slow_start = |t: f64, rng: &mut Rng| At {
        v8_heap: 6.0 + 60.0 * (t / 1.6).min(1.0) + rng.noise(0.3),
        heap_used: 4.5 + 60.0 * (t / 1.6).min(1.0) + rng.noise(0.3),
        ..idle(t, rng)
    };
    let samples = watch(4.0, 0.1, true, slow_start);
    let (v, msg) = verdict(&samples);
    assert_eq!(v, Verdict::NoLeak, "{msg}");
    let all = trend(&series(&samples, Metric::V8HeapUsed, false)).unwrap();
    assert!(all.is_growing(), "without skipping the warm-up: {all:?}");
}

#[test]
fn snapshots_split_the_series() {
    // Snapshots at 15, 30 and 45 s (as `hunt` takes them) each leave 300 MB of freed
    // memory resident in malloc for good: a staircase.
    let snapshots = [15.0, 30.0, 45.0];
    let mut samples = watch(60.0, 0.2, true, |t, rng| At {
        malloc: 8.0
            + 300.0 * snapshots.iter().filter(|&&at| t >= at).count() as f64
            + rng.noise(0.5),
        ..idle(t, rng)
    });
    let settling = |t: f64| snapshots.iter().any(|&at| (at..at + 2.0).contains(&t));
    for s in samples.iter_mut().filter(|s| settling(s.t)) {
        s.after_snapshot = true;
    }
    let (v, msg) = verdict(&samples);
    assert_eq!(v, Verdict::NoLeak, "{msg}");
    let segs = segments(&samples, Metric::Component(Component::MallocHeap), false);
    assert_eq!(segs.len(), 4);
    assert!(segs.iter().flatten().all(|&(t, _)| !settling(t)));
    // Joined, the step reads as growth.
    let joined = trend(&series(
        &samples,
        Metric::Component(Component::MallocHeap),
        true,
    ));
    assert!(joined.is_some_and(|t| t.is_growing()));
}

#[test]
fn series_skips_missing_figures() {
    let samples = watch(10.0, 1.0, false, idle);
    assert_eq!(series(&samples, Metric::Rss, false).len(), 11);
    assert_eq!(series(&samples, Metric::Rss, true).len(), 9);
    assert_eq!(series(&samples, Metric::Native, false).len(), 6);
    assert!(series(&samples, Metric::V8HeapUsed, false).is_empty());
    assert_eq!(warmup_end(&samples), 2.0);
    assert_eq!(warmup_end(&[]), f64::NEG_INFINITY);
}

#[test]
fn too_early() {
    let d = diagnose(&[]);
    assert_eq!(d.verdict, Verdict::TooEarly);
    assert_eq!(
        d.message,
        "too early: 0 samples over 0.0 s; wait for more samples"
    );
    let (v, msg) = verdict(&watch(0.6, 0.15, true, js_grower));
    assert_eq!(v, Verdict::TooEarly);
    assert_eq!(msg, "too early: 5 samples over 0.6 s; wait 1.9 s more");
    // RSS grows, but without smaps or V8 figures nothing says which memory.
    let rss_only: Vec<Sample> = (0..40)
        .map(|i| sample(i as f64 * 0.15, (50.0 + 1.5 * i as f64) * MB))
        .collect();
    let (v, msg) = verdict(&rss_only);
    assert_eq!(v, Verdict::TooEarly);
    assert!(
        msg.starts_with("RSS +36.0 GB/h, too few smaps samples"),
        "{msg}"
    );
}

#[test]
fn rss_growth_with_v8_flat_and_no_smaps_is_native() {
    let mut samples = watch(4.0, 0.15, true, |t, rng| At {
        malloc: 8.0 + 10.0 * t,
        ..idle(t, rng)
    });
    for s in &mut samples {
        s.breakdown = None;
    }
    let (v, msg) = verdict(&samples);
    assert_eq!(v, Verdict::NativeLeak, "{msg}");
    assert!(msg.contains("V8 heap flat, V8 external flat"), "{msg}");
}

#[test]
fn diagnosis_serializes() {
    let d = diagnose(&watch(4.0, 0.15, true, js_grower));
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["verdict"], "js_leak");
    let mut keys: Vec<&str> = d.growing.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["rss", "v8_heap", "v8_heap_used"]);
    assert!(json["growing"][0][1]["slope_per_hour"].as_f64().unwrap() > 3.0e10);
    let rates: Vec<f64> = d.growing.iter().map(|(_, t)| t.slope_per_hour).collect();
    assert!(rates.is_sorted_by(|a, b| a >= b), "{rates:?}");
}

#[test]
fn formatting() {
    assert_eq!(human_size(512.0), "512 B");
    assert_eq!(human_size(8.1e6), "8.1 MB");
    assert_eq!(human_size(999_990.0), "1.0 MB");
    assert_eq!(rate(-8.1e6), "-8.1 MB/h");
    assert_eq!(human_seconds(4.0), "4.0 s");
    assert_eq!(human_seconds(750.0), "12.5 min");
    assert_eq!(human_seconds(4.0 * 3600.0), "4.0 h");
}

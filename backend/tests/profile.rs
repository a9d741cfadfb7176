//! Profiling: the pure statistics and rescaling on made-up samples, a real profile of the tiny
//! CNN into pickles that `apparate`'s reader loads, the `--from-json` conversion through the
//! binary, and the forward pass on a safetensors input.

use std::process::Command;

use apparate::artifact::read_latency_tables;
use apparate::sim::latency::{BatchSize, BATCH_SIZES};
use backend::device::Cpu;
use backend::forward::{forward_logits, read_input};
use backend::models::{ModelInput, StagedModel};
use backend::profile::{
    latency_table, percentile, profile, profile_to_dir, read_record, rescale, tables_from_record,
    ProfileError, ProfileOptions, ProfileRecord, Stats, PROFILE_DIR, RECORD_FILE,
};
use backend::ramps::RampSet;
use burn::tensor::Tensor;

use crate::tiny::{TinyCnn, CLASSES, SIDE, SITES};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9 * (1.0 + a.abs().max(b.abs()))
}

#[test]
fn percentiles_interpolate_like_numpy() {
    let sorted: Vec<f64> = (1..=11).map(f64::from).collect();
    assert!(close(percentile(&sorted, 50.0), 6.0));
    assert!(close(percentile(&sorted, 5.0), 1.5));
    assert!(close(percentile(&sorted, 95.0), 10.5));
    assert!(close(percentile(&[4.0], 95.0), 4.0));
    assert!(percentile(&[], 50.0).is_nan());
    // Unsorted samples: Stats sorts them.
    let s = Stats::of(&[3.0, 1.0, 2.0, 10.0]);
    assert!(close(s.median, 2.5), "{s:?}");
    assert!(close(s.p5, 1.15), "{s:?}");
    assert!(close(s.p95, 8.95), "{s:?}");
}

#[test]
fn segments_are_rescaled_to_the_whole_model_and_summed() {
    let (scaled, factor) = rescale(&[2.0, 3.0, 5.0], 5.0).unwrap();
    assert_eq!(scaled, vec![1.0, 1.5, 2.5]);
    assert!(close(factor, 0.5));
    assert!(rescale(&[0.0, 0.0], 5.0).is_none());
    assert!(rescale(&[1.0], f64::NAN).is_none());

    // Two sites and the finish; V = 5 measured without the per-site syncs.
    let t = latency_table(&[2.0, 3.0, 5.0], &[0.4, 0.6], 5.0).unwrap();
    assert_eq!(t.vanilla_ms, 5.0);
    let up_to: Vec<f64> = t.ramps.iter().map(|r| r.vanilla_up_to_ms).collect();
    let cost: Vec<f64> = t.ramps.iter().map(|r| r.ramp_ms).collect();
    assert_eq!(up_to, vec![1.0, 2.5]);
    assert!(close(cost[0], 0.2) && close(cost[1], 0.3), "{cost:?}");

    let err = latency_table(&[2.0, 3.0], &[0.4, 0.6], 5.0).unwrap_err();
    assert!(err.contains("3 segments"), "{err}");
    let err = latency_table(&[2.0, f64::NAN, 1.0], &[0.4, 0.6], 5.0).unwrap_err();
    assert!(err.contains("segment 1"), "{err}");
    let err = latency_table(&[2.0, 1.0, 1.0], &[0.4, -1.0], 5.0).unwrap_err();
    assert!(err.contains("ramp 1"), "{err}");
    assert!(latency_table(&[1.0], &[], 5.0).is_err());
}

fn quick(batch_sizes: Vec<usize>) -> ProfileOptions {
    ProfileOptions {
        batch_sizes,
        warmup: 1,
        reps: 3,
        seq_len: 8,
    }
}

#[test]
fn a_real_profile_writes_pickles_the_simulator_reads() {
    let device = Default::default();
    let model = TinyCnn::<Cpu>::new(&device);
    let ramps = RampSet::for_model(&model, &device);
    let dir = tempfile::tempdir().unwrap();
    let (record, written) = profile_to_dir(
        &model,
        &ramps,
        &quick(BATCH_SIZES.to_vec()),
        &device,
        backend::device::device_record(&backend::device::Selected::Cpu { why: "test".into() }),
        dir.path(),
    )
    .unwrap();
    assert_eq!(record.num_sites, SITES);
    assert_eq!(record.batches.len(), BATCH_SIZES.len());
    assert_eq!(record.device["selected"], "cpu (burn Flex)");
    // CV: a vanilla and an early-exit tree per batch size, then profile.json.
    assert_eq!(written.len(), 2 * BATCH_SIZES.len() + 1);

    let tables = read_latency_tables(&dir.path().join(PROFILE_DIR), "resnet-tiny").unwrap();
    let ours = tables_from_record(&record, "test").unwrap();
    for ((bs, read), batch) in tables.iter().zip(&record.batches) {
        assert_eq!(bs.get(), batch.batch_size);
        assert_eq!(read.ramps.len(), SITES, "bs {}", bs.get());
        assert!(close(read.vanilla_ms, batch.vanilla_ms.median));
        assert!(read.vanilla_ms > 0.0);
        let mut last = 0.0;
        for r in &read.ramps {
            assert!(r.vanilla_up_to_ms > last && r.vanilla_up_to_ms <= read.vanilla_ms);
            assert!(r.ramp_ms > 0.0);
            last = r.vanilla_up_to_ms;
        }
        let want = ours.get(bs);
        for (a, b) in read.ramps.iter().zip(&want.ramps) {
            assert!(close(a.vanilla_up_to_ms, b.vanilla_up_to_ms));
            assert!(close(a.ramp_ms, b.ramp_ms));
        }
        let s = &batch.vanilla_ms;
        assert!(s.p5 <= s.median && s.median <= s.p95, "{s:?}");
        assert!(batch.first_forward_ms.unwrap() > 0.0);
    }
    // profile.json round-trips.
    let back = read_record(&dir.path().join(RECORD_FILE)).unwrap();
    assert_eq!(back, record);

    // The contract's entry point (used by gen-data) gives the same kind of tables.
    let p = profile(&model, &ramps, &quick(BATCH_SIZES.to_vec()), &device).unwrap();
    assert_eq!(p.tables.get(BatchSize::ONE).ramps.len(), SITES);
    assert_eq!(p.record["model"], "resnet-tiny");
}

#[test]
fn a_subset_of_batch_sizes_writes_only_the_record() {
    let device = Default::default();
    let model = TinyCnn::<Cpu>::new(&device);
    let ramps = RampSet::for_model(&model, &device);
    let dir = tempfile::tempdir().unwrap();
    let (record, written) = profile_to_dir(
        &model,
        &ramps,
        &quick(vec![1, 3]),
        &device,
        Default::default(),
        dir.path(),
    )
    .unwrap();
    assert_eq!(written, vec![dir.path().join(RECORD_FILE)]);
    assert!(!dir.path().join(PROFILE_DIR).exists());
    assert_eq!(record.batches[1].batch_size, 3);
    // The tables need every batch size: the error names the first missing one.
    let err = profile(&model, &ramps, &quick(vec![1, 3]), &device).unwrap_err();
    assert!(
        matches!(err, ProfileError::MissingBatchSize { batch_size: 2, .. }),
        "{err}"
    );
    let err = profile(&model, &ramps, &quick(vec![]), &device).unwrap_err();
    assert!(matches!(err, ProfileError::Options { .. }), "{err}");
}

/// A record as `torch_ref.py` writes it: made-up medians, no derived table.
fn pytorch_record(batch_sizes: &[usize]) -> ProfileRecord {
    let st = |m: f64| Stats {
        median: m,
        p5: m * 0.9,
        p95: m * 1.1,
    };
    ProfileRecord {
        format: "ee-backend-profile/1".into(),
        source: "pytorch".into(),
        model: "resnet50".into(),
        num_sites: 2,
        device: Default::default(),
        versions: Default::default(),
        tf32: Some("matmul=False cudnn=True".into()),
        warmup: 10,
        reps: 30,
        seq_len: None,
        batches: batch_sizes
            .iter()
            .map(|&bs| backend::profile::BatchRecord {
                batch_size: bs,
                vanilla_ms: st(bs as f64 * 10.0),
                segments_ms: vec![
                    st(bs as f64 * 3.0),
                    st(bs as f64 * 4.0),
                    st(bs as f64 * 4.0),
                ],
                ramps_ms: vec![st(0.1), st(0.2)],
                first_forward_ms: None,
                table: None,
            })
            .collect(),
    }
}

#[test]
fn from_json_turns_a_pytorch_record_into_pickles() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("torch.json");
    std::fs::write(
        &json,
        serde_json::to_string(&pytorch_record(&BATCH_SIZES)).unwrap(),
    )
    .unwrap();
    let out = dir.path().join("data");
    let run = Command::new(env!("CARGO_BIN_EXE_ee-backend"))
        .args(["profile", "--from-json"])
        .arg(&json)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let tables = read_latency_tables(&out.join(PROFILE_DIR), "resnet50").unwrap();
    let t = tables.get(BatchSize::exact(4).unwrap());
    assert_eq!(t.ramps.len(), 2);
    assert!(close(t.vanilla_ms, 40.0));
    // Segments 12 + 16 + 16 = 44 rescaled to 40: v_0 = 12 * 40/44.
    assert!(close(t.ramps[0].vanilla_up_to_ms, 12.0 * 40.0 / 44.0));
    assert!(close(t.ramps[1].ramp_ms, 0.2 * 40.0 / 44.0));
    let record = read_record(&out.join(RECORD_FILE)).unwrap();
    assert_eq!(record.source, "pytorch");
    assert!(record.versions["converted_by"]
        .as_str()
        .unwrap()
        .contains("--from-json"));
}

#[test]
fn from_json_refuses_a_record_without_every_batch_size_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("torch.json");
    std::fs::write(
        &json,
        serde_json::to_string(&pytorch_record(&[1, 2, 4])).unwrap(),
    )
    .unwrap();
    let out = dir.path().join("data");
    let run = Command::new(env!("CARGO_BIN_EXE_ee-backend"))
        .args(["profile", "--from-json"])
        .arg(&json)
        .arg("--out")
        .arg(&out)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("torch.json"), "{stderr}");
    assert!(stderr.contains("batch size 8"), "{stderr}");
    assert!(!out.exists());

    std::fs::write(&json, "{\"format\": \"ee-backend-profile/1\"}").unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_ee-backend"))
        .args(["profile", "--from-json"])
        .arg(&json)
        .arg("--out")
        .arg(&out)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("torch.json") && stderr.contains("missing field"),
        "{stderr}"
    );
}

#[test]
fn forward_reads_a_safetensors_input_and_gives_the_models_logits() {
    let device = Default::default();
    let model = TinyCnn::<Cpu>::new(&device);
    let values: Vec<f32> = (0..2 * 3 * SIDE * SIDE)
        .map(|i| (i % 17) as f32 / 17.0 - 0.5)
        .collect();
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = safetensors::tensor::TensorView::new(
        safetensors::Dtype::F32,
        vec![2, 3, SIDE, SIDE],
        &bytes,
    )
    .unwrap();
    let file = safetensors::serialize([("input", view)], None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.safetensors");
    std::fs::write(&path, file).unwrap();

    let input = read_input::<Cpu>(&path, &device).unwrap();
    let logits = forward_logits(&model, input).unwrap();
    assert_eq!(logits.len(), 2);
    assert_eq!(logits[0].len(), CLASSES);

    let direct =
        Tensor::<Cpu, 1>::from_floats(values.as_slice(), &device).reshape([2, 3, SIDE, SIDE]);
    let want = forward_logits(&model, ModelInput::Images(direct)).unwrap();
    assert_eq!(logits, want);
    assert_eq!(model.num_classes(), CLASSES);

    // A file without the expected tensors is refused naming the file.
    let bytes = [0u8; 8];
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::U8, vec![8], &bytes).unwrap();
    std::fs::write(
        &path,
        safetensors::serialize([("other", view)], None).unwrap(),
    )
    .unwrap();
    let err = read_input::<Cpu>(&path, &device).unwrap_err().to_string();
    assert!(
        err.contains("x.safetensors") && err.contains("input_ids"),
        "{err}"
    );
}

#[test]
fn measure_with_reports_the_record_after_every_batch_size() {
    let device = Default::default();
    let model = TinyCnn::<Cpu>::new(&device);
    let ramps = RampSet::for_model(&model, &device);
    let mut seen = Vec::new();
    let record =
        backend::profile::measure_with(&model, &ramps, &quick(vec![2, 1, 4]), &device, &mut |r| {
            seen.push(r.batches.iter().map(|b| b.batch_size).collect::<Vec<_>>());
            Ok(())
        })
        .unwrap();
    assert_eq!(seen, vec![vec![2], vec![2, 1], vec![2, 1, 4]]);
    assert_eq!(record.batches.len(), 3);
    // A callback error stops the run with that error.
    let err =
        backend::profile::measure_with(&model, &ramps, &quick(vec![1, 2]), &device, &mut |_| {
            Err(ProfileError::Write {
                path: "x".into(),
                reason: "disk full".into(),
            })
        })
        .unwrap_err();
    assert!(err.to_string().contains("disk full"), "{err}");
}

#[test]
fn forward_refuses_an_input_the_model_cannot_take_instead_of_panicking() {
    let device = Default::default();
    // Images for a text model.
    let bert = backend::models::nlp::build_nlp::<Cpu>("bert-tiny", 2, &device).unwrap();
    let images = Tensor::<Cpu, 4>::zeros([1, 3, 8, 8], &device);
    let e = forward_logits(&bert, ModelInput::Images(images.clone()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("bert-tiny") && e.contains("token ids"), "{e}");
    // Token ids for an image model, and images of the wrong channel count.
    let cnn = TinyCnn::<Cpu>::new(&device);
    let ids = Tensor::<Cpu, 2, burn::tensor::Int>::zeros([1, 4], &device);
    let tokens = ModelInput::Tokens {
        ids: ids.clone(),
        mask: ids.ones_like(),
    };
    let e = forward_logits(&cnn, tokens).unwrap_err().to_string();
    assert!(e.contains("images"), "{e}");
    let grey = Tensor::<Cpu, 4>::zeros([1, 1, SIDE, SIDE], &device);
    let e = forward_logits(&cnn, ModelInput::Images(grey))
        .unwrap_err()
        .to_string();
    assert!(e.contains("3 channels, found 1"), "{e}");
    // Negative token ids.
    let neg = Tensor::<Cpu, 2, burn::tensor::Int>::from_ints([[101, -5]], &device);
    let e = forward_logits(
        &bert,
        ModelInput::Tokens {
            ids: neg.clone(),
            mask: neg.ones_like(),
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("found -5"), "{e}");
}

//! `ee-backend probe`: the CPU, the CUDA driver, NVRTC and headers (all looked at through
//! `dlopen`, before burn-cuda is touched), and what `--device auto` would use, in plain words.
//! With `--run`, a small matrix product on the selected device proves the backend works there
//! (on CUDA: the first JIT compile through NVRTC).

use std::time::Instant;

use anyhow::{bail, Result};
use backend::device::{select, DeviceChoice, Probe};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, ElementConversion, Tensor};

/// `ee-backend probe` arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Also run a 256x256 matrix product on the device `--device` selects.
    #[arg(long)]
    run: bool,
    /// Print the probe as one JSON object instead of the plain-words report.
    #[arg(long)]
    json: bool,
    /// The device for `--run`.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    device: DeviceChoice,
}

/// Prints the probe's report (exit 0 whatever it finds); with `--run`, the smoke test's result
/// (exit 1 when it fails).
pub fn run(args: &Args) -> Result<()> {
    let probe = Probe::run();
    if args.json {
        let mut v = probe.to_json();
        if let serde_json::Value::Object(m) = &mut v {
            m.insert("version".into(), backend::BACKEND_VERSION.into());
        }
        println!("{v}");
    } else {
        println!("{}", backend::BACKEND_VERSION);
        print!("{}", probe.report());
    }
    if args.run {
        let selected = select(args.device)?;
        let ms = backend::with_backend!(&selected, B, device, smoke::<B>(&device))?;
        println!(
            "run on {}: 256x256 matmul ok in {ms:.1} ms (first call, compile included)",
            selected.describe()
        );
    }
    Ok(())
}

fn smoke<B: Backend>(device: &B::Device) -> Result<f64> {
    let t0 = Instant::now();
    let a = Tensor::<B, 2>::random([256, 256], Distribution::Normal(0.0, 1.0), device);
    let eye = Tensor::<B, 2>::eye(256, device);
    let product = a.clone().matmul(eye);
    let diff: f32 = (product - a).abs().max().into_scalar().elem();
    B::sync(device).map_err(|e| anyhow::anyhow!("the backend failed: {e}"))?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    if !(diff.is_finite() && diff < 1e-3) {
        bail!("the matrix product is wrong on this device (max |A*I - A| = {diff})");
    }
    Ok(ms)
}

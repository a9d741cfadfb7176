//! Device probing and selection: the pure choice on made-up probes, and the binary on this
//! machine (which has no GPU, or a binary without the `cuda` feature).

use std::process::Command;

use backend::device::{
    select_with, CpuInfo, CudaInfo, DeviceChoice, DeviceError, DriverInfo, GpuInfo, Probe, Selected,
};

fn gpu_probe() -> Probe {
    Probe {
        cpu: CpuInfo {
            cores: 16,
            memory_bytes: Some(128 << 30),
        },
        cuda_built_in: true,
        cuda: CudaInfo {
            driver: Some(DriverInfo {
                library: "libcuda.so.1".into(),
                version: Some(13000),
                devices: vec![GpuInfo {
                    index: 0,
                    name: "NVIDIA H100 80GB HBM3".into(),
                    memory_bytes: 80 << 30,
                }],
                error: None,
            }),
            nvrtc: Some("libnvrtc.so.13".into()),
            nvrtc_off_path: None,
            cuda_path: Some("/usr/local/cuda".into()),
            include_ok: true,
        },
    }
}

#[test]
fn auto_picks_a_usable_gpu() {
    let s = select_with(DeviceChoice::Auto, &gpu_probe()).unwrap();
    assert!(
        matches!(&s, Selected::Cuda { index: 0, name, .. } if name.contains("H100")),
        "{s:?}"
    );
    let s = select_with(DeviceChoice::Cpu, &gpu_probe()).unwrap();
    assert!(matches!(s, Selected::Cpu { .. }));
}

#[test]
fn auto_falls_back_with_the_reason_and_cuda_is_refused_with_it() {
    let cases: Vec<(Probe, &str)> = vec![
        (
            Probe {
                cuda_built_in: false,
                ..gpu_probe()
            },
            "without the `cuda` feature",
        ),
        (
            {
                let mut p = gpu_probe();
                p.cuda.driver = None;
                p
            },
            "no libcuda.so.1",
        ),
        (
            {
                let mut p = gpu_probe();
                p.cuda.nvrtc = None;
                p.cuda.nvrtc_off_path = Some("/opt/x/lib64/libnvrtc.so.13".into());
                p
            },
            "no NVRTC library",
        ),
        (
            {
                let mut p = gpu_probe();
                if let Some(d) = p.cuda.driver.as_mut() {
                    d.version = Some(12040);
                }
                p
            },
            "supports CUDA 12.4",
        ),
        (
            {
                let mut p = gpu_probe();
                if let Some(d) = p.cuda.driver.as_mut() {
                    d.devices.clear();
                    d.error = Some("cuInit failed: CUDA_ERROR_NO_DEVICE (100)".into());
                }
                p
            },
            "CUDA_ERROR_NO_DEVICE",
        ),
        (
            {
                let mut p = gpu_probe();
                p.cuda.cuda_path = None;
                p
            },
            "set CUDA_PATH",
        ),
    ];
    for (probe, reason) in cases {
        match select_with(DeviceChoice::Auto, &probe).unwrap() {
            Selected::Cpu { why } => assert!(why.contains(reason), "{why} lacks {reason}"),
            other => panic!("expected the CPU, got {other:?}"),
        }
        let err = select_with(DeviceChoice::Cuda, &probe).unwrap_err();
        let DeviceError::CudaUnusable { reason: got } = &err;
        assert!(got.contains(reason), "{err} lacks {reason}");
        assert!(!err.to_string().contains('\n'), "one line: {err}");
    }
}

#[test]
fn probe_without_a_gpu_reports_the_cpu_and_exits_0() {
    let out = Command::new(env!("CARGO_BIN_EXE_ee-backend"))
        .args(["probe", "--run", "--device", "cpu"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("cpu: "), "{stdout}");
    // This machine has no usable GPU (or the binary no CUDA): auto picks the CPU and says why.
    assert!(
        stdout.contains("run on cpu (burn Flex): 256x256 matmul ok"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("--device auto uses: cpu (burn Flex) (--device auto fell back to the CPU: "),
        "{stdout}"
    );
}

#[test]
fn device_cuda_without_a_gpu_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ee-backend"))
        .args([
            "profile", "--model", "resnet50", "--device", "cuda", "--out",
        ])
        .arg(dir.path())
        .env("RUST_LOG", "off")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: --device cuda cannot be used: "),
        "{stderr}"
    );
    // Nothing was written.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn probe_json_says_what_auto_uses() {
    let v = gpu_probe().to_json();
    assert_eq!(v["auto"]["gpu"], true);
    assert_eq!(
        v["cuda"]["driver"]["devices"][0]["name"],
        "NVIDIA H100 80GB HBM3"
    );
    assert_eq!(v["cpu"]["cores"], 16);

    let out = Command::new(env!("CARGO_BIN_EXE_ee-backend"))
        .args(["probe", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["auto"]["gpu"], false, "{v}");
    assert_eq!(v["auto"]["device"], "cpu (burn Flex)");
    assert!(v["version"].as_str().unwrap().starts_with("ee-backend "));
}

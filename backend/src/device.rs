//! Which device runs the models: CPU (burn's Flex backend) always; CUDA when the `cuda` feature is
//! built in and `libcuda.so.1` and NVRTC load (checked before burn-cuda is touched, since it
//! panics when they are missing).
//!
//! [`Probe::run`] looks at the machine without touching burn: CPU cores and memory, then the CUDA
//! driver through `dlopen` (`libcuda.so.1`: `cuInit`, `cuDriverGetVersion`, `cuDeviceGetCount`,
//! `cuDeviceGetName`, `cuDeviceTotalMem_v2`), NVRTC under the names cudarc tries, and the CUDA
//! folder whose `include/` cubecl compiles kernels against. [`select`] turns `--device` into a
//! [`Selected`] device, or says exactly why CUDA cannot be used. Commands are generic over the
//! backend; [`with_backend!`](crate::with_backend) runs one on the selected device.

use std::ffi::{c_char, c_int, c_uint, CStr};
use std::fmt;
use std::path::{Path, PathBuf};

/// The CPU backend.
pub type Cpu = burn::backend::Flex;

/// The CPU backend with autodiff, for training ramp heads.
pub type CpuTrain = burn::backend::Autodiff<Cpu>;

/// The CUDA backend (feature `cuda`).
#[cfg(feature = "cuda")]
pub type Gpu = burn::backend::Cuda;

/// What the user asked for on the command line (`--device`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DeviceChoice {
    /// CUDA when built in and usable, else CPU (saying why).
    #[default]
    Auto,
    /// The CPU (Flex backend).
    Cpu,
    /// An NVIDIA GPU; an error when it cannot be used.
    Cuda,
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceChoice::Auto => "auto",
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Cuda => "cuda",
        })
    }
}

/// Whether this binary was built with the `cuda` feature.
pub const CUDA_BUILT_IN: bool = cfg!(feature = "cuda");

/// The CUDA version the binary binds (`CUDARC_CUDA_VERSION` at build time, `.cargo/config.toml`).
pub const CUDA_API: (u32, u32) = (13, 0);

/// The machine's CPU.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CpuInfo {
    /// Logical cores this process may use.
    pub cores: usize,
    /// Total memory (`/proc/meminfo`), when readable.
    pub memory_bytes: Option<u64>,
}

/// One CUDA device as the driver reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct GpuInfo {
    /// The device ordinal.
    pub index: usize,
    /// `cuDeviceGetName`.
    pub name: String,
    /// `cuDeviceTotalMem`.
    pub memory_bytes: u64,
}

/// What the CUDA driver said, when `libcuda.so.1` loaded.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DriverInfo {
    /// The library name that loaded.
    pub library: String,
    /// `cuDriverGetVersion`, e.g. 13000 for CUDA 13.0.
    pub version: Option<i32>,
    /// The devices (empty when `cuInit` failed or there are none).
    pub devices: Vec<GpuInfo>,
    /// Why the devices could not be listed (`cuInit` or a query failed), if so.
    pub error: Option<String>,
}

/// The CUDA side of the machine, found without touching burn.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CudaInfo {
    /// The driver, or `None` when no `libcuda` loaded.
    pub driver: Option<DriverInfo>,
    /// The NVRTC library name that loaded (as cudarc loads it: by name, through the loader path).
    pub nvrtc: Option<String>,
    /// An NVRTC file found in a CUDA folder that the loader did not find by name (add its folder
    /// to `LD_LIBRARY_PATH`).
    pub nvrtc_off_path: Option<PathBuf>,
    /// The CUDA folder cubecl uses (`CUDA_PATH`, `/usr/local/cuda`, `/opt/cuda`, `/usr` with
    /// `nvcc`), if any.
    pub cuda_path: Option<PathBuf>,
    /// Whether `<cuda_path>/include` exists (NVRTC compiles kernels against it).
    pub include_ok: bool,
}

/// Everything [`select`] decides on.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Probe {
    /// The CPU.
    pub cpu: CpuInfo,
    /// Whether the binary has the CUDA backend.
    pub cuda_built_in: bool,
    /// The CUDA driver and libraries.
    pub cuda: CudaInfo,
}

/// The device a command runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selected {
    /// The CPU (Flex backend).
    Cpu {
        /// Why, in plain words.
        why: String,
    },
    /// CUDA device `index`.
    Cuda {
        /// The ordinal.
        index: usize,
        /// Its name.
        name: String,
        /// Why, in plain words.
        why: String,
    },
}

impl Selected {
    /// A short description: `cpu (Flex, N cores)` or `cuda:0 (NVIDIA H100 ...)`.
    pub fn describe(&self) -> String {
        match self {
            Selected::Cpu { .. } => "cpu (burn Flex)".to_string(),
            Selected::Cuda { index, name, .. } => format!("cuda:{index} ({name})"),
        }
    }

    /// Why this device was chosen.
    pub fn why(&self) -> &str {
        match self {
            Selected::Cpu { why } | Selected::Cuda { why, .. } => why,
        }
    }
}

/// Why the device asked for cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// `--device cuda` on a machine or binary where CUDA cannot run.
    #[error("--device cuda cannot be used: {reason}")]
    CudaUnusable {
        /// Exactly why.
        reason: String,
    },
}

impl Probe {
    /// Looks at the machine (CPU, then the CUDA driver and libraries through `dlopen`).
    pub fn run() -> Probe {
        Probe {
            cpu: cpu_info(),
            cuda_built_in: CUDA_BUILT_IN,
            cuda: cuda_info(),
        }
    }

    /// Why CUDA cannot be used by this binary on this machine, or `None` when it can.
    pub fn cuda_unusable(&self) -> Option<String> {
        if !self.cuda_built_in {
            return Some(
                "this ee-backend was built without the `cuda` feature (rebuild with `cargo \
                 build --release --workspace --features backend/cuda --bin ee-backend`)"
                    .to_string(),
            );
        }
        let Some(driver) = &self.cuda.driver else {
            return Some(
                "no libcuda.so.1 (the NVIDIA driver is not installed or not on the loader path)"
                    .to_string(),
            );
        };
        if let Some(error) = &driver.error {
            return Some(format!("the CUDA driver did not start: {error}"));
        }
        if driver.devices.is_empty() {
            return Some("the CUDA driver reports no device".to_string());
        }
        if let Some(v) = driver.version {
            let needed = (CUDA_API.0 * 1000 + CUDA_API.1 * 10) as i32;
            if v < needed {
                return Some(format!(
                    "the driver supports CUDA {} but this binary binds CUDA {}.{}",
                    cuda_version_text(v),
                    CUDA_API.0,
                    CUDA_API.1
                ));
            }
        }
        if self.cuda.nvrtc.is_none() {
            let hint = match &self.cuda.nvrtc_off_path {
                Some(p) => format!(
                    " ({} exists: add its folder to LD_LIBRARY_PATH)",
                    p.display()
                ),
                None => String::new(),
            };
            return Some(format!(
                "no NVRTC library (libnvrtc.so, libnvrtc.so.{}, ...) on the loader path{hint}",
                CUDA_API.0
            ));
        }
        if self.cuda.cuda_path.is_none() {
            return Some(
                "no CUDA folder with headers (set CUDA_PATH; /usr/local/cuda, /opt/cuda and \
                 /usr/bin/nvcc are missing)"
                    .to_string(),
            );
        }
        None
    }

    /// The probe as JSON (`ee-backend probe --json`): every field, plus `auto` (what `--device
    /// auto` uses: `device` and `why`, or `error`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        let auto = match select_with(DeviceChoice::Auto, self) {
            Ok(s) => serde_json::json!({
                "device": s.describe(),
                "gpu": matches!(s, Selected::Cuda { .. }),
                "why": s.why(),
            }),
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        };
        if let serde_json::Value::Object(m) = &mut v {
            m.insert("auto".into(), auto);
        }
        v
    }

    /// The plain-words report `ee-backend probe` prints.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let mem = |b: Option<u64>| b.map_or("unknown".to_string(), gib);
        out.push_str(&format!(
            "cpu: {} cores, {} memory, backend burn Flex\n",
            self.cpu.cores,
            mem(self.cpu.memory_bytes)
        ));
        out.push_str(&format!(
            "cuda feature: {}\n",
            if self.cuda_built_in {
                format!("built in (binds CUDA {}.{})", CUDA_API.0, CUDA_API.1)
            } else {
                "not built in".to_string()
            }
        ));
        match &self.cuda.driver {
            None => out.push_str("cuda driver: no libcuda.so.1\n"),
            Some(d) => {
                out.push_str(&format!(
                    "cuda driver: {} loaded, version {}\n",
                    d.library,
                    d.version.map_or("unknown".to_string(), cuda_version_text)
                ));
                if let Some(e) = &d.error {
                    out.push_str(&format!("cuda devices: none listed ({e})\n"));
                } else {
                    out.push_str(&format!("cuda devices: {}\n", d.devices.len()));
                }
                for g in &d.devices {
                    out.push_str(&format!(
                        "  cuda:{} {} ({})\n",
                        g.index,
                        g.name,
                        gib(g.memory_bytes)
                    ));
                }
            }
        }
        out.push_str(&format!(
            "nvrtc: {}\n",
            match (&self.cuda.nvrtc, &self.cuda.nvrtc_off_path) {
                (Some(n), _) => format!("{n} loaded"),
                (None, Some(p)) => format!("not on the loader path ({} exists)", p.display()),
                (None, None) => "not found".to_string(),
            }
        ));
        out.push_str(&format!(
            "cuda headers: {}\n",
            match &self.cuda.cuda_path {
                Some(p) if self.cuda.include_ok => format!("{}/include", p.display()),
                Some(p) => format!("{} has no include/ folder", p.display()),
                None => "no CUDA folder (CUDA_PATH unset, /usr/local/cuda missing)".to_string(),
            }
        ));
        match select_with(DeviceChoice::Auto, self) {
            Ok(s) => out.push_str(&format!(
                "--device auto uses: {} ({})\n",
                s.describe(),
                s.why()
            )),
            Err(e) => out.push_str(&format!("--device auto fails: {e}\n")),
        }
        out
    }
}

/// Picks the device for `choice` on this machine (probing it first). `auto` falls back to the CPU
/// with a logged reason; `cuda` that cannot be used is an error saying exactly why.
pub fn select(choice: DeviceChoice) -> Result<Selected, DeviceError> {
    let probe = match choice {
        // The CPU needs no look at the driver.
        DeviceChoice::Cpu => Probe {
            cpu: cpu_info(),
            cuda_built_in: CUDA_BUILT_IN,
            cuda: CudaInfo {
                driver: None,
                nvrtc: None,
                nvrtc_off_path: None,
                cuda_path: None,
                include_ok: false,
            },
        },
        _ => Probe::run(),
    };
    let selected = select_with(choice, &probe)?;
    match (choice, &selected) {
        (DeviceChoice::Auto, Selected::Cpu { why }) => tracing::warn!("{why}"),
        _ => tracing::info!(device = %selected.describe(), "{}", selected.why()),
    }
    Ok(selected)
}

/// [`select`] on an already taken [`Probe`] (pure: logs nothing).
pub fn select_with(choice: DeviceChoice, probe: &Probe) -> Result<Selected, DeviceError> {
    let cuda = || -> Result<Selected, String> {
        if let Some(reason) = probe.cuda_unusable() {
            return Err(reason);
        }
        // cuda_unusable() is None only with a driver that lists at least one device.
        let first = probe
            .cuda
            .driver
            .as_ref()
            .and_then(|d| d.devices.first())
            .ok_or_else(|| "the CUDA driver reports no device".to_string())?;
        Ok(Selected::Cuda {
            index: first.index,
            name: first.name.clone(),
            why: String::new(),
        })
    };
    match choice {
        DeviceChoice::Cpu => Ok(Selected::Cpu {
            why: "--device cpu".to_string(),
        }),
        DeviceChoice::Cuda => match cuda() {
            Ok(Selected::Cuda { index, name, .. }) => Ok(Selected::Cuda {
                index,
                name,
                why: "--device cuda".to_string(),
            }),
            Ok(other) => Ok(other),
            Err(reason) => Err(DeviceError::CudaUnusable { reason }),
        },
        DeviceChoice::Auto => match cuda() {
            Ok(Selected::Cuda { index, name, .. }) => Ok(Selected::Cuda {
                index,
                name,
                why: "--device auto: CUDA is built in and its driver, NVRTC and headers are usable"
                    .to_string(),
            }),
            Ok(other) => Ok(other),
            Err(reason) => Ok(Selected::Cpu {
                why: format!("--device auto fell back to the CPU: {reason}"),
            }),
        },
    }
}

/// Runs the generic expression `$body` with the backend type `$B` and its device `$device` bound
/// for the [`Selected`] device: Flex on the CPU, burn's CUDA backend on a GPU (feature `cuda`).
///
/// ```ignore
/// with_backend!(selected, B, device, run_profile::<B>(&device, &args))
/// ```
#[macro_export]
macro_rules! with_backend {
    ($selected:expr, $B:ident, $device:ident, $body:expr) => {{
        match $selected {
            $crate::device::Selected::Cpu { .. } => {
                type $B = $crate::device::Cpu;
                let $device = $crate::device::default_device::<$B>();
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::device::Selected::Cuda { index, .. } => {
                type $B = $crate::device::Gpu;
                let $device = burn::backend::cuda::CudaDevice::new(*index);
                $body
            }
            #[cfg(not(feature = "cuda"))]
            $crate::device::Selected::Cuda { .. } => {
                // select() never picks CUDA in a build without it.
                type $B = $crate::device::Cpu;
                let $device = $crate::device::default_device::<$B>();
                $body
            }
        }
    }};
}

/// The fields `profile.json` records about the device: what was selected and why, and for CUDA
/// the device's name, memory and the driver's version (probed again, without touching burn).
pub fn device_record(selected: &Selected) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert("selected".into(), selected.describe().into());
    m.insert("why".into(), selected.why().into());
    match selected {
        Selected::Cpu { .. } => {
            let cpu = cpu_info();
            m.insert("cpu_cores".into(), cpu.cores.into());
            if let Some(b) = cpu.memory_bytes {
                m.insert("memory_bytes".into(), b.into());
            }
        }
        Selected::Cuda { index, name, .. } => {
            m.insert("name".into(), name.clone().into());
            if let Some(d) = driver_info() {
                if let Some(v) = d.version {
                    m.insert("driver_cuda_version".into(), cuda_version_text(v).into());
                }
                if let Some(g) = d.devices.iter().find(|g| g.index == *index) {
                    m.insert("memory_bytes".into(), g.memory_bytes.into());
                }
            }
            m.insert(
                "cuda_api".into(),
                format!("{}.{}", CUDA_API.0, CUDA_API.1).into(),
            );
        }
    }
    m
}

/// The default device of backend `B` (the CPU for Flex), for [`with_backend!`](crate::with_backend).
pub fn default_device<B: burn::tensor::backend::Backend>() -> B::Device {
    Default::default()
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

fn cuda_version_text(v: i32) -> String {
    format!("{}.{}", v / 1000, (v % 1000) / 10)
}

fn cpu_info() -> CpuInfo {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory_bytes = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| meminfo_total(&text));
    CpuInfo {
        cores,
        memory_bytes,
    }
}

/// `MemTotal` of a `/proc/meminfo` text, in bytes.
fn meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line
        .trim_start_matches("MemTotal:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The library names cudarc tries for `lib` (its `get_lib_name_candidates`, CUDA 13.0 binding),
/// in its order: loaded by name, so through `LD_LIBRARY_PATH` and the loader cache.
pub fn cudarc_lib_names(lib: &str) -> Vec<String> {
    let (major, minor) = CUDA_API;
    [
        format!("lib{lib}.so"),
        format!("lib{lib}64.so"),
        format!("lib{lib}64_{major}.so"),
        format!("lib{lib}64_{major}{minor}.so"),
        format!("lib{lib}64_{major}{minor}_0.so"),
        format!("lib{lib}64_{major}0_{minor}.so"),
        format!("lib{lib}64_10.so"),
        format!("lib{lib}64_11.so"),
        format!("lib{lib}64_12.so"),
        format!("lib{lib}64_{major}0_0.so"),
        format!("lib{lib}64_9.so"),
        format!("lib{lib}.so.{major}"),
        format!("lib{lib}.so.12"),
        format!("lib{lib}.so.11"),
        format!("lib{lib}.so.10"),
        format!("lib{lib}.so.9"),
        format!("lib{lib}.so.1"),
    ]
    .into()
}

/// The CUDA folder as cubecl-cuda finds it (`install::cuda_path`).
fn cubecl_cuda_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CUDA_PATH") {
        return Some(PathBuf::from(p));
    }
    ["/usr/local/cuda", "/opt/cuda"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .or_else(|| {
            Path::new("/usr/bin/nvcc")
                .exists()
                .then(|| PathBuf::from("/usr"))
        })
}

fn cuda_info() -> CudaInfo {
    let cuda_path = cubecl_cuda_path();
    let include_ok = cuda_path
        .as_ref()
        .is_some_and(|p| p.join("include").is_dir());
    let nvrtc = cudarc_lib_names("nvrtc")
        .into_iter()
        .find(|name| try_load(name).is_some());
    let nvrtc_off_path = if nvrtc.is_none() {
        nvrtc_in_folders(cuda_path.as_deref())
    } else {
        None
    };
    CudaInfo {
        driver: driver_info(),
        nvrtc,
        nvrtc_off_path,
        cuda_path,
        include_ok,
    }
}

/// An NVRTC file in the usual CUDA library folders (for the hint when the loader misses it).
fn nvrtc_in_folders(cuda_path: Option<&Path>) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for var in ["CUDA_PATH", "CUDA_HOME", "CUDA_ROOT"] {
        if let Some(p) = std::env::var_os(var) {
            dirs.push(PathBuf::from(&p).join("lib64"));
            dirs.push(PathBuf::from(&p).join("lib"));
        }
    }
    if let Some(p) = cuda_path {
        dirs.push(p.join("lib64"));
    }
    dirs.push(PathBuf::from("/usr/local/cuda/lib64"));
    dirs.push(PathBuf::from("/usr/lib/x86_64-linux-gnu"));
    dirs.iter().find_map(|d| {
        let entries = std::fs::read_dir(d).ok()?;
        entries.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libnvrtc.so"))
        })
    })
}

fn try_load(name: &str) -> Option<libloading::Library> {
    // SAFETY: loading a shared library runs its initialisers; NVIDIA's driver and NVRTC
    // libraries are designed to be dlopened (cudarc does exactly this).
    unsafe { libloading::Library::new(name) }.ok()
}

type CuResult = c_int;

fn driver_info() -> Option<DriverInfo> {
    let (library, lib) = ["libcuda.so.1", "libcuda.so"]
        .iter()
        .find_map(|name| try_load(name).map(|lib| (name.to_string(), lib)))?;
    Some(query_driver(library, &lib))
}

/// Asks the driver for its version and devices. Every symbol is looked up before it is called;
/// a missing one or a failing call is reported, never a panic.
fn query_driver(library: String, lib: &libloading::Library) -> DriverInfo {
    let mut info = DriverInfo {
        library,
        version: None,
        devices: Vec::new(),
        error: None,
    };
    // SAFETY: the signatures are the CUDA driver API's (cuda.h): every function returns a
    // CUresult (int) and writes through the pointers we pass, which point to live locals or a
    // buffer of the length we give.
    unsafe {
        let mut run = || -> Result<(), String> {
            let get_version: libloading::Symbol<unsafe extern "C" fn(*mut c_int) -> CuResult> = lib
                .get(b"cuDriverGetVersion\0")
                .map_err(|e| format!("cuDriverGetVersion missing: {e}"))?;
            let mut v: c_int = 0;
            if get_version(&mut v) == 0 {
                info.version = Some(v);
            }
            let init: libloading::Symbol<unsafe extern "C" fn(c_uint) -> CuResult> = lib
                .get(b"cuInit\0")
                .map_err(|e| format!("cuInit missing: {e}"))?;
            let err_name = |code: CuResult| -> String {
                let f: Result<
                    libloading::Symbol<
                        unsafe extern "C" fn(CuResult, *mut *const c_char) -> CuResult,
                    >,
                    _,
                > = lib.get(b"cuGetErrorName\0");
                let mut p: *const c_char = std::ptr::null();
                match f {
                    Ok(f) if f(code, &mut p) == 0 && !p.is_null() => {
                        format!("{} ({code})", CStr::from_ptr(p).to_string_lossy())
                    }
                    _ => format!("error {code}"),
                }
            };
            let rc = init(0);
            if rc != 0 {
                return Err(format!("cuInit failed: {}", err_name(rc)));
            }
            let count: libloading::Symbol<unsafe extern "C" fn(*mut c_int) -> CuResult> = lib
                .get(b"cuDeviceGetCount\0")
                .map_err(|e| format!("cuDeviceGetCount missing: {e}"))?;
            let get: libloading::Symbol<unsafe extern "C" fn(*mut c_int, c_int) -> CuResult> = lib
                .get(b"cuDeviceGet\0")
                .map_err(|e| format!("cuDeviceGet missing: {e}"))?;
            let name: libloading::Symbol<
                unsafe extern "C" fn(*mut c_char, c_int, c_int) -> CuResult,
            > = lib
                .get(b"cuDeviceGetName\0")
                .map_err(|e| format!("cuDeviceGetName missing: {e}"))?;
            let total: libloading::Symbol<unsafe extern "C" fn(*mut usize, c_int) -> CuResult> =
                lib.get(b"cuDeviceTotalMem_v2\0")
                    .or_else(|_| lib.get(b"cuDeviceTotalMem\0"))
                    .map_err(|e| format!("cuDeviceTotalMem missing: {e}"))?;
            let mut n: c_int = 0;
            let rc = count(&mut n);
            if rc != 0 {
                return Err(format!("cuDeviceGetCount failed: {}", err_name(rc)));
            }
            for ordinal in 0..n.max(0) {
                let mut dev: c_int = 0;
                let rc = get(&mut dev, ordinal);
                if rc != 0 {
                    return Err(format!("cuDeviceGet({ordinal}) failed: {}", err_name(rc)));
                }
                let mut buf = [0 as c_char; 256];
                let rc = name(buf.as_mut_ptr(), buf.len() as c_int, dev);
                let dev_name = if rc == 0 {
                    CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
                } else {
                    format!("device {ordinal} (name unknown: {})", err_name(rc))
                };
                let mut bytes: usize = 0;
                let rc = total(&mut bytes, dev);
                info.devices.push(GpuInfo {
                    index: ordinal as usize,
                    name: dev_name,
                    memory_bytes: if rc == 0 { bytes as u64 } else { 0 },
                });
            }
            Ok(())
        };
        if let Err(e) = run() {
            info.error = Some(e);
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_total_reads_kib() {
        let text = "MemTotal:       16318480 kB\nMemFree:         1000 kB\n";
        assert_eq!(meminfo_total(text), Some(16318480 * 1024));
        assert_eq!(meminfo_total("nothing"), None);
    }

    #[test]
    fn cudarc_names_cover_the_soname() {
        let names = cudarc_lib_names("nvrtc");
        assert_eq!(names[0], "libnvrtc.so");
        assert!(names.contains(&"libnvrtc.so.13".to_string()));
        assert!(cudarc_lib_names("cuda").contains(&"libcuda.so.1".to_string()));
    }
}

//! Which device runs the models: CPU (burn's Flex backend) always; CUDA when the `cuda` feature is
//! built in and `libcuda.so.1` and NVRTC load (checked before burn-cuda is touched, since it
//! panics when they are missing).

use std::fmt;

/// The CPU backend.
pub type Cpu = burn::backend::Flex;

/// The CPU backend with autodiff, for training ramp heads.
pub type CpuTrain = burn::backend::Autodiff<Cpu>;

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

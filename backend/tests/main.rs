//! The backend's integration tests (one binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

// Device probing and selection (`ee-backend probe`, `--device`).
mod device;
// scikit-learn's digits end to end: train-backbone, gen-data, `worker simulate` / `--local`.
mod digits;
// The real `ee-backend` in a `worker --local` sweep over a `kind = "backend"` spec
// (`digits-cnn` on generated PNG digits): inputs built once, then reused.
mod grid;
mod live;
// The CV models: site counts and shapes, staged = plain forward, the registry.
mod models;
// The NLP models, Hugging Face checkpoints, the tokenizer, the MiniLM reference check.
mod nlp;
// Profiling: statistics, rescaling, pickles, `--from-json`, the forward pass.
mod profile;
// A tiny seeded CNN implementing `StagedModel`, for the tests above.
mod tiny;
// Checkpoints: torchvision names, safetensors and torch.save zips, errors naming the tensor.
mod weights;

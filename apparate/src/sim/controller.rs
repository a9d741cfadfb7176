//! The controller state and the serving loop (spec §6.3–§6.6).

use super::adaptation::{Adaptation, BatchSignals, RunContext};
use super::bootstrap::{bootstrap, Bootstrap};
use super::config::RampConfig;
use super::error::SimError;
use super::evaluate::{batch_performance, exit_stats, ramp_utilities, EvalData};
use super::family::{accuracy_floor, Family};
use super::latency::{BatchSize, ExitLatencies, LatencyTable, LatencyTables, BATCH_SIZES};
use super::numeric::numpy_mean;
use super::policy;
use super::pyfmt::{
    py_float, py_int_float_dict, write_numpy_array, write_py_float, write_py_float_list,
    write_py_int_float_dict, write_py_int_list,
};
use super::record::{BatchRecord, FinalState, Requests, RunResult, Summary};
use super::samples::RampData;
use super::tuning::tune_thresholds;
use std::collections::BTreeMap;
use std::fmt::Write;

/// How served batches are formed from the sample stream (spec §6.3).
#[derive(Clone, Copy, Debug)]
pub enum Batching<'a> {
    /// Batch sizes from a decision file, in serving order.
    Decisions(&'a [BatchSize]),
    /// Stream chunks of `--batch_size` (the last, partial chunk is served too).
    Uniform,
}

/// One simulation run's settings (the artifact controller's flags that matter).
#[derive(Clone, Debug)]
pub struct RunSpec<'a> {
    /// `--arch`, e.g. `resnet18_auburn` or `bert-base`.
    pub arch: &'a str,
    /// `--dataset`: `video` for CV, otherwise the NLP dataset name.
    pub dataset: &'a str,
    /// `--batch_size`: the bootstrap's batch size and the uniform scheme's chunk size.
    pub batch_size: usize,
    /// Batch formation.
    pub batching: Batching<'a>,
    /// Apparate (the artifact's controller), the oracle, or a static early-exit baseline.
    pub mode: Mode,
    /// Named departures from the artifact's constants (all `None`: faithful).
    pub overrides: Overrides,
    /// Record the per-batch log lines (`serve_batch: ...`). Runs whose log is not written
    /// (baselines inside a task) turn this off; the summary line is always recorded.
    pub record_log: bool,
}

/// What is simulated on the same batches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The artifact's adaptive controller.
    #[default]
    Apparate,
    /// `--optimal_exiting`: every ramp active, a sample exits at the first ramp that answers
    /// correctly (confidence ignored), latency capped at vanilla; no adaptation (spec §6.6).
    Oracle,
    /// Static early exits (BranchyNet / DeeBERT style): a fixed ramp set whose thresholds are
    /// tuned once on the bootstrap data (the same greedy search and 1e-4 budget) and never
    /// changed; no adaptation.
    Static(StaticRamps),
}

/// The ramp set of the static early-exit baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaticRamps {
    /// A ramp at every candidate site `0 .. R-1`.
    AllSites,
    /// The ramps greedy ramp addition chose during bootstrap (the initial ramps if none).
    BootstrapChoice,
}

/// Departures from the artifact's constants for sensitivity studies. `None` keeps the
/// artifact's value; the faithful path uses `Overrides::default()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    /// `ACC_LOSS_BUDGET_ACTUAL` (artifact: 0.01): serving accuracy floor is `1 - budget`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_budget: Option<f64>,
    /// `NUM_RAMP_BUDGET` (artifact: 3 CV, 2 NLP, 1 for resnet18 and VGG).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp_budget: Option<usize>,
    /// `RAMP_CHECK_INTERVAL` (artifact: 30 CV, 100 NLP). NLP's scheduled re-tune at batch
    /// `100k + 40` moves to 40 % of the interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp_check_interval: Option<usize>,
}

/// The controller state between batches: the adaptation state it lends the policies, and
/// what only the serving loop keeps.
struct Controller<'a> {
    /// The run's settings the policies read.
    run: RunContext<'a>,
    /// What the policies change (and the log).
    state: Adaptation,
    cum_acc_num: f64,
    cum_acc_den: usize,
    /// Exit latencies of the current configuration, per batch-size index.
    lat_cache: Vec<Option<(Vec<usize>, ExitLatencies)>>,
    /// Renderings reused across log lines.
    text_cache: TextCache,
}

/// Log-text renderings that recur from batch to batch.
#[derive(Default)]
struct TextCache {
    /// The last thresholds and their Python repr.
    thresholds: (Vec<f64>, String),
    /// numpy reprs of exit-rate vectors seen so far (keyed by bits).
    exit_rates: std::collections::HashMap<Vec<u64>, String>,
}

impl Controller<'_> {
    /// `Σ acc_b·bs_b / Σ bs_b` over all batches so far (rounded sizes).
    fn cumulative_accuracy(&self) -> f64 {
        self.cum_acc_num / self.cum_acc_den as f64
    }
}

/// Runs the whole simulation: bootstrap on `boot`, then serve the stream of `sim`.
pub fn simulate(
    spec: &RunSpec<'_>,
    tables: &LatencyTables,
    boot: &RampData,
    sim: &RampData,
) -> Result<RunResult, SimError> {
    let boot_out = run_bootstrap(spec, tables, boot)?;
    simulate_after_bootstrap(spec, tables, &boot_out, boot, sim)
}

/// The bootstrap phase of `spec` alone (it depends on the arch, dataset, `--batch_size`,
/// ramp budget and bootstrap data, not on the mode or the batches), so that several modes can
/// share it through [`simulate_after_bootstrap`].
pub fn run_bootstrap(
    spec: &RunSpec<'_>,
    tables: &LatencyTables,
    boot: &RampData,
) -> Result<Bootstrap, SimError> {
    validate_bootstrap_inputs(tables, boot)?;
    let family = Family::from_dataset(spec.dataset);
    let budget = spec
        .overrides
        .ramp_budget
        .unwrap_or_else(|| family.ramp_budget(spec.arch));
    Ok(bootstrap(
        boot,
        tables.get(bootstrap_batch_size(spec)?),
        budget,
    ))
}

/// `--batch_size`: the profile the bootstrap (and the static baseline) tune with.
fn bootstrap_batch_size(spec: &RunSpec<'_>) -> Result<BatchSize, SimError> {
    BatchSize::exact(spec.batch_size).ok_or(SimError::UnsupportedBatchSize {
        batch_size: spec.batch_size,
    })
}

/// [`simulate`] with the bootstrap phase already done by [`run_bootstrap`] for the same
/// spec (except its mode) and bootstrap data.
pub fn simulate_after_bootstrap(
    spec: &RunSpec<'_>,
    tables: &LatencyTables,
    boot_out: &Bootstrap,
    boot: &RampData,
    sim: &RampData,
) -> Result<RunResult, SimError> {
    let r = boot.num_ramps();
    validate_bootstrap_inputs(tables, boot)?;
    if sim.num_ramps() < r {
        return Err(SimError::RampCountMismatch {
            bootstrap: r,
            simulation: sim.num_ramps(),
        });
    }
    let mut session = Session::start(spec, tables, boot_out, boot)?;

    // Batch formation: the stream is samples 0 .. N-2 (the last sample is never served).
    let stream_len = sim.num_samples().saturating_sub(1);
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    match spec.batching {
        Batching::Decisions(decisions) => {
            let mut start = 0;
            for d in decisions {
                let n = d.get();
                if start + n > stream_len {
                    break;
                }
                ranges.push((start, n));
                start += n;
            }
        }
        Batching::Uniform => {
            let mut start = 0;
            while start < stream_len {
                let n = spec.batch_size.min(stream_len - start);
                ranges.push((start, n));
                start += n;
            }
        }
    }
    if ranges.is_empty() {
        let first_batch = match spec.batching {
            Batching::Decisions(d) => d.first().map_or(0, |b| b.get()),
            Batching::Uniform => spec.batch_size,
        };
        return Err(SimError::NothingServed {
            samples: sim.num_samples(),
            first_batch,
        });
    }

    let total: usize = ranges.iter().map(|(_, n)| n).sum();
    session.requests = Requests::with_capacity(total);
    session.batches.reserve(ranges.len());
    for &(start, n) in &ranges {
        // What the served requests produced at the active ramps: the recorded samples.
        let ids = &session.config().ramp_ids;
        let obs = BatchObservation {
            conf: ids
                .iter()
                .map(|&a| &sim.conf[a][start..start + n])
                .collect(),
            acc: ids.iter().map(|&a| &sim.acc[a][start..start + n]).collect(),
        };
        session.observe(n, &obs)?;
    }
    Ok(session.finish(spec))
}

/// What one served batch produced, for [`Session::observe`]: for every active ramp of the
/// configuration it was served with (in the order of [`Session::config`]'s `ramp_ids`), each
/// request's confidence (max softmax) and whether the ramp agreed with the final model.
#[derive(Clone, Debug)]
pub struct BatchObservation<'b> {
    /// `conf[j][k]`: active ramp `j`'s confidence on request `k` of the batch.
    pub conf: Vec<&'b [f64]>,
    /// `acc[j][k]`: whether active ramp `j` agreed with the final model on request `k`.
    pub acc: Vec<&'b [bool]>,
}

/// The controller one batch at a time (issue #14): [`Session::config`] says which ramps and
/// thresholds serve the next batch, [`Session::observe`] takes what that batch produced,
/// decides each request's exit by the same rule, records the batch and adapts. Pure: no clock,
/// no I/O. [`simulate_after_bootstrap`] is this loop over the recorded samples.
pub struct Session<'a> {
    ctl: Controller<'a>,
    mode: Mode,
    record_log: bool,
    num_ramps: usize,
    requests: Requests,
    batches: Vec<BatchRecord>,
    bootstrap: Bootstrap,
}

impl<'a> Session<'a> {
    /// The controller of `spec` after its bootstrap phase ([`run_bootstrap`]), before the first
    /// batch.
    pub fn start(
        spec: &RunSpec<'_>,
        tables: &'a LatencyTables,
        boot_out: &Bootstrap,
        boot: &RampData,
    ) -> Result<Session<'a>, SimError> {
        validate_bootstrap_inputs(tables, boot)?;
        let family = Family::from_dataset(spec.dataset);
        let r = boot.num_ramps();
        let table0 = tables.get(bootstrap_batch_size(spec)?);
        let latest = boot_out.latest_possible_ramp;
        let config = match spec.mode {
            Mode::Apparate => RampConfig::with_zero_thresholds(boot_out.initial_ramp_ids.clone()),
            Mode::Oracle => RampConfig::with_zero_thresholds((0..r).collect()),
            Mode::Static(ramps) => static_config(ramps, boot_out, boot, table0),
        };
        let ctl = Controller {
            run: RunContext {
                family,
                floor: accuracy_floor(spec.overrides.accuracy_budget),
                interval: spec
                    .overrides
                    .ramp_check_interval
                    .unwrap_or_else(|| family.ramp_check_interval())
                    .max(1),
                latest,
                tables: std::borrow::Cow::Borrowed(tables),
            },
            state: Adaptation::new(config, r),
            cum_acc_num: 0.0,
            cum_acc_den: 0,
            lat_cache: vec![None; BATCH_SIZES.len()],
            text_cache: TextCache::default(),
        };

        Ok(Session {
            ctl,
            mode: spec.mode,
            record_log: spec.record_log,
            num_ramps: r,
            requests: Requests::with_capacity(0),
            batches: Vec::new(),
            bootstrap: boot_out.clone(),
        })
    }

    /// The requests served so far, in order (exit point, correctness and the profile's
    /// latency of each).
    pub fn requests(&self) -> &Requests {
        &self.requests
    }

    /// The number of ramps (`R`; the final exit's point is `R`).
    pub fn num_ramps(&self) -> usize {
        self.num_ramps
    }

    /// The latency tables the controller decides with.
    pub fn tables(&self) -> &LatencyTables {
        &self.ctl.run.tables
    }

    /// Replaces the latency table of batch size `bs` from the next batch on (a live server's
    /// online re-profile; never on the faithful path). `table` must have as many ramps as the
    /// current one.
    pub fn replace_table(&mut self, bs: BatchSize, table: LatencyTable) -> Result<(), SimError> {
        let current = self.ctl.run.tables.get(bs).ramps.len();
        if table.ramps.len() != current {
            return Err(SimError::RampCountMismatch {
                bootstrap: current,
                simulation: table.ramps.len(),
            });
        }
        let all: Vec<LatencyTable> = self
            .ctl
            .run
            .tables
            .iter()
            .map(|(b, t)| if b == bs { table.clone() } else { t.clone() })
            .collect();
        if let Some(tables) = LatencyTables::new(all) {
            self.ctl.run.tables = std::borrow::Cow::Owned(tables);
        }
        self.ctl.lat_cache = vec![None; BATCH_SIZES.len()];
        Ok(())
    }

    /// The active ramps and thresholds that serve the next batch.
    pub fn config(&self) -> &RampConfig {
        &self.ctl.state.config
    }

    /// Takes what the next batch of `n` requests produced at the active ramps of
    /// [`Session::config`]; returns the batch's record (the configuration it was served with,
    /// accuracy, exit rates). The adaptations show in the next [`Session::config`].
    pub fn observe(
        &mut self,
        n: usize,
        obs: &BatchObservation<'_>,
    ) -> Result<&BatchRecord, SimError> {
        let active = self.ctl.state.config.ramp_ids.len();
        let fits = |len: usize| len == n;
        if obs.conf.len() != active
            || obs.acc.len() != active
            || !obs.conf.iter().all(|c| fits(c.len()))
            || !obs.acc.iter().all(|a| fits(a.len()))
        {
            return Err(SimError::ObservationMismatch {
                active,
                requests: n,
            });
        }
        let i = self.batches.len() + 1;
        let bs = BatchSize::round_up(n).ok_or(SimError::BatchTooLarge { n })?;
        let record = serve_batch(
            &mut self.ctl,
            self.mode,
            self.record_log,
            obs,
            i,
            n,
            bs,
            self.num_ramps,
            &mut self.requests,
        )?;
        self.batches.push(record);
        Ok(&self.batches[self.batches.len() - 1])
    }

    /// The run's result: every batch and request so far, the final state, the summary line.
    pub fn finish(self, spec: &RunSpec<'_>) -> RunResult {
        let summary = summarize(&self.requests, self.batches.len());
        let state = self.ctl.state;
        let mut log = state.log;
        log.push(summary_line(spec, &summary));
        RunResult {
            bootstrap: self.bootstrap,
            final_state: FinalState {
                ramp_ids: state.config.ramp_ids,
                thresholds: state.config.thresholds,
                ramp_quota: state.ramp_quota,
                ramp_history: state.ramp_history,
            },
            batches: self.batches,
            requests: self.requests,
            summary,
            log,
        }
    }
}

/// The static baseline's configuration: its ramps, thresholds tuned once on the bootstrap data.
fn static_config(
    ramps: StaticRamps,
    boot_out: &Bootstrap,
    boot: &RampData,
    table: &LatencyTable,
) -> RampConfig {
    let ids: Vec<usize> = match ramps {
        StaticRamps::AllSites => (0..boot.num_ramps()).collect(),
        StaticRamps::BootstrapChoice if !boot_out.ramp_addition.ramp_ids.is_empty() => {
            boot_out.ramp_addition.ramp_ids.clone()
        }
        StaticRamps::BootstrapChoice => boot_out.initial_ramp_ids.clone(),
    };
    let gaps = super::bootstrap::gaps_of(boot);
    let g: Vec<&[f64]> = ids.iter().map(|&a| gaps[a].as_slice()).collect();
    let a: Vec<&[bool]> = ids.iter().map(|&a| boot.acc[a].as_slice()).collect();
    let tuned = tune_thresholds(
        &ids,
        EvalData { gaps: &g, acc: &a },
        table,
        &BTreeMap::new(),
    );
    RampConfig {
        ramp_ids: ids,
        thresholds: tuned.thresholds,
    }
}

/// What every run needs of the bootstrap data and the latency tables.
fn validate_bootstrap_inputs(tables: &LatencyTables, boot: &RampData) -> Result<(), SimError> {
    let r = boot.num_ramps();
    if r == 0 || boot.num_samples() == 0 {
        return Err(SimError::EmptyBootstrap {
            ramps: r,
            samples: boot.num_samples(),
        });
    }
    for (bs, t) in tables.iter() {
        if t.ramps.len() < r {
            return Err(SimError::LatencyTableTooShort {
                batch_size: bs.get(),
                entries: t.ramps.len(),
                ramps: r,
            });
        }
        if !(t.vanilla_ms.is_finite() && t.vanilla_ms > 0.0) {
            return Err(SimError::BadVanillaLatency {
                batch_size: bs.get(),
                value: t.vanilla_ms,
            });
        }
    }
    Ok(())
}

/// Serves batch `i` (samples `start .. start+n` of the stream) as in spec §6.4, then updates
/// the histories and runs the family's signal policy.
#[allow(clippy::too_many_arguments)]
fn serve_batch(
    ctl: &mut Controller<'_>,
    mode: Mode,
    record_log: bool,
    obs: &BatchObservation<'_>,
    i: usize,
    n: usize,
    bs: BatchSize,
    r: usize,
    requests: &mut Requests,
) -> Result<BatchRecord, SimError> {
    let table: &LatencyTable = ctl.run.tables.get(bs);
    let ids = ctl.state.config.ramp_ids.clone();
    let thresholds = ctl.state.config.thresholds.clone();
    let lat = match &ctl.lat_cache[bs.index()] {
        Some((cached_ids, lat)) if *cached_ids == ids => lat.clone(),
        _ => {
            let lat = table.exit_latencies(&ids);
            ctl.lat_cache[bs.index()] = Some((ids.clone(), lat.clone()));
            lat
        }
    };
    let v = lat.vanilla_ms;
    let j_final = ids.len();
    let mut lats = Vec::with_capacity(n);
    let mut correct = Vec::with_capacity(n);
    let mut exits = Vec::with_capacity(n);
    for k in 0..n {
        let pos = if mode == Mode::Oracle {
            obs.acc.iter().position(|acc| acc[k])
        } else {
            thresholds
                .iter()
                .zip(&obs.conf)
                .position(|(&t, conf)| (1.0 - conf[k]) < t)
        };
        let (mut l, e, c) = match pos {
            Some(j) => (lat.per_exit[j], ids[j], obs.acc[j][k]),
            None => (lat.per_exit[j_final], r, true),
        };
        if mode == Mode::Oracle {
            l = l.min(v);
        }
        lats.push(l);
        correct.push(c);
        exits.push(e);
    }
    let perf = batch_performance(&lats, &correct, &exits, &ids, r, v);
    let violated = perf.acc < ctl.run.floor;
    ctl.cum_acc_num += perf.acc * bs.get() as f64;
    ctl.cum_acc_den += bs.get();
    if violated {
        ctl.state.violation_counter += 1;
    }
    let (_, ramp_acc) = exit_stats(&exits, &correct);
    if record_log {
        let mut line = String::with_capacity(160 + 16 * ids.len());
        let _ = write!(
            line,
            "serve_batch: batch {i}, current bs {}, ramp_ids ",
            bs.get()
        );
        write_py_int_list(&mut line, &ids);
        line.push_str(", thresholds ");
        // Thresholds change only when the controller re-tunes: reuse the last rendering.
        if ctl.text_cache.thresholds.0 != thresholds {
            let mut t = String::new();
            write_py_float_list(&mut t, &thresholds);
            ctl.text_cache.thresholds = (thresholds.clone(), t);
        }
        line.push_str(&ctl.text_cache.thresholds.1);
        line.push_str(", actual acc ");
        write_py_float(&mut line, perf.acc);
        line.push_str(", latency_improvement ");
        write_py_float(&mut line, perf.li);
        line.push_str(", exit_rate ");
        // Exit rates are counts over at most 64 samples: few distinct vectors recur.
        let key: Vec<u64> = perf.er.iter().map(|x| x.to_bits()).collect();
        let er_text = ctl.text_cache.exit_rates.entry(key).or_insert_with(|| {
            let mut t = String::new();
            write_numpy_array(&mut t, &perf.er);
            t
        });
        line.push_str(er_text);
        line.push_str(", ramp acc ");
        write_py_int_float_dict(&mut line, &ramp_acc);
        ctl.state.log.push(line);
    }
    for k in 0..n {
        requests.push(i, bs.get(), exits[k], correct[k], lats[k], v);
    }

    // History update (§6.5); only the adaptive controller reads it.
    if mode == Mode::Apparate {
        ctl.state.history.record_samples(&ids, n, |a| {
            // The first active ramp with this id (ids are sorted; a repeated id has the same
            // samples).
            let j = ids.iter().position(|&b| b == a).unwrap_or(0);
            let g = obs.conf[j].iter().map(|&c| 1.0 - c).collect();
            (g, obs.acc[j].to_vec())
        });
        let utilities = ramp_utilities(&perf.er, &lat, &ids, table);
        ctl.state
            .history
            .record_utilities(&ids, perf.er.clone(), n, &utilities);
        let batch = BatchSignals {
            i,
            bs,
            violated,
            cumulative_accuracy: ctl.cumulative_accuracy(),
            li: perf.li,
            ramp_acc: &ramp_acc,
        };
        policy::check_signals(&mut ctl.state, &ctl.run, &batch)?;
    }
    if i.is_multiple_of(ctl.run.interval) {
        let ramp_ids = ctl.state.config.ramp_ids.clone();
        ctl.state.ramp_history.push(ramp_ids);
    }
    Ok(BatchRecord {
        batch: i,
        n,
        bs: bs.get(),
        ramp_ids: ids,
        thresholds,
        acc: perf.acc,
        latency_improvement: perf.li,
        exit_rate: perf.er,
        ramp_acc,
    })
}

fn summarize(requests: &Requests, num_batches: usize) -> Summary {
    let n = requests.len();
    let num_correct = requests.correct.iter().filter(|&&c| c).count();
    let overall_accuracy = 100.0 * (num_correct as f64 / n as f64);
    let improvements: Vec<f64> = requests
        .inference_ms
        .iter()
        .zip(&requests.vanilla_ms)
        .map(|(&l, &v)| (v - l) / v)
        .collect();
    let overall_latency_improvement = 100.0 * numpy_mean(&improvements);
    let (exit_rate, ramp_accuracy) = exit_stats(&requests.exit_point, &requests.correct);
    Summary {
        overall_accuracy,
        overall_latency_improvement,
        exit_rate,
        ramp_accuracy,
        num_requests: n,
        num_batches,
    }
}

fn summary_line(spec: &RunSpec<'_>, s: &Summary) -> String {
    format!(
        "[{}, {}]: Serving with complete, overall accuracy {}%, overall serving latency improvement {}%, overall exit rate {}, overall ramp accuracy {}",
        spec.arch,
        spec.dataset,
        py_float(s.overall_accuracy),
        py_float(s.overall_latency_improvement),
        py_int_float_dict(&s.exit_rate),
        py_int_float_dict(&s.ramp_accuracy),
    )
}

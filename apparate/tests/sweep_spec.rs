//! Sweep specs: parsing, checks that name the offending key, the built-in paper grid, expansion
//! order, canonical forms and task keys.

use crate::util::{auburn_data, auburn_task_over, copy_tree, fresh_temp_dir};
use apparate::ids::TaskKey;
use apparate::sim::{Family, Overrides};
use apparate::sweep::key::task_key;
use apparate::sweep::{Plan, SpecError, SweepSpec, BUILTIN_SPEC_TOML};
use apparate::task::{BatchingScheme, Inputs, TaskTrace};
use apparate::traces::TraceSpec;
use apparate::workload::{stream_len, CV_DATASETS, CV_MODELS, NLP_DATASETS, NLP_MODELS};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

const EMBEDDED_HEAD: &str = r#"
name = "t"
[inputs]
kind = "embedded"
scale = 0.01
[traces.v]
kind = "fixed"
qps = 30
"#;

const CV_GRID: &str = r#"
[[grid]]
name = "cv"
models = ["resnet18"]
datasets = ["auburn"]
traces = ["v"]
slo_multiplier = [1]
batch_size = [4]
"#;

fn plan_of(text: &str) -> Result<Plan, SpecError> {
    SweepSpec::from_toml(text, "test.toml", Path::new("."))?.plan()
}

fn error_of(text: &str) -> String {
    match plan_of(text) {
        Ok(p) => panic!("spec accepted ({} tasks):\n{text}", p.len()),
        Err(e) => e.to_string(),
    }
}

fn keys(plan: &Plan) -> Vec<String> {
    plan.tasks().map(|t| t.key.to_string()).collect()
}

#[test]
fn the_builtin_spec_is_the_papers_56_tasks_in_the_artifacts_job_order() {
    let plan = SweepSpec::builtin().expect("parses").plan().expect("valid");
    assert_eq!(plan.len(), 56);
    let grids = plan.grids();
    assert_eq!(grids.len(), 2);
    assert_eq!(
        (grids[0].name.as_str(), grids[0].tasks.clone()),
        ("cv", 0..48)
    );
    assert_eq!(
        (grids[1].name.as_str(), grids[1].tasks.clone()),
        ("nlp", 48..56)
    );
    let tasks: Vec<_> = plan.tasks().collect();
    // Outer loop datasets, inner loop models (spec §1.3).
    for (i, t) in tasks[..48].iter().enumerate() {
        let s = &t.spec;
        assert_eq!(t.index, i);
        assert_eq!(s.grid, "cv");
        assert_eq!(s.family, Family::Cv);
        assert_eq!(s.dataset, CV_DATASETS[i / 6]);
        assert_eq!(s.model, CV_MODELS[i % 6]);
        assert_eq!(s.params.slo_multiplier, 2.0);
        assert_eq!(s.params.batch_size, 4);
        assert_eq!(s.params.batching, BatchingScheme::Clockwork);
        assert_eq!(s.params.overrides, Overrides::default());
        assert_eq!(s.inputs, Inputs::Embedded { scale: 1.0 });
        assert_eq!(
            s.trace,
            TaskTrace::Generated {
                name: "video30".into(),
                spec: TraceSpec::Fixed {
                    n: 70_000,
                    qps: 30.0
                }
            }
        );
    }
    for (i, t) in tasks[48..].iter().enumerate() {
        let s = &t.spec;
        assert_eq!(s.grid, "nlp");
        assert_eq!(s.family, Family::Nlp);
        assert_eq!(s.dataset, NLP_DATASETS[i / 4]);
        assert_eq!(s.model, NLP_MODELS[i % 4]);
        assert_eq!(s.params.batch_size, 1);
        match &s.trace {
            TaskTrace::Generated {
                name,
                spec: TraceSpec::SyntheticAzure { n, seed, shape },
            } => {
                assert_eq!(name, "azure");
                // The same trace as `worker gen-data` writes for the model.
                let v1 = apparate::workload::models::preset(&s.model)
                    .expect("preset")
                    .v1_ms;
                assert_eq!(*shape, apparate::gendata::nlp_trace_shape(v1, *n));
                assert_eq!(
                    shape.minutes,
                    (*n as f64 * v1 / 60_000.0).ceil() as usize,
                    "load 1.0: requests arrive as fast as batch 1 serves them"
                );
                // One trace per model for both review datasets: the longest stream (Amazon).
                assert_eq!(Some(*n), stream_len("amazon_reviews", 1.0));
                assert_eq!(*seed, 0, "seed omitted: the task's seed");
            }
            other => panic!("unexpected trace {other:?}"),
        }
    }
    let unique: HashSet<String> = keys(&plan).into_iter().collect();
    assert_eq!(unique.len(), 56, "keys are unique");
    assert!(tasks[0]
        .key
        .as_str()
        .starts_with("cv-resnet18-auburn-video30-slo2-bs4-"));
    assert!(tasks[55]
        .key
        .as_str()
        .starts_with("nlp-gpt2-medium-imdb-azure-slo32-bs1-"));
}

#[test]
fn the_shipped_spec_files_parse_and_paper_toml_is_the_builtin() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let paper = std::fs::read_to_string(root.join("specs/paper.toml")).expect("paper.toml");
    assert_eq!(paper, BUILTIN_SPEC_TOML);
    let sens = SweepSpec::load(&root.join("specs/example-sensitivity.toml"))
        .expect("parses")
        .plan()
        .expect("valid");
    // accuracy 2x2x4x2 + ramps 3x3x2 + batching 2x2x2x2 + nlp 2x2.
    assert_eq!(sens.len(), 32 + 18 + 16 + 4);
    let unique: HashSet<String> = keys(&sens).into_iter().collect();
    assert_eq!(unique.len(), sens.len());
}

#[test]
fn keys_are_path_safe_and_stable() {
    let plan = SweepSpec::builtin().expect("parses").plan().expect("valid");
    for t in plan.tasks() {
        let k = t.key.as_str();
        assert!(TaskKey::parse(k).is_ok(), "{k}");
        assert!(!k.contains('/') && !k.contains('\\') && !k.starts_with('.'));
        assert_eq!(plan.task(t.index).expect("task").key, t.key, "recomputed");
    }
    // A pinned key: canonical JSON, the task spec's serialisation and the slug must not drift
    // without notice (a change here re-runs every sweep; bump RESULTS_VERSION on purpose).
    let mut spec = auburn_task_over("/somewhere".into());
    spec.params.overrides = Overrides {
        accuracy_budget: Some(0.02),
        ..Overrides::default()
    };
    let digests = BTreeMap::from([("a/b.pickle".to_string(), "00ff".to_string())]);
    let key = task_key(&spec, &digests, "pinned");
    assert_eq!(
        key.as_str(),
        "cv-resnet18-auburn-fixed_30-slo1-bs4-acc0.02-8f839fdce831dd72"
    );
    // The artifact folder's location is not part of the key.
    let mut moved = spec.clone();
    moved.inputs = Inputs::Artifact {
        dir: "/elsewhere/data".into(),
    };
    assert_eq!(task_key(&moved, &digests, "pinned"), key);
    // Contents are.
    let other = BTreeMap::from([("a/b.pickle".to_string(), "00fe".to_string())]);
    assert_ne!(task_key(&spec, &other, "pinned"), key);
    assert_ne!(task_key(&spec, &digests, "pinned2"), key);
}

#[test]
fn a_parameter_equal_to_the_artifacts_default_gives_the_same_key_as_omitting_it() {
    let base = format!("{EMBEDDED_HEAD}{CV_GRID}");
    let plain = keys(&plan_of(&base).expect("valid"));
    for extra in [
        "accuracy_budget = [0.01]",
        "ramp_budget = [1]",     // resnet18's budget
        "check_interval = [30]", // CV's interval
        "static_ramps = [\"all_sites\"]",
        "batching = [\"clockwork\"]",
    ] {
        let text = format!("{base}{extra}\n");
        assert_eq!(keys(&plan_of(&text).expect("valid")), plain, "{extra}");
    }
    // n written as the stream length, and seeds written as the default.
    let n = stream_len("auburn", 0.01).expect("known dataset");
    let explicit = base
        .replace("qps = 30\n", &format!("qps = 30\nn = {n}\n"))
        .replace("name = \"t\"\n", "name = \"t\"\nseeds = [0]\n");
    assert_eq!(keys(&plan_of(&explicit).expect("valid")), plain);
    // A value that differs from the default changes the key.
    for extra in [
        "accuracy_budget = [0.02]",
        "ramp_budget = [2]",
        "check_interval = [31]",
    ] {
        let text = format!("{base}{extra}\n");
        assert_ne!(keys(&plan_of(&text).expect("valid")), plain, "{extra}");
    }
    // A synthetic Azure trace without a seed takes the task's seed.
    let nlp = |seed_line: &str| {
        format!(
            "name = \"t\"\nseeds = [0, 5]\n[inputs]\nkind = \"embedded\"\nscale = 0.01\n[traces.a]\nkind = \"synthetic_azure\"\n{seed_line}\n[[grid]]\nname = \"nlp\"\nmodels = [\"bert-base\"]\ndatasets = [\"imdb\"]\ntraces = [\"a\"]\nslo_multiplier = [4]\nbatch_size = [1]\n"
        )
    };
    let omitted = plan_of(&nlp("")).expect("valid");
    let seeds: Vec<u64> = omitted
        .tasks()
        .map(|t| match t.spec.trace {
            TaskTrace::Generated {
                spec: TraceSpec::SyntheticAzure { seed, .. },
                ..
            } => seed,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(seeds, vec![0, 5]);
    let written = plan_of(&nlp("seed = 0")).expect("valid");
    assert_eq!(keys(&omitted)[0], keys(&written)[0]);
    assert_ne!(keys(&omitted)[1], keys(&written)[1]);
}

#[test]
fn grids_expand_in_listed_order_with_seeds_innermost() {
    let text = format!(
        "{}{}accuracy_budget = [0.02, 0.05]\nbatch_size = [4, 8]\n",
        EMBEDDED_HEAD.replace("name = \"t\"\n", "name = \"t\"\nseeds = [1, 2]\n"),
        CV_GRID.replace("batch_size = [4]\n", "")
    );
    let plan = plan_of(&text).expect("valid");
    let got: Vec<(usize, Option<f64>, u64)> = plan
        .tasks()
        .map(|t| {
            (
                t.spec.params.batch_size,
                t.spec.params.overrides.accuracy_budget,
                t.spec.seed,
            )
        })
        .collect();
    let want = vec![
        (4, Some(0.02), 1),
        (4, Some(0.02), 2),
        (4, Some(0.05), 1),
        (4, Some(0.05), 2),
        (8, Some(0.02), 1),
        (8, Some(0.02), 2),
        (8, Some(0.05), 1),
        (8, Some(0.05), 2),
    ];
    assert_eq!(got, want);
}

/// (what is changed, the spec's text, a fragment the message must contain)
fn bad_specs() -> Vec<(&'static str, String, &'static str)> {
    let cv = |grid: &str| format!("{EMBEDDED_HEAD}{grid}");
    let grid = |from: &str, to: &str| cv(&CV_GRID.replace(from, to));
    let with = |extra: &str| cv(&format!("{CV_GRID}{extra}\n"));
    vec![
        (
            "unknown model",
            grid("[\"resnet18\"]", "[\"resnet18\", \"resnet19\"]"),
            "grid[0].models[1]: unknown model \"resnet19\"; expected one of resnet18,",
        ),
        (
            "unknown dataset",
            grid("[\"auburn\"]", "[\"auburm\"]"),
            "grid[0].datasets[0]: unknown dataset \"auburm\"",
        ),
        (
            "dataset of the other family",
            grid("[\"auburn\"]", "[\"imdb\"]"),
            "grid[0].datasets[0]: dataset \"imdb\" is NLP but the grid's models are CV",
        ),
        (
            "models of both families",
            grid("[\"resnet18\"]", "[\"resnet18\", \"bert-base\"]"),
            "grid[0].models[1]: model \"bert-base\" is NLP",
        ),
        (
            "unknown trace",
            grid("traces = [\"v\"]", "traces = [\"w\"]"),
            "grid[0].traces[0]: unknown trace \"w\"; defined under [traces]: v",
        ),
        (
            "unknown top-level key",
            format!("colour = 1\n{EMBEDDED_HEAD}{CV_GRID}"),
            "unknown field `colour`",
        ),
        (
            "unknown grid key",
            with("batch_sizes = [4]"),
            "unknown field `batch_sizes`",
        ),
        (
            "wrong type in a list",
            grid("batch_size = [4]", "batch_size = [4, \"x\"]"),
            "batch_size = [4, \"x\"]",
        ),
        (
            "scale of the wrong type",
            cv(CV_GRID).replace("scale = 0.01", "scale = \"big\""),
            "scale = \"big\"",
        ),
        (
            "scale out of range",
            cv(CV_GRID).replace("scale = 0.01", "scale = 0"),
            "inputs.scale: 0 is out of range",
        ),
        (
            "qps out of range",
            cv(CV_GRID).replace("qps = 30", "qps = -1"),
            "traces.v.qps: -1 is out of range",
        ),
        (
            "qps of the wrong type",
            cv(CV_GRID).replace("qps = 30", "qps = \"30\""),
            "traces.v.qps: expected a number",
        ),
        (
            "unknown trace key",
            cv(CV_GRID).replace("qps = 30", "qps = 30\nqsp = 1"),
            "traces.v: unknown field `qsp`",
        ),
        (
            "load on a fixed trace",
            cv(CV_GRID).replace("qps = 30", "qps = 30\nload = 1.0"),
            "traces.v.load: only a `synthetic_azure` trace takes a load",
        ),
        (
            "load out of range",
            cv(CV_GRID).replace(
                "[traces.v]\nkind = \"fixed\"\nqps = 30",
                "[traces.v]\nkind = \"synthetic_azure\"\nload = 0",
            ),
            "traces.v.load: 0 is out of range",
        ),
        (
            "load of the wrong type",
            cv(CV_GRID).replace(
                "[traces.v]\nkind = \"fixed\"\nqps = 30",
                "[traces.v]\nkind = \"synthetic_azure\"\nload = \"high\"",
            ),
            "traces.v.load: expected a number",
        ),
        (
            "load and a span",
            cv(CV_GRID).replace(
                "[traces.v]\nkind = \"fixed\"\nqps = 30",
                "[traces.v]\nkind = \"synthetic_azure\"\nload = 1\nshape = { minutes = 60 }",
            ),
            "traces.v.load: give either `load` or `shape.minutes`",
        ),
        (
            "slo multiplier out of range",
            grid("slo_multiplier = [1]", "slo_multiplier = [1, 0]"),
            "grid[0].slo_multiplier[1]: 0 is out of range",
        ),
        (
            "unprofiled batch size",
            grid("batch_size = [4]", "batch_size = [3]"),
            "grid[0].batch_size[0]: 3 is not a profiled batch size",
        ),
        (
            "accuracy budget out of range",
            with("accuracy_budget = [0.01, 1.0]"),
            "grid[0].accuracy_budget[1]: 1 is out of range",
        ),
        (
            "ramp budget zero",
            with("ramp_budget = [0]"),
            "grid[0].ramp_budget[0]: 0 is out of range",
        ),
        (
            "value listed twice",
            grid("[\"resnet18\"]", "[\"resnet18\", \"resnet18\"]"),
            "grid[0].models[1]: \"resnet18\" is listed twice",
        ),
        (
            "empty list",
            grid("[\"resnet18\"]", "[]"),
            "grid[0].models: must list at least one value",
        ),
        (
            "grid name with capitals",
            grid("name = \"cv\"", "name = \"CV\""),
            "grid[0].name: grid name \"CV\" is not allowed",
        ),
        (
            "two grids of one name",
            cv(&format!("{CV_GRID}{CV_GRID}")),
            "grid[1].name: \"cv\" is already the name of grid[0]",
        ),
        (
            "recorded decisions with embedded inputs",
            format!(
                "{EMBEDDED_HEAD}[traces.d]\nsource = \"artifact_decisions\"\nfile = \"x.pickle\"\n{}",
                CV_GRID.replace("traces = [\"v\"]", "traces = [\"d\"]")
            ),
            "grid[0].traces[0]: trace \"d\" is a recorded decision file, which needs artifact inputs",
        ),
        (
            "scale with artifact inputs",
            cv(CV_GRID).replace("kind = \"embedded\"", "kind = \"artifact\""),
            "inputs.scale: only allowed with kind = \"embedded\"",
        ),
        (
            "no grid",
            EMBEDDED_HEAD.to_string(),
            "missing field `grid`",
        ),
    ]
}

#[test]
fn a_bad_spec_is_refused_with_a_message_naming_the_key() {
    for (what, text, want) in bad_specs() {
        let msg = error_of(&text);
        assert!(
            msg.contains(want),
            "{what}: message does not contain {want:?}:\n{msg}"
        );
    }
}

fn artifact_spec(dir: &Path, traces: &str, grid_traces: &str) -> String {
    format!(
        "name = \"a\"\n[inputs]\nkind = \"artifact\"\ndir = {dir:?}\n{traces}\n[[grid]]\nname = \"cv\"\nmodels = [\"resnet18\"]\ndatasets = [\"auburn\"]\ntraces = [{grid_traces}]\nslo_multiplier = [1]\nbatch_size = [4]\n",
        dir = dir.display().to_string()
    )
}

const FIXED_30: &str =
    "[traces.fixed_30]\nsource = \"artifact_decisions\"\nfile = \"{model}_{slo}_fixed_30.pickle\"\n";

#[test]
fn artifact_inputs_are_hashed_and_their_location_is_not_part_of_the_key() {
    let plan = plan_of(&artifact_spec(&auburn_data(), FIXED_30, "\"fixed_30\"")).expect("valid");
    assert_eq!(plan.len(), 1);
    let t = plan.task(0).expect("task");
    assert_eq!(
        t.spec.trace,
        TaskTrace::ArtifactDecisions {
            name: "fixed_30".into(),
            file: "resnet18_1_fixed_30.pickle".into()
        }
    );
    // Bootstrap, simulation, 14 profiles, the decision file.
    assert_eq!(t.digests.len(), 17);
    assert!(t
        .digests
        .contains_key("batch_decisions/resnet18_1_fixed_30.pickle"));
    assert!(t.digests.values().all(|d| d.len() == 64));
    let copy = fresh_temp_dir("spec-moved").join("data");
    copy_tree(&auburn_data(), &copy);
    let moved = plan_of(&artifact_spec(&copy, FIXED_30, "\"fixed_30\"")).expect("valid");
    assert_eq!(moved.task(0).expect("task").key, t.key);
    // Change one byte of one input: a new key.
    let sim = copy.join("simulation_pickles/auburn_resnet18.pickle");
    let mut bytes = std::fs::read(&sim).expect("read");
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    std::fs::write(&sim, bytes).expect("write");
    let changed = plan_of(&artifact_spec(&copy, FIXED_30, "\"fixed_30\"")).expect("valid");
    assert_ne!(changed.task(0).expect("task").key, t.key);
    let _ = std::fs::remove_dir_all(copy.parent().expect("parent"));
}

#[test]
fn a_missing_artifact_file_is_refused_naming_the_file_and_the_task() {
    let copy = fresh_temp_dir("spec-missing").join("data");
    copy_tree(&auburn_data(), &copy);
    std::fs::remove_file(copy.join("profile_pickles_bs/resnet18_8_profile.pickle")).expect("rm");
    let msg = error_of(&artifact_spec(&copy, FIXED_30, "\"fixed_30\""));
    assert!(
        msg.contains("task cv/resnet18/auburn/fixed_30: missing input file")
            && msg.contains("resnet18_8_profile.pickle"),
        "{msg}"
    );
    let trace =
        "[traces.other]\nsource = \"artifact_decisions\"\nfile = \"{model}_azure.pickle\"\n";
    let msg = error_of(&artifact_spec(&copy, trace, "\"other\""));
    assert!(
        msg.contains("resnet18_8_profile.pickle (and 1 more missing file)"),
        "{msg}"
    );
    let msg = error_of(&artifact_spec(&copy.join("nope"), FIXED_30, "\"fixed_30\""));
    assert!(msg.starts_with("inputs.dir: "), "{msg}");
    let bad_placeholder = FIXED_30.replace("{model}", "{modle}");
    let msg = error_of(&artifact_spec(&copy, &bad_placeholder, "\"fixed_30\""));
    assert!(
        msg.contains("traces.fixed_30.file: unknown placeholder {modle}"),
        "{msg}"
    );
    let synthetic = "[traces.az]\nkind = \"synthetic_azure\"\n";
    let msg = error_of(&artifact_spec(&copy, synthetic, "\"az\""));
    assert!(
        msg.starts_with("traces.az.n: required with artifact inputs"),
        "{msg}"
    );
    let _ = std::fs::remove_dir_all(copy.parent().expect("parent"));
}

/// Issue #11 item 7: every numeric key of a spec, out of its documented range, is refused by
/// `plan` with the key's path and the range, instead of passing the plan and failing (or
/// quietly serving almost nothing in) every task. (what, spec text, key path, range fragment)
fn out_of_range_specs() -> Vec<(&'static str, String, String, &'static str)> {
    let cv = |grid: &str| format!("{EMBEDDED_HEAD}{grid}");
    let grid = |from: &str, to: &str| cv(&CV_GRID.replace(from, to));
    let with = |extra: &str| cv(&format!("{CV_GRID}{extra}\n"));
    let trace = |body: &str| {
        cv(CV_GRID).replace(
            "[traces.v]\nkind = \"fixed\"\nqps = 30",
            &format!("[traces.v]\n{body}"),
        )
    };
    let synthetic = |shape: &str| {
        trace(&format!(
            "kind = \"synthetic_azure\"\nshape = {{ {shape} }}"
        ))
    };
    let s = |x: &str| x.to_string();
    let mut cases = vec![
        ("sweep name with a slash", EMBEDDED_HEAD.replace("name = \"t\"", "name = \"../up\"") + CV_GRID, s("name"), "sweep name \"../up\" is not allowed"),
        ("sweep name empty", EMBEDDED_HEAD.replace("name = \"t\"", "name = \"\"") + CV_GRID, s("name"), "use 1 to 40 characters"),
        ("scale tiny", cv(CV_GRID).replace("scale = 0.01", "scale = 1e-300"), s("inputs.scale"), "1e-300 is out of range; expected a number in [0.001, 10]"),
        ("scale nan", cv(CV_GRID).replace("scale = 0.01", "scale = nan"), s("inputs.scale"), "NaN is out of range"),
        ("qps tiny", cv(CV_GRID).replace("qps = 30", "qps = 1e-300"), s("traces.v.qps"), "1e-300 is out of range; expected at least"),
        ("qps tiny, n given", cv(CV_GRID).replace("qps = 30", "qps = 1e-9\nn = 10"), s("traces.v.qps"), "span at most 1000000 minutes"),
        ("qps huge", cv(CV_GRID).replace("qps = 30", "qps = 1e308"), s("traces.v.qps"), "1e308 is out of range; expected a finite number of requests per second in (0, 1000000]"),
        ("qps nan", cv(CV_GRID).replace("qps = 30", "qps = nan"), s("traces.v.qps"), "NaN is out of range"),
        ("qps inf", cv(CV_GRID).replace("qps = 30", "qps = inf"), s("traces.v.qps"), "inf is out of range"),
        ("n zero", cv(CV_GRID).replace("qps = 30", "qps = 30\nn = 0"), s("traces.v.n"), "expected 1 to 100,000,000 requests"),
        ("n huge", cv(CV_GRID).replace("qps = 30", "qps = 30\nn = 100000001"), s("traces.v.n"), "expected 1 to 100,000,000 requests"),
        ("poisson seed past u32", trace("kind = \"poisson\"\nqps = 30\nseed = 5000000000"), s("traces.v.seed"), "0 to 4294967295"),
        ("synthetic n zero", trace("kind = \"synthetic_azure\"\nn = 0"), s("traces.v.n"), "1 to 100,000,000"),
        ("minutes zero", synthetic("minutes = 0"), s("traces.v.shape.minutes"), "0 is out of range; expected 1 to 1,000,000"),
        ("minutes 1e9", synthetic("minutes = 1000000000"), s("traces.v.shape.minutes"), "expected 1 to 1,000,000"),
        ("start minute past a day", synthetic("start_minute = 1440"), s("traces.v.shape.start_minute"), "0 to 1439"),
        ("diurnal amplitude 5", synthetic("diurnal_amplitude = 5.0"), s("traces.v.shape.diurnal_amplitude"), "5 is out of range; expected in [0, 1)"),
        ("peak minute negative", synthetic("peak_minute = -1.0"), s("traces.v.shape.peak_minute"), "[0, 1440)"),
        ("peak minute nan", synthetic("peak_minute = nan"), s("traces.v.shape.peak_minute"), "NaN is out of range"),
        ("off fraction 1", synthetic("off_fraction = 1.0"), s("traces.v.shape.off_fraction"), "in [0, 1)"),
        ("mean off minutes huge", synthetic("mean_off_minutes = 1e9"), s("traces.v.shape.mean_off_minutes"), "[1, 1000000]"),
        ("minute sigma 1e6", synthetic("minute_sigma = 1e6"), s("traces.v.shape.minute_sigma"), "in [0, 10]"),
        ("burst size 0", synthetic("burst_size = 0.0"), s("traces.v.shape.burst_size"), "[1, 1000000]"),
        ("burst size nan", synthetic("burst_size = nan"), s("traces.v.shape.burst_size"), "NaN is out of range"),
        ("burst spread inf", synthetic("burst_spread_ms = inf"), s("traces.v.shape.burst_spread_ms"), "(0, 60000]"),
        ("minutes negative", synthetic("minutes = -5"), s("traces.v.shape.minutes"), "expected a non-negative integer, found integer -5"),
        ("minutes fractional", synthetic("minutes = 1.5"), s("traces.v.shape.minutes"), "expected a non-negative integer"),
        ("burst size a string", synthetic("burst_size = \"8\""), s("traces.v.shape.burst_size"), "expected a number"),
        ("azure row negative", trace("kind = \"azure_csv\"\npath = \"Cargo.toml\"\nfunction = { row = -1 }"), s("traces.v.function.row"), "expected a non-negative integer"),
        ("load tiny", trace("kind = \"synthetic_azure\"\nload = 1e-300"), s("traces.v.load"), "expected a load that keeps the span at most 1000000 minutes"),
        ("load nan", trace("kind = \"synthetic_azure\"\nload = nan"), s("traces.v.load"), "NaN is out of range"),
        ("azure cap zero", trace("kind = \"azure_csv\"\npath = \"Cargo.toml\"\ncap = 0"), s("traces.v.cap"), "1 to 100,000,000"),
        ("slo infinite", grid("slo_multiplier = [1]", "slo_multiplier = [1e308]"), s("grid[0].slo_multiplier[0]"), "1e308 is out of range; expected a number in [1, 1000]"),
        ("slo below the batch-1 latency", grid("slo_multiplier = [1]", "slo_multiplier = [0.5]"), s("grid[0].slo_multiplier[0]"), "[1, 1000]"),
        ("slo nan", grid("slo_multiplier = [1]", "slo_multiplier = [nan]"), s("grid[0].slo_multiplier[0]"), "NaN is out of range"),
        ("batch size huge", grid("batch_size = [4]", "batch_size = [4096]"), s("grid[0].batch_size[0]"), "1, 2, 4, 8, 16, 32, 64"),
        ("accuracy budget nan", with("accuracy_budget = [nan]"), s("grid[0].accuracy_budget[0]"), "NaN is out of range; expected a number in (0, 1)"),
        ("ramp budget huge", with("ramp_budget = [1000]"), s("grid[0].ramp_budget[0]"), "expected an integer in [1, 100]"),
        ("check interval huge", with("check_interval = [10000000]"), s("grid[0].check_interval[0]"), "expected an integer in [1, 1000000]"),
    ];
    // A list too long to check for repeats in reasonable time.
    let many: Vec<String> = (0..10_001).map(|i| i.to_string()).collect();
    cases.push((
        "ten thousand and one seeds",
        EMBEDDED_HEAD.replace(
            "name = \"t\"\n",
            &format!("name = \"t\"\nseeds = [{}]\n", many.join(", ")),
        ) + CV_GRID,
        s("seeds"),
        "lists 10001 values; expected at most 10000",
    ));
    // More than a million tasks: 1,000 seeds x 1,001 SLO multipliers.
    let seeds: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    let slos: Vec<String> = (0..1001)
        .map(|i| format!("{}", 1.0 + i as f64 / 2.0))
        .collect();
    cases.push((
        "a million tasks",
        EMBEDDED_HEAD.replace(
            "name = \"t\"\n",
            &format!("name = \"t\"\nseeds = [{}]\n", seeds.join(", ")),
        ) + &CV_GRID.replace(
            "slo_multiplier = [1]",
            &format!("slo_multiplier = [{}]", slos.join(", ")),
        ),
        s("grid[0]"),
        "more than 1000000 tasks",
    ));
    cases
}

#[test]
fn issue11_every_numeric_key_out_of_range_is_refused_by_plan_naming_the_key_and_range() {
    for (what, text, key, want) in out_of_range_specs() {
        let msg = error_of(&text);
        assert!(
            msg.starts_with(&format!("{key}: ")) && msg.contains(want) && !msg.contains('\n'),
            "{what}: expected one line `{key}: ...{want}...`, got:\n{msg}"
        );
    }
}

#[test]
fn issue11_values_at_the_edges_of_the_ranges_plan_and_generate() {
    use apparate::traces::{generate, MAX_SPAN_MINUTES};
    // The slowest rate the 700 requests of a 0.01-scale video may have, and a shape at its
    // documented limits: both plan, and every task's trace generates within the span.
    let n = stream_len("auburn", 0.01).expect("auburn");
    let slowest = (n - 1) as f64 / (MAX_SPAN_MINUTES as f64 * 60.0);
    let text = format!(
        "{}[traces.s]\nkind = \"synthetic_azure\"\nn = 50\nshape = {{ minutes = 1000000, start_minute = 1439, peak_minute = 1439.5, diurnal_amplitude = 0.99, off_fraction = 0.5, mean_off_minutes = 1000000.0, minute_sigma = 10.0, burst_size = 1000000.0, burst_spread_ms = 60000.0 }}\n{}",
        EMBEDDED_HEAD.replace("qps = 30", &format!("qps = {slowest:e}")),
        CV_GRID
            .replace("traces = [\"v\"]", "traces = [\"v\", \"s\"]")
            .replace("slo_multiplier = [1]", "slo_multiplier = [1, 1000]")
    );
    let plan = plan_of(&text).expect("valid at the edges");
    for t in plan.tasks() {
        let TaskTrace::Generated { spec, .. } = &t.spec.trace else {
            panic!("generated")
        };
        let arrivals = generate(spec).expect("generates");
        let last = arrivals.last().copied().expect("arrivals");
        // (The fixed trace's gaps are summed one by one, so its end may round a hair past.)
        assert!(
            last <= MAX_SPAN_MINUTES as f64 * 60_000.0 * (1.0 + 1e-12),
            "{last}"
        );
    }
}

/// Issue #11 item 7: an `azure_csv` trace is read at plan time, so a function that is not in
/// the file, or has no invocations, is refused by `plan` naming the key, not by every task.
#[test]
fn issue11_an_azure_csv_function_that_is_missing_or_empty_is_refused_by_plan() {
    let dir = crate::util::fresh_temp_dir("azure-plan");
    let minutes: Vec<String> = (1..=1440).map(|m| m.to_string()).collect();
    let zeros = vec!["0"; 1440].join(",");
    let ones = vec!["1"; 1440].join(",");
    std::fs::write(
        dir.join("day.csv"),
        format!(
            "HashOwner,HashApp,HashFunction,Trigger,{}\no,a,f0,http,{zeros}\no,a,f1,http,{ones}\n",
            minutes.join(",")
        ),
    )
    .expect("csv");
    let spec = |function: &str| {
        let text = cv_with_trace(&format!(
            "kind = \"azure_csv\"\npath = \"day.csv\"\nfunction = {function}"
        ));
        SweepSpec::from_toml(&text, "test.toml", &dir)
            .expect("parses")
            .plan()
    };
    let plan = spec("{ row = 1 }").expect("a busy function plans");
    assert_eq!(plan.len(), 1);
    let e = spec("{ row = 0 }").expect_err("empty").to_string();
    assert!(
        e.starts_with("traces.v.function: the function has no invocations"),
        "{e}"
    );
    let e = spec("{ row = 7 }").expect_err("missing").to_string();
    assert!(e.starts_with("traces.v: ") && e.contains("day.csv"), "{e}");
    let e = spec("{ hash_function = \"nope\" }")
        .expect_err("missing hash")
        .to_string();
    assert!(e.starts_with("traces.v: ") && e.contains("nope"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The embedded CV spec with `[traces.v]` replaced by `body`.
fn cv_with_trace(body: &str) -> String {
    format!("{EMBEDDED_HEAD}{CV_GRID}").replace(
        "[traces.v]\nkind = \"fixed\"\nqps = 30",
        &format!("[traces.v]\n{body}"),
    )
}

#[test]
fn issue15_tasks_collected_on_several_threads_are_the_plans_tasks_in_order() {
    let seeds: Vec<String> = (0..120).map(|s| s.to_string()).collect();
    let text = format!(
        "name = \"many\"\nseeds = [{}]\n[inputs]\nkind = \"embedded\"\nscale = 0.01\n\
         [traces.video30]\nkind = \"fixed\"\nqps = 30.0\n[[grid]]\nname = \"cv\"\n\
         models = [\"resnet18\", \"resnet50\", \"vgg16\"]\n\
         datasets = [\"auburn\", \"hampton\", \"oxford\", \"calgary\"]\n\
         traces = [\"video30\"]\nslo_multiplier = [1.0, 2.0, 4.0]\nbatch_size = [4]\n",
        seeds.join(", ")
    );
    let plan = SweepSpec::from_toml(&text, "many.toml", Path::new("."))
        .expect("parses")
        .plan()
        .expect("valid");
    assert_eq!(plan.len(), 4320);
    let serial: Vec<_> = plan.tasks().collect();
    for threads in [1, 3, 7] {
        assert!(plan.collect_tasks(threads) == serial, "{threads} threads");
    }
}

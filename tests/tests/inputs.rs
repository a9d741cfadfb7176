use crate::util::{bin, fresh_dir, TestCluster};
use std::path::Path;
use std::process::Command;

fn gen_data(data: &Path) {
    let o = Command::new(bin("worker"))
        .args([
            "gen-data",
            "--scale",
            "0.03",
            "--models",
            "resnet18",
            "--datasets",
            "auburn,hampton",
            "--out",
        ])
        .arg(data)
        .env("RUST_LOG", "warn")
        .output()
        .expect("gen-data runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn artifact_spec(dir: &Path, data: &Path) -> std::path::PathBuf {
    let text = format!(
        "name = \"e2e-artifact\"\n[inputs]\nkind = \"artifact\"\ndir = {:?}\n\
         [traces.fixed_30]\nsource = \"artifact_decisions\"\nfile = \"{{model}}_{{slo}}_fixed_30.pickle\"\n\
         [[grid]]\nname = \"cv\"\nmodels = [\"resnet18\"]\ndatasets = [\"auburn\", \"hampton\"]\n\
         traces = [\"fixed_30\"]\nslo_multiplier = [1]\nbatch_size = [4]\n",
        data.display().to_string()
    );
    let path = dir.join("spec.toml");
    std::fs::write(&path, text).expect("write spec");
    path
}

#[test]
fn a_corrupt_input_fails_its_task_naming_the_file_and_the_others_complete() {
    let dir = fresh_dir("corrupt-input");
    let data = dir.join("data");
    gen_data(&data);
    let bad = "simulation_pickles/hampton_resnet18.pickle";
    let bytes = std::fs::read(data.join(bad)).expect("read pickle");
    std::fs::write(data.join(bad), &bytes[..bytes.len() / 2]).expect("truncate pickle");
    let spec = artifact_spec(&dir, &data);
    let mut c = TestCluster::new(&dir, &spec);
    c.start_coordinator(&[]);
    // No --data: the workers fetch the inputs from the coordinator and check their digests.
    c.start_worker(&[], &[]);
    c.start_worker(&[], &[]);
    c.await_sweep(false);
    let status = c.status();
    let failed: Vec<_> = status.iter().filter(|(_, v)| v.0 == "failed").collect();
    let done: Vec<_> = status.iter().filter(|(_, v)| v.0 == "done").collect();
    assert_eq!((failed.len(), done.len()), (1, 1), "{status:?}");
    let (key, (_, attempts, _)) = failed[0];
    assert_eq!(*attempts, 1, "a bad input is not retried");
    let record = std::fs::read_to_string(c.out.join("failures").join(format!("{key}.json")))
        .expect("failure record");
    assert!(record.contains(bad), "the message names the file: {record}");
    assert!(c.coordinator_log().contains(bad));
    assert!(c
        .workers
        .iter()
        .any(|w| w.log_text().contains("fetched input")));
}

use crate::util::{
    assert_same_results, embedded_spec, fresh_dir, planned_keys, run_local, TestCluster,
};

#[test]
fn three_workers_finish_the_grid_with_the_bytes_of_worker_local() {
    let dir = fresh_dir("three-workers");
    let spec = embedded_spec(
        &dir,
        &["resnet18", "vgg11"],
        &["auburn", "hampton", "oxford"],
    );
    let baseline = dir.join("local");
    run_local(&spec, &baseline);

    let mut c = TestCluster::new(&dir, &spec);
    c.start_coordinator(&[]);
    for _ in 0..3 {
        c.start_worker(&[], &[]);
    }
    c.await_sweep(true);
    for i in 0..3 {
        assert!(
            c.await_exit(Some(i)).success(),
            "worker {i} exits 0 when the sweep is done"
        );
    }
    assert_same_results(&baseline, &c.out);
    let status = c.status();
    let keys = planned_keys(&c.out);
    assert_eq!(keys.len(), 6);
    for k in &keys {
        assert_eq!(status[k], ("done".to_string(), 1, 1), "{k}");
    }
    assert_eq!(c.registered_workers(), 3);

    // The same command again does no work: every task is cached.
    let mut again = TestCluster::new(&dir, &spec);
    again.start_coordinator(&[]);
    again.await_sweep(true);
    assert!(again.coordinator_log().contains("6 already complete"));
    assert!(again.status().values().all(|(s, _, _)| s == "cached"));
    assert_same_results(&baseline, &c.out);
}

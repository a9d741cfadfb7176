use crate::util::{assert_same_results, embedded_spec, fresh_dir, run_local, TestCluster};

#[test]
fn a_worker_with_a_wrong_token_gets_no_task() {
    let dir = fresh_dir("wrong-token");
    let spec = embedded_spec(&dir, &["resnet18"], &["auburn"]);
    let mut c = TestCluster::new(&dir, &spec);
    c.start_coordinator(&[]);
    let wrong = dir.join("wrong-token");
    std::fs::write(&wrong, "guess").expect("write token");
    let wrong = wrong.display().to_string();
    let intruder = c.start_worker(&["--token-file", &wrong], &[]);
    assert!(
        !c.await_exit(Some(intruder)).success(),
        "refused worker exits non-zero"
    );
    assert!(c.workers[intruder]
        .log_text()
        .contains("missing or wrong token"));
    c.await_log_line(None, "wrong token (unauthenticated)");
    assert_eq!(c.registered_workers(), 0, "the intruder never registered");
    assert!(c
        .status()
        .values()
        .all(|(s, a, _)| s == "pending" && *a == 0));
    c.start_worker(&[], &[]);
    c.await_sweep(true);
    assert_eq!(c.registered_workers(), 1);
}

#[test]
fn a_result_from_a_superseded_attempt_is_rejected() {
    let dir = fresh_dir("superseded");
    let spec = embedded_spec(&dir, &["resnet18"], &["auburn"]);
    let baseline = dir.join("local");
    run_local(&spec, &baseline);
    let mut c = TestCluster::new(&dir, &spec);
    c.start_coordinator(&["--lease-ms", "1000"]);
    // Worker 0 leases the only task (attempt 1) and goes silent: the lease expires.
    let (go_a, go_b) = (dir.join("go-a"), dir.join("go-b"));
    let (ga, gb) = (go_a.display().to_string(), go_b.display().to_string());
    let a = c.start_worker(
        &[],
        &[
            ("APPARATE_FAULT_STALL", &ga),
            ("APPARATE_FAULT_STALL_SILENT", "1"),
        ],
    );
    c.await_log_line(Some(a), "fault hook: stalling");
    c.await_log_line(None, "expired");
    // Worker 1 leases it again (attempt 2) and holds it, heartbeating.
    let b = c.start_worker(&[], &[("APPARATE_FAULT_STALL", &gb)]);
    c.await_log_line(Some(b), "fault hook: stalling");
    // Worker 0 wakes up and sends its stale result: refused.
    std::fs::write(&go_a, "").expect("release a");
    c.await_log_line(None, "rejected the result of attempt a1");
    c.await_log_line(Some(a), "rejected");
    std::fs::write(&go_b, "").expect("release b");
    c.await_sweep(true);
    assert_same_results(&baseline, &c.out);
    let status = c.status();
    let (state, attempts, succeeded) = status.values().next().expect("one task").clone();
    assert_eq!((state.as_str(), succeeded), ("done", 1));
    assert!(attempts >= 2);
}

/// A CA and a server certificate for `localhost` / 127.0.0.1, made with the `openssl` tool;
/// `None` (the test is skipped) where it is not installed.
fn make_certs(dir: &std::path::Path) -> Option<()> {
    use std::process::Command;
    let ok = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=e2e-ca"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    if !ok(&ca) {
        eprintln!("skipped: the openssl tool is not available");
        return None;
    }
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .ok()?;
    let mut csr = vec!["req", "-subj", "/CN=localhost"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
    let sign = [
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    ];
    assert!(
        ok(&csr) && ok(&sign),
        "openssl could not make the server certificate"
    );
    Some(())
}

#[test]
fn a_sweep_over_tls_completes_and_a_worker_without_the_ca_gets_nothing() {
    let dir = fresh_dir("tls");
    if make_certs(&dir).is_none() {
        return;
    }
    let spec = embedded_spec(&dir, &["resnet18"], &["auburn"]);
    let baseline = dir.join("local");
    run_local(&spec, &baseline);
    let mut c = TestCluster::new(&dir, &spec);
    let (cert, key, ca) = (
        dir.join("server.pem").display().to_string(),
        dir.join("server.key").display().to_string(),
        dir.join("ca.pem").display().to_string(),
    );
    c.start_coordinator(&["--tls-cert", &cert, "--tls-key", &key]);
    // Plain HTTP against a TLS coordinator: no task, ever (the worker keeps retrying).
    let plain = c.start_worker(&[], &[]);
    c.scheme = "https";
    c.start_worker(&["--tls-ca", &ca, "--tls-domain", "localhost"], &[]);
    c.await_sweep(true);
    assert_same_results(&baseline, &c.out);
    assert_eq!(c.registered_workers(), 1);
    assert!(!c.workers[plain].log_text().contains("registered as"));
}

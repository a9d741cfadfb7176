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

/// A CA and a server certificate for `localhost` / 127.0.0.1, made in-process with `rcgen`
/// (P-256, ring): `ca.pem`, `server.pem`, `server.key` in `dir`.
fn make_certs(dir: &std::path::Path) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "e2e-ca");
    let ca_key = KeyPair::generate().expect("CA key");
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("server params");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let key = KeyPair::generate().expect("server key");
    let cert = params
        .signed_by(&key, &ca, &ca_key)
        .expect("server certificate");
    for (name, pem) in [
        ("ca.pem", ca.pem()),
        ("server.pem", cert.pem()),
        ("server.key", key.serialize_pem()),
    ] {
        std::fs::write(dir.join(name), pem).expect("write a certificate file");
    }
}

#[test]
fn a_sweep_over_tls_completes_and_a_worker_without_the_ca_gets_nothing() {
    let dir = fresh_dir("tls");
    make_certs(&dir);
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

/// Issue #11: a worker holding a live lease uploads one foreign file instead of the task's
/// result. The coordinator refuses it, commits nothing, fails the attempt (the task is leased
/// again at once) and the sweep ends with the real result, byte for byte `worker --local`'s.
#[test]
fn issue11_a_forged_upload_is_refused_and_the_task_is_run_for_real() {
    let dir = fresh_dir("forged-upload");
    let spec = embedded_spec(&dir, &["resnet18"], &["auburn"]);
    let baseline = dir.join("local");
    run_local(&spec, &baseline);
    let evil = dir.join("evil.txt");
    std::fs::write(&evil, "not a result\n").expect("evil");
    let evil = evil.display().to_string();
    let mut c = TestCluster::new(&dir, &spec);
    // A lease far longer than the test: a second attempt can only come from the refusal.
    c.start_coordinator(&["--lease-ms", "600000"]);
    let w = c.start_worker(&[], &[("APPARATE_FAULT_FORGE", &evil)]);
    let line = c.await_log_line(None, "rejected the result of attempt a1");
    assert!(
        line.contains("files [evil.txt], expected exactly"),
        "{line}"
    );
    c.await_log_line(Some(w), "rejected: not a result of");
    c.await_log_line(None, "as attempt a2");
    c.await_sweep(true);
    assert_same_results(&baseline, &c.out);
    let status = c.status();
    let (state, attempts, succeeded) = status.values().next().expect("one task").clone();
    assert_eq!((state.as_str(), attempts, succeeded), ("done", 2, 1));
}

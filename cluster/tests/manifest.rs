//! Hosts from real-shaped Cloudlab manifests and TOML inventories.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use cluster::hosts::{choose_login, parse_manifest, DEFAULT_WORK_DIR};
use cluster::{load_hosts, Error, LoadOptions, LoginChoice};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().expect("ip"))
}

fn as_user(user: &str) -> LoadOptions {
    LoadOptions {
        login: LoginChoice::User(user.into()),
        ..LoadOptions::default()
    }
}

#[test]
fn cloudlab_manifest_gives_login_lan_and_hardware_per_node() {
    let hosts = load_hosts(&fixture("wisc-3x-c220g5.xml"), &as_user("bob")).expect("load");
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["node0", "node1", "node2"]);
    let h = &hosts[1];
    assert_eq!(h.address, "c220g5-110418.wisc.cloudlab.us");
    assert_eq!(h.user.as_deref(), Some("bob"));
    assert_eq!(h.port, Some(22));
    assert_eq!(h.lan, ip("10.10.1.2"));
    assert_eq!(h.hardware.as_deref(), Some("c220g5"));
    assert_eq!(h.work_dir, "apparate-rs/node1");
    assert_eq!(h.destination(), "bob@c220g5-110418.wisc.cloudlab.us");
}

#[test]
fn several_logins_pick_the_named_user_else_the_local_one_else_the_first() {
    let text = std::fs::read_to_string(fixture("wisc-3x-c220g5.xml")).expect("read");
    let nodes = parse_manifest(&text, Path::new("m.xml")).expect("parse");
    let users: Vec<&str> = nodes[0]
        .logins
        .iter()
        .map(|l| l.username.as_str())
        .collect();
    assert_eq!(users, ["alice", "bob"]);
    let pick = |choice: &LoginChoice, me: Option<&str>| {
        choose_login(&nodes[0], choice, me)
            .expect("choice")
            .map(|l| l.username.clone())
    };
    assert_eq!(
        pick(&LoginChoice::Auto, Some("bob")).as_deref(),
        Some("bob")
    );
    assert_eq!(
        pick(&LoginChoice::Auto, Some("root")).as_deref(),
        Some("alice")
    );
    assert_eq!(pick(&LoginChoice::Auto, None).as_deref(), Some("alice"));
    let err = choose_login(&nodes[0], &LoginChoice::User("dave".into()), Some("bob"))
        .expect_err("no such login");
    assert_eq!(
        err,
        "node node0 has no login for user \"dave\" (logins: alice, bob)"
    );
}

#[test]
fn prefixed_namespaces_a_node_without_lan_and_one_without_login() {
    let hosts = load_hosts(&fixture("utah-prefixed-mixed.xml"), &as_user("alice"));
    // "spare" lists no login for alice (it lists none at all): it falls back to its DNS name
    // only under Auto; a named user must have a login on every node.
    let err = hosts.expect_err("spare has no login for alice");
    assert!(
        err.to_string()
            .contains("node spare has no login for user \"alice\""),
        "{err}"
    );

    let text = std::fs::read_to_string(fixture("utah-prefixed-mixed.xml")).expect("read");
    let nodes = parse_manifest(&text, Path::new("m.xml")).expect("parse");
    assert_eq!(nodes.len(), 3);
    // No interface: no LAN; hardware from emulab:vnode.
    assert_eq!(nodes[0].client_id, "head");
    assert_eq!(nodes[0].lan, None);
    assert_eq!(nodes[0].hardware.as_deref(), Some("d6515"));
    // IPv6 first, then the IPv4 LAN address; a non-default port.
    assert_eq!(nodes[1].lan, ip("10.10.1.2"));
    assert_eq!(nodes[1].hardware.as_deref(), Some("d7525"));
    assert_eq!(nodes[1].logins[0].port, Some(2222));
    // A node in the default namespace among prefixed ones, without services.
    assert!(nodes[2].logins.is_empty());
    assert_eq!(nodes[2].hardware.as_deref(), Some("m510"));

    let auto = load_hosts(
        &fixture("utah-prefixed-mixed.xml"),
        &LoadOptions {
            work_dir: Some("/var/tmp/ee-{node}".into()),
            ..LoadOptions::default()
        },
    )
    .expect("auto");
    assert_eq!(auto[2].address, "spare.exp.proj.utah.cloudlab.us");
    assert_eq!(auto[2].user, None);
    assert_eq!(auto[1].port, Some(2222));
    assert_eq!(auto[1].work_dir, "/var/tmp/ee-gpu-1");
}

#[test]
fn malformed_manifests_are_refused_with_the_file_and_the_place() {
    let dir = tempfile::tempdir().expect("tmp");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    };
    let broken = write("broken.xml", "<rspec><node client_id=\"a\">\n</rspec>");
    let e = load_hosts(&broken, &LoadOptions::default()).expect_err("broken");
    assert!(matches!(e, Error::ManifestXml { .. }), "{e}");
    assert!(e.to_string().contains("broken.xml"), "{e}");

    let empty = write("empty.xml", "<rspec type=\"manifest\"/>");
    let e = load_hosts(&empty, &LoadOptions::default()).expect_err("empty");
    assert!(e.to_string().contains("lists no <node>"), "{e}");

    let bad_ip = write(
        "ip.xml",
        "<rspec><node client_id=\"n\"><interface><ip address=\"10.1.1\" type=\"ipv4\"/></interface></node></rspec>",
    );
    let e = load_hosts(&bad_ip, &LoadOptions::default()).expect_err("ip");
    assert!(
        e.to_string()
            .contains("node n: interface address \"10.1.1\""),
        "{e}"
    );

    let nothing = write("nothing.xml", "<rspec><node client_id=\"n\"/></rspec>");
    let e = load_hosts(&nothing, &LoadOptions::default()).expect_err("nothing");
    assert!(e.to_string().contains("node n has neither"), "{e}");
}

#[test]
fn inventory_lists_hosts_with_defaults_and_overrides() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("hosts.toml");
    std::fs::write(
        &path,
        r#"
[defaults]
user = "alice"
port = 2200
work_dir = "/scratch/{node}"
ssh_options = ["-i", "/keys/cl"]

[[host]]
name = "a"
address = "pc1.example.org"
lan = "10.0.0.1"

[[host]]
address = "pc2.example.org"
port = 22
user = "bob"
work_dir = "/tmp/w"
ssh_options = ["-o", "Compression=yes"]
"#,
    )
    .expect("write");
    let hosts = load_hosts(&path, &LoadOptions::default()).expect("load");
    assert_eq!(hosts[0].destination(), "alice@pc1.example.org");
    assert_eq!(hosts[0].port, Some(2200));
    assert_eq!(hosts[0].work_dir, "/scratch/a");
    assert_eq!(hosts[0].lan, ip("10.0.0.1"));
    assert_eq!(hosts[0].ssh_args, ["-i", "/keys/cl"]);
    assert_eq!(hosts[1].name, "pc2.example.org");
    assert_eq!(hosts[1].destination(), "bob@pc2.example.org");
    assert_eq!(hosts[1].port, Some(22));
    assert_eq!(hosts[1].work_dir, "/tmp/w");
    assert_eq!(
        hosts[1].ssh_args,
        ["-i", "/keys/cl", "-o", "Compression=yes"]
    );
}

#[test]
fn inventory_can_take_its_hosts_from_a_manifest() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::copy(fixture("wisc-3x-c220g5.xml"), dir.path().join("m.xml")).expect("copy");
    let path = dir.path().join("cluster.toml");
    std::fs::write(
        &path,
        "manifest = \"m.xml\"\nlogin_user = \"bob\"\n[defaults]\nssh_options = [\"-A\"]\n",
    )
    .expect("write");
    let hosts = load_hosts(&path, &LoadOptions::default()).expect("load");
    assert_eq!(hosts.len(), 3);
    assert!(hosts.iter().all(|h| h.user.as_deref() == Some("bob")));
    assert!(hosts.iter().all(|h| h.ssh_args == ["-A"]));
    assert_eq!(
        hosts[2].work_dir,
        DEFAULT_WORK_DIR.replace("{node}", "node2")
    );
}

#[test]
fn inventory_errors_name_the_key_or_the_host() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[[host]]\naddress = \"x\"\nlan = \"not-an-ip\"\n").expect("write");
    let e = load_hosts(&path, &LoadOptions::default()).expect_err("bad lan");
    assert!(e.to_string().contains("bad.toml"), "{e}");
    std::fs::write(&path, "[[host]]\naddress = \"x\"\nsurprise = 1\n").expect("write");
    let e = load_hosts(&path, &LoadOptions::default()).expect_err("unknown key");
    assert!(e.to_string().contains("surprise"), "{e}");
    std::fs::write(
        &path,
        "[[host]]\nname = \"a\"\naddress = \"x\"\n[[host]]\nname = \"a\"\naddress = \"y\"\n",
    )
    .expect("write");
    let e = load_hosts(&path, &LoadOptions::default()).expect_err("duplicate");
    assert!(e.to_string().contains("\"a\" appears twice"), "{e}");
    std::fs::write(&path, "").expect("write");
    let e = load_hosts(&path, &LoadOptions::default()).expect_err("empty");
    assert!(e.to_string().contains("no hosts"), "{e}");
}

/// Issue #11 item 11: a real-shaped manifest (three logins per node, two LANs, links, site info,
/// execute services, a Xen VM, a Docker container, a remote blockstore with logins, a delay
/// node): only the machines become hosts; the others are skipped, each with its reason.
#[test]
fn issue11_blockstores_and_other_non_machine_slivers_are_skipped_with_the_reason() {
    use cluster::{load_host_list, SkippedNode};
    let list = load_host_list(
        &fixture("clemson-blockstore-two-lans.xml"),
        &as_user("alice"),
    )
    .expect("load");
    let names: Vec<&str> = list.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["gpu0", "gpu1", "vm0", "ctr0"]);
    assert!(list
        .hosts
        .iter()
        .all(|h| h.user.as_deref() == Some("alice")));
    assert_eq!(list.hosts[0].address, "clnode201.clemson.cloudlab.us");
    assert_eq!(list.hosts[0].lan, ip("10.10.1.1"), "the first LAN");
    assert_eq!(list.hosts[0].hardware.as_deref(), Some("r7525"));
    assert_eq!(list.hosts[2].port, Some(26010));
    assert_eq!(list.hosts[3].lan, ip("10.20.1.4"));
    let skipped: Vec<(&str, &str)> = list
        .skipped
        .iter()
        .map(|SkippedNode { name, reason }| (name.as_str(), reason.as_str()))
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert_eq!(skipped[0].0, "dataset");
    assert!(
        skipped[0]
            .1
            .starts_with("sliver type \"emulab-blockstore\" is not a machine"),
        "{}",
        skipped[0].1
    );
    assert_eq!(skipped[1].0, "shaper");
    assert!(skipped[1].1.contains("\"delay\""), "{}", skipped[1].1);
    // The plain list (what `coordinator sweep --cluster` uses) has the same hosts.
    let hosts = load_hosts(
        &fixture("clemson-blockstore-two-lans.xml"),
        &as_user("alice"),
    )
    .expect("load");
    assert_eq!(hosts, list.hosts);
    // The skipped nodes need no login for the chosen user (bob has none on the blockstore).
    let bob =
        load_host_list(&fixture("clemson-blockstore-two-lans.xml"), &as_user("bob")).expect("bob");
    assert_eq!(bob.hosts.len(), 4);
}

#[test]
fn issue11_an_inventory_excludes_manifest_nodes_by_name() {
    use cluster::load_host_list;
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::copy(
        fixture("clemson-blockstore-two-lans.xml"),
        dir.path().join("m.xml"),
    )
    .expect("copy");
    let path = dir.path().join("cluster.toml");
    // carol has no login on ctr0: excluding it is what makes carol's list loadable.
    std::fs::write(
        &path,
        "manifest = \"m.xml\"\nlogin_user = \"carol\"\nexclude = [\"ctr0\", \"vm0\"]\n",
    )
    .expect("write");
    let list = load_host_list(&path, &LoadOptions::default()).expect("load");
    let names: Vec<&str> = list.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["gpu0", "gpu1"]);
    let skipped: Vec<(&str, &str)> = list
        .skipped
        .iter()
        .map(|s| (s.name.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(
        skipped.iter().map(|s| s.0).collect::<Vec<_>>(),
        ["vm0", "ctr0", "dataset", "shaper"]
    );
    assert!(
        skipped[0].1.contains("excluded by the inventory"),
        "{skipped:?}"
    );

    std::fs::write(
        &path,
        "manifest = \"m.xml\"\nexclude = [\"gpu0\", \"gpu9\"]\n",
    )
    .expect("write");
    let e = load_host_list(&path, &LoadOptions::default()).expect_err("unknown node");
    let msg = e.to_string();
    assert!(
        msg.contains("cluster.toml")
            && msg.contains("exclude[1]")
            && msg.contains("no node \"gpu9\"")
            && msg.contains("gpu0, gpu1, vm0, ctr0, dataset, shaper")
            && !msg.contains('\n'),
        "{msg}"
    );

    std::fs::write(&path, "exclude = [\"gpu0\"]\n[[host]]\naddress = \"x\"\n").expect("write");
    let e = load_host_list(&path, &LoadOptions::default()).expect_err("no manifest");
    assert!(e.to_string().contains("no `manifest"), "{e}");

    std::fs::write(
        &path,
        "manifest = \"m.xml\"\nexclude = [\"gpu0\", \"gpu1\", \"vm0\", \"ctr0\"]\n",
    )
    .expect("write");
    let e = load_host_list(&path, &LoadOptions::default()).expect_err("nothing left");
    let msg = e.to_string();
    assert!(
        msg.contains("no node can run a worker")
            && msg.contains("gpu0: excluded by the inventory")
            && msg.contains("dataset: sliver type \"emulab-blockstore\""),
        "{msg}"
    );
}

/// `cluster hosts` lists the machines on stdout and says on stderr which nodes it skipped and
/// why.
#[test]
fn issue11_cluster_hosts_says_which_nodes_it_skipped() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cluster"))
        .arg("hosts")
        .arg("--hosts")
        .arg(fixture("clemson-blockstore-two-lans.xml"))
        .args(["--login-user", "alice"])
        .output()
        .expect("cluster runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let hosts: Vec<&str> = stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(hosts, ["gpu0", "gpu1", "vm0", "ctr0"], "{stdout}");
    assert!(
        stderr.contains("skipped dataset: sliver type \"emulab-blockstore\" is not a machine")
            && stderr.contains("skipped shaper: sliver type \"delay\""),
        "{stderr}"
    );
}

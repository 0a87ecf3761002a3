//! The real test fleet: Debian hosts in their own network namespaces, reached over real sshd.
//!
//! Host assignment keeps the tests independent (they run concurrently): h01–h10 are only
//! read; h11 apply/rollback; h12 failing postinst; h13 link cut mid-apply; h14 killed
//! mid-scan; h15 host key changes; h16 (non-prod) and h17–h20 a staged rollout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use patchwave_core::change::{ChangeOutcome, Reconciliation};
use patchwave_core::{Change, HostId, RollbackStep, ScanStatus};
use patchwave_engine::change::{self, ChangeResult};
use patchwave_plugin_host::{LoadedPlugin, PluginGrants};
use patchwave_store::{SqliteStore, Store};

use crate::fleet_or_skip;
use crate::support::{
    assert_inventory_matches, debian_plugin, dpkg_oracle, patchwave_bin, run, Fleet,
};

pub(crate) fn patchwave(config: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    run(std::process::Command::new(patchwave_bin())
        .arg("--config")
        .arg(config)
        .args(args))
}

pub(crate) fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !check() {
        assert!(
            t0.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `(db:Status-Abbrev, version)` of a package, read inside the host.
pub(crate) fn state_inside(fleet: &Fleet, host: &str, package: &str) -> (String, String) {
    let out = fleet.inside(
        host,
        &[
            "dpkg-query",
            "-W",
            "-f=${db:Status-Abbrev}|${Version}",
            package,
        ],
    );
    let (status, version) = out.split_once('|').unwrap();
    (status.trim().to_string(), version.to_string())
}

pub(crate) fn held_inside(fleet: &Fleet, host: &str) -> Vec<String> {
    fleet
        .inside(host, &["apt-mark", "showhold"])
        .lines()
        .map(str::to_string)
        .collect()
}

async fn debian(dir: &std::path::Path) -> LoadedPlugin {
    debian_plugin(dir, PluginGrants::Manifest).await
}

fn acme_web(from: &str, to: &str) -> Vec<Change> {
    vec![Change {
        name: "acme-web".into(),
        from: Some(from.into()),
        to: to.into(),
    }]
}

#[test]
fn scan_of_ten_hosts_stores_exactly_what_dpkg_has_inside_each() {
    let fleet = fleet_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let hosts = [
        "h01", "h02", "h03", "h04", "h05", "h06", "h07", "h08", "h09", "h10",
    ];
    let config = fleet.config(dir.path(), &hosts, &fleet.known_hosts());
    let (code, out, err) = patchwave(&config, &["scan"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("10 ok, 0 failed"), "{out}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = SqliteStore::open(dir.path().join("state/patchwave.db")).unwrap();
    for host in hosts {
        let stored = rt
            .block_on(store.inventory(&HostId::from(host)))
            .unwrap()
            .unwrap_or_else(|| panic!("{host} has no stored inventory"));
        let oracle = dpkg_oracle(&|args| fleet.inside(host, args));
        assert_inventory_matches(&stored.packages, &oracle);
        let summary = rt
            .block_on(store.host_summary(&HostId::from(host)))
            .unwrap()
            .unwrap();
        assert_eq!(summary.last_status, Some(ScanStatus::Ok));
        assert_eq!(summary.facts.unwrap().codename.as_deref(), Some("bookworm"));
    }
    // `hosts show` answers from the store.
    let (code, out, _) = patchwave(&config, &["hosts", "show", "h07"]);
    assert_eq!(code, 0);
    assert!(out.contains("data:          fresh"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_verify_rollback_over_ssh_checked_inside_the_host() {
    let fleet = fleet_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let plugin = debian(dir.path()).await;
    let store = SqliteStore::open(dir.path().join("db")).unwrap();
    let ssh = fleet.ssh();
    let h11 = fleet.transport(&ssh, "h11");
    register(&store, "h11").await;
    assert_eq!(
        state_inside(&fleet, "h11", "acme-web"),
        ("ii".into(), "1.0-1".into())
    );

    let applied = change::apply(&store, &plugin, h11.clone(), &acme_web("1.0-1", "1.0-2"))
        .await
        .unwrap();
    match &applied.result {
        ChangeResult::Applied(report) => {
            assert_eq!(report.outcomes[0].found.as_deref(), Some("1.0-2"));
            assert_eq!(report.outcomes[0].state, "ii");
        }
        other => panic!("apply did not apply: {other:?}"),
    }
    assert_eq!(
        state_inside(&fleet, "h11", "acme-web"),
        ("ii".into(), "1.0-2".into())
    );
    // The rollback was planned (and stored) before the apply: back to 1.0-1 and hold it.
    assert!(
        applied.rollback_plan.iter().any(
            |s| matches!(s, RollbackStep::Downgrade(c) if c.name == "acme-web" && c.to == "1.0-1")
        ),
        "{:?}",
        applied.rollback_plan
    );
    assert!(applied.rollback_plan.iter().any(
        |s| matches!(s, RollbackStep::Hold(p) if p.name == "acme-web" && p.version == "1.0-1")
    ));

    let rolled = change::rollback(&store, &plugin, h11, &applied)
        .await
        .unwrap();
    assert!(
        matches!(rolled.result, ChangeResult::Applied(_)),
        "{:?}",
        rolled.result
    );
    // `hi`: installed, and held there so the next upgrade does not bring the bad one back.
    assert_eq!(
        state_inside(&fleet, "h11", "acme-web"),
        ("hi".into(), "1.0-1".into())
    );
    assert_eq!(held_inside(&fleet, "h11"), vec!["acme-web".to_string()]);

    let history = store.changes(&HostId::from("h11"), 10).await.unwrap();
    assert_eq!(history.len(), 2);
    assert!(history.iter().all(|c| c.outcome == ChangeOutcome::Applied));
    assert!(history[1]
        .rollback_plan
        .as_deref()
        .unwrap()
        .contains("1.0-1"));
    // The journal links the rollback to the apply it undid, by id.
    assert_eq!(
        (history[0].id, history[0].undoes, history[1].undoes),
        (rolled.id, Some(applied.id), None)
    );
}

async fn register(store: &SqliteStore, id: &str) {
    store
        .register_host(&patchwave_store::HostRecord {
            id: HostId::from(id),
            address: id.into(),
            port: Some(22),
            env: patchwave_core::Environment::Prod,
            scope: "fleet".into(),
            tags: vec![],
            transport: "ssh".into(),
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_postinst_is_reported_failed_with_apt_output_and_state_read_back() {
    let fleet = fleet_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let plugin = debian(dir.path()).await;
    let store = SqliteStore::open(dir.path().join("db")).unwrap();
    register(&store, "h12").await;
    let ssh = fleet.ssh();
    let h12 = fleet.transport(&ssh, "h12");

    let applied = change::apply(&store, &plugin, h12.clone(), &acme_web("1.0-1", "1.0-3"))
        .await
        .unwrap();
    let report = match &applied.result {
        ChangeResult::Failed(report) => report.clone(),
        other => panic!("expected a failed apply, got {other:?}"),
    };
    assert!(!report.ok);
    assert_eq!(report.status, 100, "apt's exit status");
    assert!(report.output.contains("acme-web"), "{}", report.output);
    assert!(
        report.output.contains("post-installation script"),
        "{}",
        report.output
    );
    let outcome = &report.outcomes[0];
    assert_eq!(
        (outcome.state.as_str(), outcome.found.as_deref()),
        ("iF", Some("1.0-3"))
    );
    assert!(!outcome.ok);
    // Exactly what dpkg says inside the host.
    assert_eq!(
        state_inside(&fleet, "h12", "acme-web"),
        ("iF".into(), "1.0-3".into())
    );
    let recorded = store.changes(&HostId::from("h12"), 1).await.unwrap();
    assert_eq!(recorded[0].outcome, ChangeOutcome::Failed);

    // The planned rollback repairs it.
    let rolled = change::rollback(&store, &plugin, h12, &applied)
        .await
        .unwrap();
    assert!(
        matches!(rolled.result, ChangeResult::Applied(_)),
        "{:?}",
        rolled.result
    );
    // `hi`: installed, and held there so the next upgrade does not bring the bad one back.
    assert_eq!(
        state_inside(&fleet, "h12", "acme-web"),
        ("hi".into(), "1.0-1".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_cut_mid_apply_is_unknown_then_reconciled_by_the_next_scan() {
    let fleet = fleet_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let plugin = Arc::new(debian(dir.path()).await);
    let store = Arc::new(SqliteStore::open(dir.path().join("db")).unwrap());
    register(&store, "h13").await;
    // acme-slow's postinst sleeps for as long as this file says.
    fleet.inside("h13", &["sh", "-c", "echo 6 > /etc/acme-slow.delay"]);
    let ssh = fleet.ssh();
    let h13 = fleet.transport(&ssh, "h13");

    let changes = vec![Change {
        name: "acme-slow".into(),
        from: Some("1.0-1".into()),
        to: "1.0-2".into(),
    }];
    let task = {
        let (store, plugin, h13, changes) =
            (store.clone(), plugin.clone(), h13.clone(), changes.clone());
        tokio::spawn(
            async move { change::apply(store.as_ref(), plugin.as_ref(), h13, &changes).await },
        )
    };
    // Cut the link while the postinst is running.
    let f = Fleet::get().unwrap();
    tokio::task::spawn_blocking(move || {
        wait_until(
            "acme-slow's postinst to start",
            Duration::from_secs(60),
            || {
                f.inside_status("h13", &["pgrep", "-f", "acme-slow.postinst"])
                    .0
                    == 0
            },
        );
        f.ctl(&["link", "h13", "down"]);
    })
    .await
    .unwrap();
    let recorded = tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("the cut link is noticed")
        .unwrap()
        .unwrap();
    assert!(
        matches!(&recorded.result, ChangeResult::Unknown(_)),
        "{:?}",
        recorded.result
    );
    let stored = store.changes(&HostId::from("h13"), 1).await.unwrap();
    assert_eq!(stored[0].outcome, ChangeOutcome::Unknown);
    assert_eq!(stored[0].reconciled, None, "not assumed either way");

    // apt carries on inside the host; bring the link back and let it finish.
    fleet.ctl(&["link", "h13", "up"]);
    let f = Fleet::get().unwrap();
    tokio::task::spawn_blocking(move || {
        wait_until("apt to finish inside h13", Duration::from_secs(90), || {
            state_inside(&f, "h13", "acme-slow").0 == "ii"
                && f.inside_status("h13", &["pgrep", "-x", "apt-get"]).0 != 0
        });
    })
    .await
    .unwrap();

    // The next scan settles it from the real inventory.
    let plugins = Arc::new(patchwave_engine::PluginSet::from_plugins([debian(
        dir.path(),
    )
    .await]));
    let target = patchwave_engine::HostTarget {
        config: patchwave_engine::config::HostConfig {
            id: HostId::from("h13"),
            transport: patchwave_engine::config::TransportSpec::Ssh {
                address: fleet.host("h13")["addr"].as_str().unwrap().into(),
                port: 22,
                user: "root".into(),
                key: patchwave_engine::config::KeyRef::File(fleet.client_key()),
                known_hosts: fleet.known_hosts(),
            },
            env: patchwave_core::Environment::Prod,
            scope: "fleet".into(),
            tags: vec![],
            plugin: None,
        },
        transport: fleet.transport(&fleet.ssh(), "h13"),
    };
    let store_dyn: Arc<dyn Store> = store.clone();
    let report = patchwave_engine::Scanner::new(plugins, store_dyn, 1)
        .scan(vec![target], Arc::new(|_| {}))
        .await
        .unwrap();
    assert_eq!(report.ok_count(), 1, "{report:?}");
    let settled = store.changes(&HostId::from("h13"), 1).await.unwrap();
    assert_eq!(settled[0].outcome, ChangeOutcome::Unknown);
    assert_eq!(settled[0].reconciled, Some(Reconciliation::Took));
    assert_eq!(
        state_inside(&fleet, "h13", "acme-slow"),
        ("ii".into(), "1.0-2".into())
    );
}

#[test]
fn host_killed_mid_scan_is_recorded_unreachable_and_the_others_complete() {
    let fleet = fleet_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let config = fleet.config(dir.path(), &["h01", "h02", "h14"], &fleet.known_hosts());
    // A first good scan, so there is an inventory to keep.
    let (code, out, err) = patchwave(&config, &["scan", "h14"]);
    assert_eq!(code, 0, "{out}{err}");

    // Make h14 slow to answer `uname`, then kill it while the scan waits on it.
    fleet.inside(
        "h14",
        &["sh", "-c", "[ -e /usr/bin/uname.real ] || mv /usr/bin/uname /usr/bin/uname.real; \
           printf '#!/bin/sh\\nsleep 5\\nexec /usr/bin/uname.real \"$@\"\\n' > /usr/bin/uname; chmod +x /usr/bin/uname"],
    );
    let child = std::process::Command::new(patchwave_bin())
        .arg("--config")
        .arg(&config)
        .arg("scan")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let audit = dir.path().join("state/audit.jsonl");
    let before = std::fs::read_to_string(&audit).unwrap().lines().count();
    wait_until("h14's scan to reach uname", Duration::from_secs(30), || {
        std::fs::read_to_string(&audit)
            .unwrap()
            .lines()
            .skip(before)
            .any(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["host"] == "h14" && v["program"] == "cat"
            })
    });
    fleet.ctl(&["kill", "h14"]);
    let out = child.wait_with_output().unwrap();
    let (code, stdout) = (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    );
    fleet.ctl(&["restart", "h14"]);
    fleet.inside("h14", &["mv", "/usr/bin/uname.real", "/usr/bin/uname"]);

    assert_eq!(code, Some(3), "{stdout}");
    assert!(stdout.contains("2 ok, 1 failed"), "{stdout}");
    let (_, show, _) = patchwave(&config, &["hosts", "show", "h14", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&show).unwrap();
    assert_eq!(
        doc["summary"]["last_status"]["status"], "unreachable",
        "{doc:#}"
    );
    // The last good inventory is kept, and it reads as stale, not green.
    assert!(doc["summary"]["package_count"].as_u64().unwrap() > 100);
    assert_eq!(doc["freshness"], "stale");
    for ok in ["h01", "h02"] {
        let (_, show, _) = patchwave(&config, &["hosts", "show", ok, "--json"]);
        let doc: serde_json::Value = serde_json::from_str(&show).unwrap();
        assert_eq!(doc["summary"]["last_status"]["status"], "ok");
    }
}

fn accepted_logins(fleet: &Fleet, host: &str) -> usize {
    let dir = fleet.json["dir"].as_str().unwrap();
    std::fs::read_to_string(format!("{dir}/hosts/{host}/console.log"))
        .unwrap_or_default()
        .matches("Accepted publickey")
        .count()
}

#[test]
fn unknown_and_changed_host_keys_are_refused_until_enrolled() {
    let fleet = fleet_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("known_hosts");
    std::fs::write(&known, "").unwrap();
    let config = fleet.config(dir.path(), &["h15"], &known);

    // Unknown key: refused, nothing ran.
    let logins = accepted_logins(&fleet, "h15");
    let (code, out, _) = patchwave(&config, &["scan"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("unknown host key"), "{out}");
    assert_eq!(
        accepted_logins(&fleet, "h15"),
        logins,
        "a login happened with an unknown key"
    );

    // Enrol explicitly; the fingerprint shown is the host's real key.
    let expected_fp = fingerprint_of(
        dir.path(),
        fleet.host("h15")["host_key_pub"].as_str().unwrap(),
    );
    let (code, out, err) = patchwave(
        &config,
        &[
            "hosts",
            "trust",
            "h15",
            "--expect-fingerprint",
            &expected_fp,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&expected_fp) && out.contains("recorded"),
        "{out}"
    );
    let (code, out, err) = patchwave(&config, &["scan"]);
    assert_eq!(code, 0, "{out}{err}");

    // The host's key changes: refused, nothing ran, the host is recorded failed.
    // `rekey` prints "<addr> <type> <key>": the new key, read from the host's side.
    let rekeyed = fleet.ctl(&["rekey", "h15"]);
    let new_pub = rekeyed.trim().split_once(' ').unwrap().1.to_string();
    let new_fp = fingerprint_of(dir.path(), &new_pub);
    assert_ne!(new_fp, expected_fp);
    let logins = accepted_logins(&fleet, "h15");
    let (code, out, _) = patchwave(&config, &["scan"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("HOST KEY MISMATCH"), "{out}");
    assert_eq!(
        accepted_logins(&fleet, "h15"),
        logins,
        "a login happened with a changed key"
    );
    let (_, show, _) = patchwave(&config, &["hosts", "show", "h15", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&show).unwrap();
    assert_eq!(doc["freshness"], "stale");

    // Trust does not silently replace a key; nor does --replace without a confirmation
    // (no terminal here); --replace with the fingerprint checked out of band does.
    let (code, _, err) = patchwave(&config, &["hosts", "trust", "h15"]);
    assert_ne!(code, 0, "a changed key was replaced without --replace");
    assert!(!err.is_empty());
    let (code, out, err) = patchwave(&config, &["hosts", "trust", "h15", "--replace"]);
    assert_ne!(code, 0, "a changed key was replaced unconfirmed: {out}");
    assert!(
        err.contains(&new_fp) && err.contains("unconfirmed"),
        "{err}"
    );
    let (code, _, _) = patchwave(&config, &["scan"]);
    assert_eq!(code, 3, "the refused replace changed what is trusted");
    let replace_confirmed = |fp: &str| {
        patchwave(
            &config,
            &[
                "hosts",
                "trust",
                "h15",
                "--replace",
                "--expect-fingerprint",
                fp,
            ],
        )
    };
    let (code, _, err) = replace_confirmed(&expected_fp);
    assert_ne!(code, 0, "the old fingerprint confirmed the new key: {err}");
    let (code, out, err) = replace_confirmed(&new_fp);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&new_fp), "{out}");
    let (code, out, err) = patchwave(&config, &["scan"]);
    assert_eq!(code, 0, "{out}{err}");
}

/// The `SHA256:…` fingerprint of an OpenSSH public key line, as `ssh-keygen -lf` prints it.
fn fingerprint_of(dir: &std::path::Path, pubkey: &str) -> String {
    let f = dir.join("key.pub");
    std::fs::write(&f, pubkey).unwrap();
    let out =
        crate::support::stdout_of(std::process::Command::new("ssh-keygen").arg("-lf").arg(&f));
    out.split_whitespace().nth(1).unwrap().to_string()
}

/// A good patch goes canary (h16) → soak → smoke → four prod waves of one host each, driven
/// only by `patchwave rollout start` and `tick`, and ends verified on every host — checked
/// inside each host, not through patchwave.
#[test]
fn a_good_patch_passes_canary_and_every_wave_and_ends_verified_everywhere() {
    let fleet = fleet_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let hosts = ["h16", "h17", "h18", "h19", "h20"];
    let config = fleet.config_with(
        dir.path(),
        &hosts,
        &fleet.known_hosts(),
        "[rollout]\nsoak = \"2s\"\n",
    );
    for h in hosts {
        assert_eq!(state_inside(&fleet, h, "acme-web").1, "1.0-1", "{h} before");
    }
    let (code, out, err) = patchwave(&config, &["scan"]);
    assert_eq!(code, 0, "{out}{err}");

    let plan_args = [
        "--pin",
        "acme-web=1.0-2",
        "--ecosystem",
        "Debian:12",
        "--class",
        "high",
    ];
    let mut args = vec!["rollout", "plan"];
    args.extend(plan_args);
    let (code, out, err) = patchwave(&config, &args);
    assert_eq!(code, 0, "{out}{err}");
    for stage in [
        "canary: 1 hosts",
        "wave 1: 1 hosts",
        "wave 2: 1 hosts",
        "wave 3: 1 hosts",
        "wave 4: 1 hosts",
    ] {
        assert!(out.contains(stage), "{stage} in\n{out}");
    }
    // Each host's rollback as its plugin plans it from the host's own package database.
    for h in hosts {
        let line = format!(
            "  {h}  acme-web 1.0-1 -> 1.0-2; rollback: downgrade acme-web to 1.0-1, hold acme-web at 1.0-1"
        );
        assert!(out.lines().any(|l| l == line), "{line} in\n{out}");
    }

    let mut args = vec!["rollout", "start", "--id", "ro-good"];
    args.extend(plan_args);
    let (code, out, err) = patchwave(&config, &args);
    assert_eq!(code, 0, "{out}{err}");
    // The canary ran and now soaks; prod is untouched.
    assert!(out.contains("waiting for canary soak"), "{out}");
    assert_eq!(
        state_inside(&fleet, "h16", "acme-web"),
        ("ii".into(), "1.0-2".into())
    );
    for h in &hosts[1..] {
        assert_eq!(
            state_inside(&fleet, h, "acme-web").1,
            "1.0-1",
            "{h} during the soak"
        );
    }

    let mut last = String::new();
    wait_until("the rollout to finish", Duration::from_secs(120), || {
        let (code, out, err) = patchwave(&config, &["rollout", "tick", "ro-good"]);
        assert_eq!(code, 0, "{out}{err}");
        last = out;
        last.contains("finished")
    });
    assert!(last.contains("Completed"), "{last}");
    for h in hosts {
        assert_eq!(
            state_inside(&fleet, h, "acme-web"),
            ("ii".into(), "1.0-2".into()),
            "{h} after the rollout"
        );
    }
    let (code, out, _) = patchwave(&config, &["rollout", "status", "ro-good"]);
    assert_eq!(code, 0);
    assert!(out.contains("ro-good: completed"), "{out}");

    // The store still holds the pre-rollout inventories: they show as CHANGED, not fresh,
    // until the hosts are scanned again.
    let words = |out: &str| -> Vec<String> {
        let mut words: Vec<String> = out
            .lines()
            .filter(|l| hosts.iter().any(|h| l.starts_with(h)))
            .map(|l| {
                ["CHANGED", "fresh", "STALE", "UNKNOWN"]
                    .into_iter()
                    .find(|w| l.split_whitespace().any(|x| x == *w))
                    .unwrap_or("?")
                    .to_string()
            })
            .collect();
        words.dedup();
        words
    };
    let (code, out, _) = patchwave(&config, &["hosts", "list"]);
    assert_eq!(code, 0);
    assert_eq!(words(&out), vec!["CHANGED".to_string()], "{out}");
    let (code, out, err) = patchwave(&config, &["scan"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = patchwave(&config, &["hosts", "list"]);
    assert_eq!(code, 0);
    assert_eq!(words(&out), vec!["fresh".to_string()], "{out}");
}

//! Staged rollouts on the real fleet when things go wrong: a bad version caught by the
//! health gate at the canary, a failing postinst over the wave's budget, a host lost mid-wave,
//! and the runner killed with SIGKILL at random points. Every outcome is checked inside the
//! hosts (dpkg's database and log, the health endpoint), not only through patchwave.
//!
//! Hosts: h21 (non-prod), h22, h23 the bad version; h24–h27 the failing postinst; h28
//! (non-prod), h29, h30 the kills; h31–h33 the lost host; h34, h35 snapshot hooks; h36
//! (non-prod), h37–h39 a version whose dependencies move too, rolled back whole.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fleet::{held_inside, patchwave, state_inside, wait_until};
use crate::fleet_or_skip;
use crate::support::{patchwave_bin, Fleet};

/// `rollout status --json`: the stored state.
fn stored(config: &Path, id: &str) -> Value {
    let (code, out, err) = patchwave(config, &["rollout", "status", id, "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    serde_json::from_str(&out).unwrap()
}

/// The status word (`completed`, `rolled-back`, ...) of a stored state.
fn status_word(state: &Value) -> String {
    let status: patchwave_rollout::Status =
        serde_json::from_value(state["rollout"]["status"].clone())
            .unwrap_or_else(|e| panic!("unexpected status {}: {e}", state["rollout"]["status"]));
    status.word().to_string()
}

/// A host's `(phase, rollback)` words from a stored state (`verified`, `failed`, `lost`;
/// `not-requested`, `rolled-back`, ...).
fn host_words(state: &Value, host: &str) -> (String, String) {
    let h = &state["rollout"]["hosts"][host];
    let word = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Object(m) => m.keys().next().unwrap().clone(),
        other => panic!("{host}: unexpected {other}"),
    };
    (word(&h["phase"]), word(&h["rollback"]))
}

/// Hosts of a stage in the stored plan, in plan order.
fn stage_hosts(state: &Value, stage: &str) -> Vec<String> {
    let stages = state["rollout"]["plan"]["stages"].as_array().unwrap();
    let stage = stages
        .iter()
        .find(|s| s["id"] == stage || s["id"].get("wave").is_some() && stage_name(s) == stage)
        .unwrap_or_else(|| panic!("no stage {stage} in {stages:?}"));
    stage["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap().to_string())
        .collect()
}

fn stage_name(stage: &Value) -> String {
    format!("wave {}", stage["id"]["wave"])
}

/// Lines of the host's own dpkg log that record `action` of `package` ending at `to`
/// (`upgrade acme-web:all 1.0-1 1.0-2` ends at 1.0-2).
fn dpkg_log_count(fleet: &Fleet, host: &str, action: &str, package: &str, to: &str) -> usize {
    fleet
        .inside(host, &["cat", "/var/log/dpkg.log"])
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() == 6 && f[2] == action && f[3].split(':').next() == Some(package) && f[5] == to
        })
        .count()
}

/// Whether any version `version` of `package` was ever unpacked on the host.
fn ever_installed(fleet: &Fleet, host: &str, package: &str, version: &str) -> bool {
    dpkg_log_count(fleet, host, "upgrade", package, version)
        + dpkg_log_count(fleet, host, "install", package, version)
        > 0
}

/// The HTTP status of the host's acme-health endpoint, asked from inside the host.
fn health_inside(fleet: &Fleet, host: &str) -> String {
    fleet
        .inside(
            host,
            &[
                "python3",
                "-c",
                "import urllib.request, urllib.error\n\
                 try:\n    print(urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=3).status)\n\
                 except urllib.error.HTTPError as e:\n    print(e.code)",
            ],
        )
        .trim()
        .to_string()
}

/// Put `package` back at `version`, unheld, inside the host (not through patchwave).
fn reset_inside(fleet: &Fleet, host: &str, package: &str, version: &str) {
    fleet.inside(
        host,
        &[
            "sh",
            "-c",
            &format!(
                "apt-mark unhold {package} >/dev/null && \
                 DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades \
                 {package}={version} >/dev/null 2>&1"
            ),
        ],
    );
    assert_eq!(
        state_inside(fleet, host, package),
        ("ii".into(), version.into()),
        "{host} reset"
    );
    assert!(held_inside(fleet, host).is_empty(), "{host} still holds");
}

fn scan_ok(config: &Path) {
    let (code, out, err) = patchwave(config, &["scan"]);
    assert_eq!(code, 0, "{out}{err}");
}

/// `rollout start --id ID --pin PIN --ecosystem Debian:12 --class CLASS`, which runs until
/// the rollout waits or ends; returns its output.
fn start(config: &Path, id: &str, pin: &str, class: &str) -> String {
    let (code, out, err) = patchwave(
        config,
        &[
            "rollout",
            "start",
            "--id",
            id,
            "--pin",
            pin,
            "--ecosystem",
            "Debian:12",
            "--class",
            class,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    out
}

/// The bad acme-health version answers 500 on /health: the per-host health source stops it
/// at the canary, the canary is rolled back automatically, and prod never sees it.
#[test]
fn a_bad_version_is_stopped_at_the_canary_by_health_and_rolled_back_prod_untouched() {
    let fleet = fleet_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let hosts = ["h21", "h22", "h23"];
    let config = fleet.config_with(
        dir.path(),
        &hosts,
        &fleet.known_hosts(),
        "[rollout]\nsoak = \"2s\"\n\n\
         [[health.sources]]\nkind = \"http\"\nname = \"acme-health\"\n\
         url = \"http://{address}:8080/health\"\ntimeout = \"3s\"\n",
    );
    for h in hosts {
        assert_eq!(
            state_inside(&fleet, h, "acme-health"),
            ("ii".into(), "1.0-1".into())
        );
        assert_eq!(health_inside(&fleet, h), "200", "{h} healthy before");
    }
    scan_ok(&config);
    let out = start(&config, "ro-bad", "acme-health=1.0-2", "high");
    assert!(out.contains("finished"), "the start ran to the end:\n{out}");

    let state = stored(&config, "ro-bad");
    assert_eq!(status_word(&state), "rolled-back", "{state:#}");
    assert_eq!(stage_hosts(&state, "canary"), vec!["h21".to_string()]);
    // The canary applied and verified the bad version (it installs fine), the health gate
    // said no, and it was rolled back.
    assert_eq!(
        host_words(&state, "h21"),
        ("verified".into(), "rolled-back".into())
    );
    for h in ["h22", "h23"] {
        assert_eq!(
            host_words(&state, h),
            ("pending".into(), "not-requested".into()),
            "{h}"
        );
    }
    let (code, status, _) = patchwave(&config, &["rollout", "status", "ro-bad"]);
    assert_eq!(code, 0);
    assert!(
        status.contains("acme-health") && status.contains("500"),
        "the health line names the source and the status:\n{status}"
    );

    // Inside the hosts: the canary had 1.0-2, is back at 1.0-1, held there, and healthy;
    // prod never unpacked 1.0-2.
    assert!(ever_installed(&fleet, "h21", "acme-health", "1.0-2"));
    assert_eq!(
        state_inside(&fleet, "h21", "acme-health"),
        ("hi".into(), "1.0-1".into())
    );
    assert_eq!(health_inside(&fleet, "h21"), "200");
    for h in ["h22", "h23"] {
        assert!(
            !ever_installed(&fleet, h, "acme-health", "1.0-2"),
            "{h} saw the bad version"
        );
        assert_eq!(
            state_inside(&fleet, h, "acme-health"),
            ("ii".into(), "1.0-1".into())
        );
        assert_eq!(health_inside(&fleet, h), "200");
    }
}

/// acme-web 1.0-3's postinst fails. With one host at a time and a stage budget of one
/// failure in three, the first wave fails on its first host (within budget, it goes on),
/// fails again on its second (over budget): the wave halts before its third host starts
/// and both attempted hosts are rolled back. The second wave never starts.
#[test]
fn a_failing_postinst_halts_the_wave_over_its_budget_and_rolls_back() {
    let fleet = fleet_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let hosts = ["h24", "h25", "h26", "h27"];
    let config = fleet.config_with(
        dir.path(),
        &hosts,
        &fleet.known_hosts(),
        "[rollout]\nskip_canary_for = [\"moderate\"]\nwaves = [75, 100]\nmax_parallel = 1\n\
         stage_budget = { max_failed_percent = 34 }\nrollout_budget = { max_failed_percent = 50 }\n",
    );
    for h in hosts {
        assert_eq!(
            state_inside(&fleet, h, "acme-web"),
            ("ii".into(), "1.0-1".into())
        );
    }
    scan_ok(&config);
    start(&config, "ro-postinst", "acme-web=1.0-3", "moderate");
    let state = stored(&config, "ro-postinst");
    assert_eq!(status_word(&state), "rolled-back", "{state:#}");
    let wave1 = stage_hosts(&state, "wave 1");
    let wave2 = stage_hosts(&state, "wave 2");
    assert_eq!((wave1.len(), wave2.len()), (3, 1), "{wave1:?} {wave2:?}");

    let words: Vec<(String, String)> = wave1.iter().map(|h| host_words(&state, h)).collect();
    let failed: Vec<&String> = wave1
        .iter()
        .zip(&words)
        .filter(|(_, w)| w.0 == "failed")
        .map(|(h, _)| h)
        .collect();
    assert_eq!(failed.len(), 2, "two hosts failed: {words:?}");
    for h in &failed {
        assert_eq!(host_words(&state, h).1, "rolled-back", "{h}");
    }
    let untouched: Vec<&String> = wave1
        .iter()
        .chain(&wave2)
        .filter(|h| !failed.contains(h))
        .collect();
    assert_eq!(untouched.len(), 2);
    for h in &untouched {
        assert_eq!(
            host_words(&state, h),
            ("pending".into(), "not-requested".into()),
            "{h}"
        );
    }
    let (_, status, _) = patchwave(&config, &["rollout", "status", "ro-postinst"]);
    assert!(
        status.contains("simulated postinst failure") || status.contains("status 100"),
        "the failure is reported with apt's words:\n{status}"
    );

    // Inside: the failed hosts unpacked 1.0-3, then went back to 1.0-1 (configured, held);
    // the others never saw 1.0-3.
    for h in &failed {
        assert!(ever_installed(&fleet, h, "acme-web", "1.0-3"), "{h}");
        assert_eq!(
            state_inside(&fleet, h, "acme-web"),
            ("hi".into(), "1.0-1".into()),
            "{h} rolled back"
        );
    }
    for h in &untouched {
        assert!(!ever_installed(&fleet, h, "acme-web", "1.0-3"), "{h}");
        assert_eq!(
            state_inside(&fleet, h, "acme-web"),
            ("ii".into(), "1.0-1".into()),
            "{h} untouched"
        );
    }
}

/// A host that dies in the middle of its apply is counted as lost against the budgets and
/// reported; the rollout neither hangs on it nor forgets it.
#[test]
fn a_host_lost_mid_wave_is_counted_and_reported_not_dropped() {
    let fleet = fleet_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let hosts = ["h31", "h32", "h33"];
    let config = fleet.config_with(
        dir.path(),
        &hosts,
        &fleet.known_hosts(),
        "[rollout]\nskip_canary_for = [\"low\"]\nwaves = [50, 100]\n\
         stage_budget = { max_failed_percent = 50 }\nrollout_budget = { max_failed_percent = 34 }\n",
    );
    for h in hosts {
        // acme-slow's postinst sleeps this long: time to kill the host mid-apply.
        fleet.inside(h, &["sh", "-c", "echo 4 > /etc/acme-slow.delay"]);
    }
    scan_ok(&config);
    let runner = Command::new(patchwave_bin())
        .arg("--config")
        .arg(&config)
        .args([
            "rollout",
            "start",
            "--id",
            "ro-lost",
            "--pin",
            "acme-slow=1.0-2",
            "--ecosystem",
            "Debian:12",
            "--class",
            "low",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut victim = None;
    wait_until(
        "a host to run acme-slow's postinst",
        Duration::from_secs(60),
        || {
            victim = hosts.into_iter().find(|h| {
                fleet
                    .inside_status(h, &["pgrep", "-f", "acme-slow.postinst"])
                    .0
                    == 0
            });
            victim.is_some()
        },
    );
    let victim = victim.unwrap();
    fleet.ctl(&["kill", victim]);
    let out = runner.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    fleet.ctl(&["restart", victim]);
    assert_eq!(out.status.code(), Some(0), "{text}");

    let state = stored(&config, "ro-lost");
    let (phase, _) = host_words(&state, victim);
    assert_eq!(phase, "lost", "{victim}: {state:#}");
    // Counted: the stage tallies and the rollout's problems name it.
    let (_, status, _) = patchwave(&config, &["rollout", "status", "ro-lost"]);
    assert!(
        status.contains(victim) && status.contains("lost"),
        "{victim} reported lost:\n{status}"
    );
    // One lost host of three is within both budgets: the other hosts finished verified.
    assert_eq!(status_word(&state), "completed", "{state:#}");
    for h in hosts.into_iter().filter(|h| *h != victim) {
        assert_eq!(host_words(&state, h).0, "verified", "{h}");
        assert_eq!(
            state_inside(&fleet, h, "acme-slow"),
            ("ii".into(), "1.0-2".into()),
            "{h}"
        );
    }
}

/// A small deterministic generator for the kill points (xorshift64*), seeded from the clock
/// and printed, so a failing run can be replayed with `PATCHWAVE_KILL_SEED`.
struct Points(u64);

impl Points {
    fn next_fraction(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Run `rollout tick ID` until the rollout finishes. When `kill_at` is given, the tick
/// process running at that instant (from the first tick) gets SIGKILL. Returns whether a
/// process was killed.
fn tick_until_done(config: &Path, id: &str, kill_at: Option<Duration>) -> bool {
    let t0 = Instant::now();
    let mut killed = false;
    let limit = Duration::from_secs(180);
    loop {
        assert!(t0.elapsed() < limit, "{id} did not finish in {limit:?}");
        let mut child: Child = Command::new(patchwave_bin())
            .arg("--config")
            .arg(config)
            .args(["rollout", "tick", id])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(at) = kill_at.filter(|_| !killed) {
            loop {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if t0.elapsed() >= at {
                    child.kill().unwrap(); // SIGKILL
                    killed = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let out = child.wait_with_output().unwrap();
        if killed && out.status.code().is_none() {
            continue;
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if text.contains("finished") {
            return killed;
        }
    }
}

/// `dpkg-query` of a package inside the host: `(state, version)`, `("un", "")` when dpkg
/// knows nothing of it.
fn package_inside(fleet: &Fleet, host: &str, package: &str) -> (String, String) {
    let (code, out) = fleet.inside_status(
        host,
        &[
            "dpkg-query",
            "-W",
            "-f=${db:Status-Abbrev}|${Version}",
            package,
        ],
    );
    if code != 0 {
        return ("un".into(), String::new());
    }
    let (status, version) = out.split_once('|').unwrap();
    (status.trim().to_string(), version.to_string())
}

/// acme-api 1.0-2 needs acme-lib >= 2.1 (the hosts have 2.0-1) and acme-extra (which they do
/// not have). The plan resolves the whole transaction at the canary and lists both
/// dependencies in the manifest; the canary and the first wave install exactly that set.
/// acme-api's postinst fails on one host of the first wave (over its budget of none), the
/// rollout halts and rolls back every host it touched — and every package the apply changed
/// comes back off, read inside the hosts: acme-api and acme-lib at their old versions (held
/// there), acme-extra gone. The second wave never sees any of it.
#[test]
fn a_version_that_moves_its_dependencies_is_rolled_back_whole() {
    let fleet = fleet_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let hosts = ["h36", "h37", "h38", "h39"];
    let config = fleet.config_with(
        dir.path(),
        &hosts,
        &fleet.known_hosts(),
        "[rollout]\nsoak = \"1s\"\nwaves = [50, 100]\nrollback_scope = \"all\"\n\
         stage_budget = { max_failed_percent = 0 }\n",
    );
    let before = |h: &str| {
        assert_eq!(
            package_inside(&fleet, h, "acme-api"),
            ("ii".into(), "1.0-1".into()),
            "{h}"
        );
        assert_eq!(
            package_inside(&fleet, h, "acme-lib"),
            ("ii".into(), "2.0-1".into()),
            "{h}"
        );
        assert_eq!(
            package_inside(&fleet, h, "acme-extra"),
            ("un".into(), String::new()),
            "{h}"
        );
    };
    for h in hosts {
        before(h);
    }
    scan_ok(&config);
    let pin = [
        "--pin",
        "acme-api=1.0-2",
        "--ecosystem",
        "Debian:12",
        "--class",
        "high",
    ];
    let mut args = vec!["rollout", "plan"];
    args.extend(pin);
    let (code, plan, err) = patchwave(&config, &args);
    assert_eq!(code, 0, "{plan}{err}");
    for line in [
        "  Debian:12 acme-api = 1.0-2",
        "  Debian:12 acme-extra = 1.0-1 (dependency, resolved at the canary)",
        "  Debian:12 acme-lib = 2.1-1 (dependency, resolved at the canary)",
    ] {
        assert!(
            plan.lines().any(|l| l == line),
            "no {line:?} in:
{plan}"
        );
    }
    assert!(err.contains("dependencies resolved on: h36"), "{err}");
    let canary = plan
        .lines()
        .find(|l| l.starts_with("  h36 "))
        .unwrap_or_else(|| {
            panic!(
                "no canary line in:
{plan}"
            )
        });
    for part in [
        "acme-api 1.0-1 -> 1.0-2",
        "acme-lib 2.0-1 -> 2.1-1",
        "acme-extra absent -> 1.0-1",
        "downgrade acme-lib to 2.0-1",
        "uninstall acme-extra",
    ] {
        assert!(
            canary.contains(part),
            "{part:?} missing from the canary's line: {canary}"
        );
    }
    // The first wave's first host will fail acme-api's postinst.
    let wave1: Vec<String> = plan
        .lines()
        .skip_while(|l| !l.starts_with("wave 1:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert_eq!(wave1.len(), 2, "{plan}");
    let failing = wave1[0].clone();
    fleet.inside(&failing, &["touch", "/etc/acme-api.fail"]);

    let mut args = vec!["rollout", "start", "--no-tick", "--id", "ro-deps"];
    args.extend(pin);
    let (code, out, err) = patchwave(&config, &args);
    assert_eq!(code, 0, "{out}{err}");
    tick_until_done(&config, "ro-deps", None);
    fleet.inside(&failing, &["rm", "-f", "/etc/acme-api.fail"]);

    let state = stored(&config, "ro-deps");
    assert_eq!(status_word(&state), "rolled-back", "{state:#}");
    let deps = &state["rollout"]["plan"]["manifest"]["dependencies"];
    assert_eq!(
        deps,
        &serde_json::json!([
            {"ecosystem": "Debian:12", "name": "acme-extra", "version": "1.0-1"},
            {"ecosystem": "Debian:12", "name": "acme-lib", "version": "2.1-1"},
        ]),
        "the stored manifest lists the dependencies"
    );
    let wave2 = stage_hosts(&state, "wave 2");
    let touched: Vec<String> = std::iter::once("h36".to_string())
        .chain(wave1.clone())
        .collect();
    for h in &touched {
        // The whole transaction went on (the failing host got as far as the failed postinst)…
        assert!(
            ever_installed(&fleet, h, "acme-lib", "2.1-1"),
            "{h} upgraded acme-lib"
        );
        assert!(
            ever_installed(&fleet, h, "acme-extra", "1.0-1"),
            "{h} installed acme-extra"
        );
        assert!(
            ever_installed(&fleet, h, "acme-api", "1.0-2"),
            "{h} unpacked acme-api"
        );
        // …and came back off whole.
        assert_eq!(host_words(&state, h).1, "rolled-back", "{h}: {state:#}");
        // The journal names the apply the rollback undid, by id.
        let (code, out, err) = patchwave(&config, &["hosts", "changes", h, "--json"]);
        assert_eq!(code, 0, "{out}{err}");
        let journal: Vec<Value> = serde_json::from_str(&out).unwrap();
        let of = |kind: &str| -> Vec<&Value> {
            journal
                .iter()
                .filter(|c| c["rollout"] == "ro-deps" && c["kind"] == kind)
                .collect()
        };
        let (applies, rollbacks) = (of("apply"), of("rollback"));
        assert_eq!((applies.len(), rollbacks.len()), (1, 1), "{h}: {out}");
        assert_eq!(rollbacks[0]["undoes"], applies[0]["id"], "{h}: {out}");
        assert_eq!(applies[0]["undoes"], Value::Null, "{h}: {out}");
        assert_eq!(
            package_inside(&fleet, h, "acme-api"),
            ("hi".into(), "1.0-1".into()),
            "{h}"
        );
        assert_eq!(
            package_inside(&fleet, h, "acme-lib"),
            ("hi".into(), "2.0-1".into()),
            "{h}"
        );
        let extra = package_inside(&fleet, h, "acme-extra");
        assert!(
            extra.0 == "un" || extra.0 == "rc",
            "{h}: acme-extra is {extra:?}, not removed"
        );
        assert_eq!(
            dpkg_log_count(&fleet, h, "upgrade", "acme-lib", "2.0-1"),
            1,
            "{h}"
        );
    }
    assert_eq!(host_words(&state, &failing).0, "failed");
    for h in &wave2 {
        assert_eq!(
            host_words(&state, h),
            ("pending".into(), "not-requested".into()),
            "{h}"
        );
        before(h);
        assert!(!ever_installed(&fleet, h, "acme-lib", "2.1-1"), "{h}");
    }
}

/// What must come out the same whether or not the runner was killed: the status, every
/// host's phase and rollback, every stage's phase.
fn final_shape(state: &Value) -> Value {
    let r = &state["rollout"];
    let stages: Vec<Value> = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| serde_json::json!([s["id"], s["phase"]]))
        .collect();
    serde_json::json!({
        "status": r["status"],
        "hosts": r["hosts"],
        "stages": stages,
    })
}

/// Per host, the `(start, end)` audit lines of the `apt-get install` runs that carry `arg`
/// (the apply's `name=version`; the simulations that resolve and check each apply first,
/// `apt-get -s ...`, carry it too and are not counted). A start is written before the
/// command is sent and an end after it returned, so a command cut off by a killed runner has
/// a start and no end.
fn audited(audit: &Path, arg: &str) -> BTreeMap<String, (usize, usize)> {
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for line in std::fs::read_to_string(audit).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let args = v["args"].as_array();
        if !args.is_some_and(|a| {
            a.first().is_some_and(|x| x == "install") && a.iter().any(|x| x == arg)
        }) {
            continue;
        }
        let entry = counts
            .entry(v["host"].as_str().unwrap().to_string())
            .or_default();
        match v["phase"].as_str() {
            Some("start") => entry.0 += 1,
            Some("end") => entry.1 += 1,
            other => panic!("unexpected phase {other:?} in {line}"),
        }
    }
    counts
}

/// Kill -9 of the runner at 20 random points of a rollout, each followed by `tick` until
/// done: the final state equals an uninterrupted run's, every host is verified at the pin
/// inside, and no host was applied twice (from the audit log and from the host's dpkg log).
#[test]
fn runner_killed_at_twenty_random_points_resumes_to_the_same_end_applying_once() {
    let fleet = fleet_or_skip!();
    let hosts = ["h28", "h29", "h30"];
    let seed = std::env::var("PATCHWAVE_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("kill points: PATCHWAVE_KILL_SEED={seed}");
    let mut points = Points(seed);
    let pin = [
        "--pin",
        "acme-web=1.0-2",
        "--ecosystem",
        "Debian:12",
        "--class",
        "high",
    ];

    // One run: reset the hosts, fresh state, scan, create, tick to the end (killing once
    // at `kill_at`). Returns the final shape, whether it killed, and how long it took.
    let trial = |n: usize, kill_at: Option<Duration>| -> (Value, bool, Duration) {
        for h in hosts {
            reset_inside(&fleet, h, "acme-web", "1.0-1");
        }
        let before: Vec<usize> = hosts
            .iter()
            .map(|h| dpkg_log_count(&fleet, h, "upgrade", "acme-web", "1.0-2"))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let config = fleet.config_with(
            dir.path(),
            &hosts,
            &fleet.known_hosts(),
            "[rollout]\nsoak = \"1s\"\n",
        );
        scan_ok(&config);
        let id = format!("ro-kill-{n}");
        let mut args = vec!["rollout", "start", "--no-tick", "--id", &id];
        args.extend(pin);
        let (code, out, err) = patchwave(&config, &args);
        assert_eq!(code, 0, "{out}{err}");
        let t0 = Instant::now();
        let killed = tick_until_done(&config, &id, kill_at);
        let took = t0.elapsed();
        let state = stored(&config, &id);
        // Applied once per host. The host's dpkg log has exactly one upgrade to the pin. The
        // audit log has at most one apply that ran to its end; an apply cut off by the kill
        // (a start without an end) was only sent again when the reconcile found that it had
        // not taken, so starts never exceed ends by more than the one kill.
        let audit = audited(&dir.path().join("state/audit.jsonl"), "acme-web=1.0-2");
        for (h, before) in hosts.iter().zip(before) {
            let (starts, ends) = audit.get(*h).copied().unwrap_or_default();
            assert!(
                starts >= 1 && ends <= 1 && starts - ends <= usize::from(killed),
                "run {n}: {h} audited {starts} apply starts and {ends} ends"
            );
            if starts > ends {
                eprintln!("run {n}: {h}: an apply was cut off ({starts} starts, {ends} ends)");
            }
            assert_eq!(
                dpkg_log_count(&fleet, h, "upgrade", "acme-web", "1.0-2") - before,
                1,
                "run {n}: dpkg upgrades on {h}"
            );
            assert_eq!(
                state_inside(&fleet, h, "acme-web"),
                ("ii".into(), "1.0-2".into()),
                "run {n}: {h} at the end"
            );
        }
        (final_shape(&state), killed, took)
    };

    let (reference, _, took) = trial(0, None);
    assert_eq!(reference["status"], "completed", "{reference:#}");
    let mut kills = 0;
    let mut n = 1;
    while kills < 20 {
        assert!(n <= 40, "only {kills} of 20 kills landed in {n} runs");
        let at = took.mul_f64(0.9 * points.next_fraction());
        let (shape, killed, _) = trial(n, Some(at));
        assert_eq!(shape, reference, "run {n} killed at {at:?}");
        if killed {
            kills += 1;
        } else {
            eprintln!("run {n}: finished before {at:?}, no kill");
        }
        n += 1;
    }
}

/// Hand-written OSV records in the shape of real DSAs: a critical fix for acme-web, a low
/// one for acme-lib, and a high advisory for acme-slow with no fix yet.
const FLEET_ADVISORIES: &str = r#"[
  {"id": "DSA-9001-1", "modified": "2026-11-01T00:00:00Z", "published": "2026-11-01T00:00:00Z",
   "summary": "acme-web: remote code execution", "aliases": ["CVE-2026-90001"],
   "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
   "affected": [{"package": {"ecosystem": "Debian:12", "name": "acme-web"},
                 "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0-2"}]}]}]},
  {"id": "DSA-9002-1", "modified": "2026-11-01T00:00:00Z", "published": "2026-11-01T00:00:00Z",
   "summary": "acme-lib: information disclosure", "aliases": ["CVE-2026-90002"],
   "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"}],
   "affected": [{"package": {"ecosystem": "Debian:12", "name": "acme-lib"},
                 "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.1-1"}]}]}]},
  {"id": "DSA-9003-1", "modified": "2026-11-01T00:00:00Z", "published": "2026-11-01T00:00:00Z",
   "summary": "acme-slow: denial of service", "aliases": ["CVE-2026-90003"],
   "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}],
   "affected": [{"package": {"ecosystem": "Debian:12", "name": "acme-slow"},
                 "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}
]"#;

/// `--from-findings high` pins exactly the fixes of the critical and high findings of the
/// planned hosts (the class follows the findings); a plan that breaks an anti-pattern is
/// refused, and forcing it is written to the audit log with its reason, like every
/// operator act on a rollout. Plans only: nothing is applied (read-only hosts).
#[test]
fn a_manifest_from_findings_pins_critical_and_high_fixes_and_forcing_is_audited() {
    let fleet = fleet_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let hosts = ["h01", "h03", "h04"];
    let config = fleet.config_with(
        dir.path(),
        &hosts,
        &fleet.known_hosts(),
        "[rollout]\nwaves = [100]\n",
    );
    scan_ok(&config);
    let osv = dir.path().join("dsa.json");
    std::fs::write(&osv, FLEET_ADVISORIES).unwrap();
    let (code, out, err) = patchwave(
        &config,
        &["advisories", "import", "--osv", osv.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}{err}");

    let plan = ["--from-findings", "high", "--ecosystem", "Debian:12"];
    let mut args = vec!["rollout", "plan"];
    args.extend(plan);
    let (code, out, err) = patchwave(&config, &args);
    // One prod wave for every prod host is refused, and says why.
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("single stage"), "{err}");
    assert!(
        err.contains("not pinned: h01 acme-slow: no fix yet"),
        "{err}"
    );

    let mut args = vec![
        "rollout",
        "start",
        "--no-tick",
        "--id",
        "ro-forced",
        "--force-reason",
        "emergency change CHG-1234",
        "--by",
        "alice",
    ];
    args.extend(plan);
    let (code, out, err) = patchwave(&config, &args);
    assert_eq!(code, 0, "{out}{err}");
    let mut args = vec![
        "rollout",
        "plan",
        "--force-reason",
        "emergency",
        "--by",
        "alice",
    ];
    args.extend(plan);
    let (code, out, err) = patchwave(&config, &args);
    assert_eq!(code, 0, "{out}{err}");
    let pins: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("  Debian:12 "))
        .collect();
    assert_eq!(pins, vec!["  Debian:12 acme-web = 1.0-2"], "{out}");
    assert!(
        out.contains("(findings: high and higher, class critical)"),
        "{out}"
    );
    assert!(out.contains("canary: 1 hosts"), "{out}");
    assert!(out.contains("wave 1: 2 hosts"), "{out}");
    assert!(out.contains("FORCED by alice: emergency"), "{out}");

    let (code, out, err) = patchwave(
        &config,
        &[
            "rollout",
            "abort",
            "ro-forced",
            "--reason",
            "wrong window",
            "--by",
            "bob",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");

    let audit = std::fs::read_to_string(dir.path().join("state/audit.jsonl")).unwrap();
    let events: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v.get("event").is_some())
        .collect();
    let words: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|v| {
            (
                v["event"].as_str().unwrap(),
                v["rollout"].as_str().unwrap(),
                v["by"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        words,
        vec![
            ("rollout-created", "ro-forced", "alice"),
            ("rollout-forced", "ro-forced", "alice"),
            ("rollout-aborted", "ro-forced", "bob"),
        ]
    );
    assert_eq!(events[1]["detail"]["reason"], "emergency change CHG-1234");
    let overridden = events[1]["detail"]["overridden"].as_array().unwrap();
    assert_eq!(overridden.len(), 1, "{overridden:?}");
    assert!(overridden[0].as_str().unwrap().contains("single stage"));
    assert_eq!(events[2]["detail"]["reason"], "wrong window");
    let (code, out, err) = patchwave(&config, &["audit", "verify"]);
    assert_eq!(code, 0, "the chain holds with the events in it: {out}{err}");
}

/// A snapshot hook for the test: "takes a snapshot" of a fleet host by recording its
/// acme-web version in the id, and "restores" it by putting that version back with apt
/// inside the host (after letting dpkg finish what it can). Both log their calls.
fn snapshot_hooks(dir: &Path) -> (String, String, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let fleet_ctl = crate::support::repo().join("tests/fleet/fleet");
    let log = dir.join("hooks.log");
    let write = |name: &str, body: String| {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\nset -eu\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    };
    let take = write(
        "take",
        format!(
            "v=$({fleet} exec \"$1\" -- dpkg-query -W -f='${{Version}}' acme-web)\n\
             echo \"take $1 $2 $v\" >> {log}\necho \"snap-$1-$v\"",
            fleet = fleet_ctl.display(),
            log = log.display()
        ),
    );
    let restore = write(
        "restore",
        format!(
            "v=${{2#snap-$1-}}\necho \"restore $1 $2\" >> {log}\n\
             {fleet} exec \"$1\" -- sh -c \"dpkg --configure -a >/dev/null 2>&1 || true; \
             DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades acme-web=$v\" >/dev/null",
            fleet = fleet_ctl.display(),
            log = log.display()
        ),
    );
    (take, restore, log)
}

/// With `[snapshot]` hooks configured, every apply is preceded by a snapshot whose id is
/// recorded in the rollback plan; with `on_rollback = "always"` the failed wave is undone by
/// restoring it (not by the package steps, which would have held the package), and the
/// restore is judged from the host's inventory. Both hook runs are in the audit log.
#[test]
fn a_snapshot_is_taken_before_each_apply_and_restored_by_the_rollback() {
    let fleet = fleet_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let hosts = ["h34", "h35"];
    let (take, restore, log) = snapshot_hooks(dir.path());
    let config = fleet.config_with(
        dir.path(),
        &hosts,
        &fleet.known_hosts(),
        &format!(
            "[rollout]\nskip_canary_for = [\"moderate\"]\nwaves = [50, 100]\n\n\
             [snapshot]\ntake = [\"{take}\", \"{{host}}\", \"{{address}}\"]\n\
             restore = [\"{restore}\", \"{{host}}\", \"{{snapshot}}\"]\ntimeout = \"60s\"\n\
             on_rollback = \"always\"\n"
        ),
    );
    scan_ok(&config);
    start(&config, "ro-snap", "acme-web=1.0-3", "moderate");
    let state = stored(&config, "ro-snap");
    assert_eq!(status_word(&state), "rolled-back", "{state:#}");
    let first = stage_hosts(&state, "wave 1");
    let second = stage_hosts(&state, "wave 2");
    assert_eq!((first.len(), second.len()), (1, 1));
    let (h, other) = (first[0].as_str(), second[0].as_str());
    assert_eq!(
        host_words(&state, h),
        ("failed".into(), "rolled-back".into())
    );
    assert_eq!(
        host_words(&state, other),
        ("pending".into(), "not-requested".into())
    );

    // The hooks ran once each, for the wave's host only, in that order.
    let address = fleet.host(h)["addr"].as_str().unwrap().to_string();
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!("take {h} {address} 1.0-1\nrestore {h} snap-{h}-1.0-1\n")
    );
    // Inside: back at 1.0-1 and not held (the snapshot was restored, the package steps
    // that end with a hold were not run); the other host never saw 1.0-3.
    assert!(ever_installed(&fleet, h, "acme-web", "1.0-3"));
    assert_eq!(
        state_inside(&fleet, h, "acme-web"),
        ("ii".into(), "1.0-1".into())
    );
    assert!(held_inside(&fleet, h).is_empty());
    assert!(!ever_installed(&fleet, other, "acme-web", "1.0-3"));

    // The audit log has both hook runs, each before (start) and after (end) it ran.
    let audit = std::fs::read_to_string(dir.path().join("state/audit.jsonl")).unwrap();
    let hooks: Vec<(String, String, Value)> = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["plugin"] == "snapshot-hook")
        .map(|v| {
            (
                v["phase"].as_str().unwrap().to_string(),
                v["program"].as_str().unwrap().to_string(),
                v["status"].clone(),
            )
        })
        .collect();
    assert_eq!(
        hooks,
        vec![
            ("start".to_string(), take.clone(), Value::Null),
            ("end".to_string(), take, serde_json::json!(0)),
            ("start".to_string(), restore.clone(), Value::Null),
            ("end".to_string(), restore, serde_json::json!(0)),
        ]
    );
}

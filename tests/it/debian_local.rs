//! The Debian plugin against this machine's real dpkg.

use std::cmp::Ordering;
use std::process::Command;

use patchwave_core::{Change, PackageOutcome};
use patchwave_plugin_host::PluginGrants;

use crate::support::{assert_inventory_matches, debian_plugin, dpkg_oracle, local, stdout_of};

fn on_this_machine(args: &[&str]) -> String {
    stdout_of(Command::new(args[0]).args(&args[1..]))
}

fn is_debian_like() -> bool {
    std::path::Path::new("/var/lib/dpkg/status").exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_of_this_machine_equals_dpkg_query() {
    if !is_debian_like() {
        eprintln!("SKIP: this machine has no dpkg database");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let debian = debian_plugin(dir.path(), PluginGrants::Manifest).await;
    let inventory = debian.inventory(local()).await.unwrap();
    let oracle = dpkg_oracle(&on_this_machine);
    assert!(
        oracle.len() > 50,
        "implausibly small dpkg database: {}",
        oracle.len()
    );
    assert_inventory_matches(&inventory, &oracle);
    // Source packages are filled in (dpkg defaults the source to the binary name).
    assert!(inventory
        .iter()
        .all(|p| p.source.as_deref().is_some_and(|s| !s.is_empty())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facts_of_this_machine_match_os_release_and_uname() {
    if !is_debian_like() {
        eprintln!("SKIP: this machine has no dpkg database");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let debian = debian_plugin(dir.path(), PluginGrants::Manifest).await;
    let facts = debian.facts(local()).await.unwrap();
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap();
    let field = |k: &str| {
        os_release
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim_matches('"').to_string())
    };
    assert_eq!(Some(facts.id.clone()), field("ID"));
    assert_eq!(Some(facts.version_id.clone()), field("VERSION_ID"));
    assert_eq!(facts.kernel, on_this_machine(&["uname", "-r"]).trim());
    assert_eq!(facts.arch, on_this_machine(&["uname", "-m"]).trim());
    assert_eq!(
        facts.reboot_required,
        std::path::Path::new("/var/run/reboot-required").exists()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_this_machines_dpkg_state() {
    if !is_debian_like() || Command::new("apt-get").arg("--version").output().is_err() {
        eprintln!("SKIP: this machine has no dpkg database or no apt-get");
        return;
    }
    // dpkg itself is always installed where there is a dpkg database.
    let field =
        |f: &str| on_this_machine(&["dpkg-query", "-W", &format!("--showformat={f}"), "dpkg"]);
    let installed = field("${Version}");
    assert_eq!(
        field("${db:Status-Abbrev}"),
        "ii ",
        "dpkg is not plainly installed here"
    );
    let dir = tempfile::tempdir().unwrap();
    let debian = debian_plugin(dir.path(), PluginGrants::Manifest).await;
    let verify = |to: &str| {
        let changes = [Change {
            name: "dpkg".into(),
            from: None,
            to: to.to_string(),
        }];
        let debian = &debian;
        async move { debian.verify(local(), &changes).await.unwrap() }
    };
    let outcome = |wanted: &str, ok: bool| PackageOutcome {
        name: "dpkg".into(),
        wanted: Some(wanted.to_string()),
        found: Some(installed.clone()),
        state: "ii".into(),
        ok,
    };

    let at_installed = verify(&installed).await;
    assert_eq!(at_installed.outcomes, [outcome(&installed, true)]);
    assert!(at_installed.ok, "{at_installed:?}");
    assert_eq!(at_installed.status, 0);
    // It waited for dpkg's lock first (as root; unprivileged, apt says why it could not).
    assert!(
        at_installed
            .output
            .starts_with("$ apt-get -o DPkg::Lock::Timeout=120 check\n"),
        "{}",
        at_installed.output
    );

    let other = format!("{installed}+patchwave.verify1");
    let at_other = verify(&other).await;
    assert_eq!(at_other.outcomes, [outcome(&other, false)]);
    assert!(!at_other.ok, "{at_other:?}");
    assert_eq!(at_other.status, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_grants_the_plugin_reads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let debian = debian_plugin(dir.path(), PluginGrants::List(vec![])).await;
    let err = debian.inventory(local()).await.unwrap_err();
    assert!(
        matches!(err, patchwave_core::PluginError::Denied { .. }),
        "{err:?}"
    );
}

/// A small deterministic generator (xorshift) so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A random valid Debian version: epochs, `~`, `+`, `.`, letters, digits with leading zeros,
/// revisions with and without hyphens inside the upstream part.
fn version(rng: &mut Rng) -> String {
    let atoms = [
        "0",
        "1",
        "2",
        "9",
        "10",
        "01",
        "007",
        "123456789012345678901234",
        "a",
        "b",
        "Z",
        "rc",
        "beta",
        "~",
        "~~",
        "+",
        "+b1",
        ".",
        "dfsg",
        "~rc1",
        "+really",
        "p",
    ];
    let mut v = String::new();
    if rng.below(4) == 0 {
        v.push_str(&format!("{}:", rng.below(3)));
    }
    v.push_str(&rng.below(12).to_string());
    for _ in 0..rng.below(5) {
        v.push_str(rng.pick(&atoms));
    }
    if rng.below(3) > 0 {
        if rng.below(4) == 0 {
            v.push('-');
            v.push_str(&rng.below(3).to_string());
            v.push_str(rng.pick(&["", "a", "~1", "+2"]));
        }
        v.push('-');
        v.push_str(&rng.below(10).to_string());
        for _ in 0..rng.below(3) {
            v.push_str(rng.pick(&atoms));
        }
    }
    v
}

/// A version close to `v`: the interesting comparisons are between near neighbours.
fn neighbour(rng: &mut Rng, v: &str) -> String {
    match rng.below(6) {
        0 => v.to_string(),
        1 => format!("{v}{}", rng.pick(&["~", "+", "a", "0", ".0", "~rc1", "-1"])),
        2 => v.replacen(|c: char| c.is_ascii_digit(), &rng.below(10).to_string(), 1),
        3 if v.contains(':') => v
            .split_once(':')
            .map(|(_, r)| r.to_string())
            .unwrap_or_default(),
        3 => format!("1:{v}"),
        4 => {
            v.trim_end_matches(|c: char| c.is_ascii_alphanumeric())
                .to_string()
                + "1"
        }
        _ => version(rng),
    }
}

fn valid_for_dpkg(v: &str) -> bool {
    // The generator can produce an empty upstream part or a trailing hyphen; leave those out.
    let rest = v.split_once(':').map_or(v, |(_, r)| r);
    !rest.is_empty()
        && !rest.ends_with('-')
        && !rest.starts_with('-')
        && rest.starts_with(|c: char| c.is_ascii_digit())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_ordering_agrees_with_dpkg_compare_versions() {
    if Command::new("dpkg").arg("--version").output().is_err() {
        eprintln!("SKIP: dpkg is not installed here; it is the oracle");
        return;
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut pairs: Vec<(String, String)> = vec![
        ("1.0~rc1".into(), "1.0".into()),
        ("1:0.1".into(), "2.0".into()),
        ("1.0-1".into(), "1.0-1+b1".into()),
        ("1.0a".into(), "1.0+".into()),
        ("2.30".into(), "2.4".into()),
        ("0001".into(), "1".into()),
        ("1.0".into(), "1.0-0".into()),
        ("1.0~~".into(), "1.0~".into()),
        ("1.0~".into(), "1.0".into()),
        ("0:1.0".into(), "1.0".into()),
        ("1.2.3-1-1".into(), "1.2.3-1".into()),
        (
            "99999999999999999999999".into(),
            "99999999999999999999998".into(),
        ),
    ];
    while pairs.len() < 4000 {
        let a = version(&mut rng);
        let b = neighbour(&mut rng, &a);
        if valid_for_dpkg(&a) && valid_for_dpkg(&b) {
            pairs.push((a, b));
        }
    }
    // dpkg itself is the oracle: one shell, one dpkg call or two per pair.
    let mut script = String::from("set -u\n");
    for (a, b) in &pairs {
        script.push_str(&format!(
            "if dpkg --compare-versions '{a}' lt '{b}' 2>/dev/null; then echo '<'; elif dpkg --compare-versions '{a}' eq '{b}' 2>/dev/null; then echo '='; else echo '>'; fi\n"
        ));
    }
    let script_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(script_file.path(), &script).unwrap();
    let expected = stdout_of(Command::new("sh").arg(script_file.path()));
    let expected: Vec<&str> = expected.lines().collect();
    assert_eq!(expected.len(), pairs.len());

    let dir = tempfile::tempdir().unwrap();
    let debian = debian_plugin(dir.path(), PluginGrants::List(vec![])).await;
    let answers = debian.compare_versions(&pairs).await.unwrap();
    let mut wrong = Vec::new();
    for ((pair, want), got) in pairs.iter().zip(&expected).zip(&answers) {
        let got = match got {
            Ok(Ordering::Less) => "<",
            Ok(Ordering::Equal) => "=",
            Ok(Ordering::Greater) => ">",
            Err(e) => {
                wrong.push(format!("{pair:?}: plugin refused: {e}"));
                continue;
            }
        };
        if got != *want {
            wrong.push(format!("{} {got} {} but dpkg says {want}", pair.0, pair.1));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} disagree:\n{}",
        wrong.len(),
        pairs.len(),
        wrong.join("\n")
    );
    // The generated set really covers the hard parts.
    for needle in ["~", "+", ":", "-"] {
        assert!(
            pairs.iter().filter(|(a, _)| a.contains(needle)).count() > 100,
            "few versions with {needle}"
        );
    }
    assert!(expected.contains(&"<") && expected.contains(&"=") && expected.contains(&">"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_versions_are_named_without_failing_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let debian = debian_plugin(dir.path(), PluginGrants::List(vec![])).await;
    let answers = debian
        .compare_versions(&[
            ("1.0".into(), "1.0 beta".into()),
            ("x:1".into(), "1".into()),
            ("1.0".into(), "1.1".into()),
        ])
        .await
        .unwrap();
    assert!(
        matches!(&answers[0], Err(e) if e.contains("1.0 beta")),
        "{answers:?}"
    );
    assert!(
        matches!(&answers[1], Err(e) if e.contains("x:1")),
        "{answers:?}"
    );
    assert_eq!(answers[2], Ok(Ordering::Less));
}

/// The Debian plugin's manifest as it loads.
async fn declared() -> Vec<patchwave_core::ExecGrant> {
    let dir = tempfile::tempdir().unwrap();
    let debian = debian_plugin(dir.path(), PluginGrants::List(vec![])).await;
    debian.manifest().wants.clone()
}

fn config_grants(text: &str, name: &str) -> Vec<patchwave_core::ExecGrant> {
    let config =
        patchwave_engine::Config::from_toml(text, name, std::path::Path::new("/")).unwrap();
    match config.plugin("debian").grants {
        patchwave_engine::config::GrantsConfig::List(list) => list,
        other => panic!("{name}: {other:?}"),
    }
}

/// Operators copy these files: every grant in them must be exactly a declaration of the
/// plugin, or `plugin inspect` shows it DENIED and the command it stands for never runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_configs_grant_exactly_what_the_plugin_declares() {
    let wants = declared().await;
    let deploy = crate::support::repo().join("deploy/config");
    // example.toml with its commented-out change grants switched on: every declaration, in
    // the manifest's order.
    let example = std::fs::read_to_string(deploy.join("example.toml")).unwrap();
    let all_on: String = example
        .lines()
        .map(|l| match l.strip_prefix("  # { program") {
            Some(rest) => format!("  {{ program{rest}\n"),
            None => format!("{l}\n"),
        })
        .collect();
    assert_eq!(config_grants(&all_on, "example.toml"), wants);
    // As shipped it grants a scan's reads, each exactly as declared.
    let scan = config_grants(&example, "example.toml");
    assert_eq!(scan.len(), 7, "{scan:#?}");
    let embedded = std::fs::read_to_string(deploy.join("embedded.toml")).unwrap();
    let defaults = config_grants(&embedded, "embedded.toml");
    assert_eq!(defaults, scan);
    for g in &defaults {
        assert!(wants.contains(g), "{g} is not a declaration");
        assert!(g.env.is_empty() && !g.args.iter().any(|a| a.contains("install")));
    }
}

/// The declared apt commands, run on this machine's real apt with `-s` (simulate): apt
/// accepts `--no-remove` beside `--allow-downgrades --allow-change-held-packages`, and
/// `APT::Cmd::Pattern-Only` keeps a name that is no package from being read as a regular
/// expression.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_declared_apt_commands_are_accepted_by_this_machines_apt() {
    if !is_debian_like() || !std::path::Path::new("/usr/bin/apt-get").exists() {
        eprintln!("SKIP: this machine has no apt");
        return;
    }
    let wants = declared().await;
    let find = |program: &str, has: &[&str]| {
        wants
            .iter()
            .find(|g| g.program == program && has.iter().all(|h| g.args.iter().any(|a| a == h)))
            .unwrap_or_else(|| panic!("no {program} grant with {has:?}"))
            .clone()
    };
    let version = on_this_machine(&["dpkg-query", "-W", "-f", "${Version}", "dpkg"]);
    let pin = format!("dpkg={version}");
    // `-s` first makes the real runs simulations too (apt takes no lock when simulating).
    let run = |grant: &patchwave_core::ExecGrant, tail: &str| {
        let (last, fixed) = grant.args.split_last().unwrap();
        assert_eq!(
            (last.as_str(), fixed.last().map(String::as_str)),
            ("**", Some("--")),
            "{grant}"
        );
        let mut cmd = Command::new(&grant.program);
        if fixed.first().map(String::as_str) != Some("-s") {
            cmd.arg("-s");
        }
        cmd.args(fixed)
            .arg(tail)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        for e in &grant.env {
            cmd.env(&e.name, &e.value);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let rollback = find(
        "apt-get",
        &[
            "install",
            "--allow-change-held-packages",
            "--no-remove",
            "-y",
        ],
    );
    let simulated_rollback = find("apt-get", &["-s", "install", "--no-remove"]);
    let install = find("apt-get", &["install", "-y", "--no-remove"]);
    for grant in [&rollback, &simulated_rollback, &install] {
        let (status, out) = run(grant, &pin);
        assert_eq!(status, Some(0), "{grant}\n{out}");
        assert!(out.contains("0 to remove"), "{grant}\n{out}");
    }
    // `les.` is a well-formed package name; as a regular expression it matches dozens.
    let remove = find("apt-get", &["remove", "-y"]);
    let (status, out) = run(&remove, "les.");
    assert_eq!(status, Some(100), "{out}");
    assert!(out.contains("Unable to locate package les."), "{out}");
    assert!(!out.contains("Remv"), "{out}");
}

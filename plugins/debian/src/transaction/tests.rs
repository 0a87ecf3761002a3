//! Apply, plan-rollback, rollback and verify against a scripted host. Every command the
//! flows run is also checked against the manifest's grants by the scripted host.

use super::*;
use crate::commands::{
    Spec, APT_INSTALL, APT_MARK_HOLD, APT_REMOVE, APT_ROLLBACK_INSTALL, APT_SIMULATE_INSTALL,
    APT_SIMULATE_REMOVE, APT_SIMULATE_ROLLBACK_INSTALL, APT_WAIT_IDLE, DPKG_CONFIGURE_PENDING,
    DPKG_QUERY, DPKG_QUERY_ALL,
};
use crate::host::fake::{out, scripted};

/// The command line a spec builds, as the scripted host sees it.
fn line(spec: &Spec, tail: &[&str]) -> String {
    std::iter::once(spec.program)
        .chain(spec.args.iter().copied())
        .chain(tail.iter().copied())
        .collect::<Vec<_>>()
        .join(" ")
}

fn change(name: &str, from: Option<&str>, to: &str) -> Change {
    Change {
        name: name.to_string(),
        from: from.map(str::to_string),
        to: to.to_string(),
    }
}

fn brief(o: &PackageOutcome) -> (String, Option<String>, String, bool) {
    (o.name.clone(), o.found.clone(), o.state.clone(), o.ok)
}

fn row(status: &str, name: &str, version: &str) -> String {
    format!("{status}\t{name}\t{version}\tamd64\t{name}\n")
}

#[test]
fn apply_success() {
    let pins = ["libssl3=3.0.22-1~deb12u2", "zlib1g:i386=1:1.3"];
    let mut host = scripted()
        .expect(
            &line(&APT_SIMULATE_INSTALL, &pins),
            out(
                0,
                "Inst libssl3 [3.0.19-1~deb12u2] (3.0.22-1~deb12u2 Debian-Security:12 [amd64])\n\
                 Inst zlib1g:i386 [1:1.2] (1:1.3 Debian:12 [i386])\n",
            ),
        )
        .expect(
            &line(&APT_INSTALL, &pins),
            out(0, "Setting up libssl3 ...\n"),
        )
        .expect(
            &line(&DPKG_QUERY, &["libssl3", "zlib1g:i386"]),
            out(
                0,
                "ii \tlibssl3\t3.0.22-1~deb12u2\tamd64\topenssl\n\
                 ii \tzlib1g\t1:1.3\ti386\tzlib\n",
            ),
        );
    let report = apply(
        &mut host,
        &[
            change("libssl3", Some("3.0.19-1~deb12u2"), "3.0.22-1~deb12u2"),
            change("zlib1g:i386", Some("1:1.2"), "1:1.3"),
        ],
    )
    .unwrap();
    host.done();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.status, 0);
    assert_eq!(report.outcomes.len(), 2);
    assert_eq!(
        report.outcomes[0].wanted.as_deref(),
        Some("3.0.22-1~deb12u2")
    );
    assert_eq!(
        brief(&report.outcomes[1]),
        (
            "zlib1g:i386".into(),
            Some("1:1.3".into()),
            "ii".into(),
            true
        )
    );
    assert!(report.output.contains("Setting up libssl3"));
}

#[test]
fn apply_failed_postinst_is_a_report_not_an_error() {
    let apt_out = "Setting up foo (2.0) ...\n\
        dpkg: error processing package foo (--configure):\n \
        installed foo package post-installation script subprocess returned error exit status 1\n\
        Errors were encountered while processing:\n foo\n\
        E: Sub-process /usr/bin/dpkg returned an error code (1)\n";
    let mut host = scripted()
        .expect(
            &line(&APT_SIMULATE_INSTALL, &["foo=2.0", "bar=1.1"]),
            out(
                0,
                "Inst foo [1.0] (2.0 x [all])\nInst bar [1.0] (1.1 x [all])\n",
            ),
        )
        .expect(
            &line(&APT_INSTALL, &["foo=2.0", "bar=1.1"]),
            out(100, apt_out),
        )
        .expect(
            &line(&DPKG_QUERY, &["foo", "bar"]),
            out(0, &(row("iF ", "foo", "2.0") + &row("ii ", "bar", "1.1"))),
        );
    let report = apply(
        &mut host,
        &[
            change("foo", Some("1.0"), "2.0"),
            change("bar", Some("1.0"), "1.1"),
        ],
    )
    .unwrap();
    host.done();
    assert!(!report.ok);
    assert_eq!(report.status, 100);
    assert_eq!(
        brief(&report.outcomes[0]),
        ("foo".into(), Some("2.0".into()), "iF".into(), false)
    );
    assert!(report.outcomes[1].ok);
    assert!(report.output.contains("post-installation script"));
    assert!(report.output.contains("[exit status 100]"));
}

#[test]
fn apply_unknown_package_and_version_mismatch() {
    let mut host = scripted()
        .expect(
            &line(&APT_SIMULATE_INSTALL, &["nosuch=1.0", "foo=2.0"]),
            out(100, "E: Unable to locate package nosuch\n"),
        )
        .expect(
            &line(&DPKG_QUERY, &["nosuch", "foo"]),
            out(1, &row("ii ", "foo", "1.0")),
        );
    let report = apply(
        &mut host,
        &[
            change("nosuch", None, "1.0"),
            change("foo", Some("1.0"), "2.0"),
        ],
    )
    .unwrap();
    host.done();
    assert!(!report.ok);
    assert_eq!(
        brief(&report.outcomes[0]),
        ("nosuch".into(), None, "un".into(), false)
    );
    assert_eq!(
        brief(&report.outcomes[1]),
        ("foo".into(), Some("1.0".into()), "ii".into(), false)
    );
}

#[test]
fn apply_rejects_bad_input_before_running_anything() {
    let bad = [
        change("Foo", None, "1.0"),
        change("foo", None, "1.0 ; rm -rf /"),
        change("foo", None, " 1.0"),
        change("foo", None, ""),
        change("foo", Some("1:"), "1.0"),
        change("-o", None, "1.0"),
        change("foo=1", None, "1.0"),
        // What the host would refuse anyway: apt's modifiers, a local package file.
        change("openssh-server-", None, "1.0"),
        change("g++", None, "4:12.2.0-3"),
        change("x.deb", None, "1.0"),
        change("foo", None, "1.0+"),
    ];
    for c in bad {
        let mut host = scripted();
        let got = apply(&mut host, std::slice::from_ref(&c));
        assert!(
            matches!(got, Err(PluginError::InvalidInput(_))),
            "{c:?}: {got:?}"
        );
        assert!(host.ran.is_empty());
    }
    let mut host = scripted();
    let dup = [change("foo", None, "1.0"), change("foo", None, "2.0")];
    assert!(matches!(
        apply(&mut host, &dup),
        Err(PluginError::InvalidInput(_))
    ));
    let report = apply(&mut host, &[]).unwrap();
    assert!(report.ok && report.outcomes.is_empty());
    assert!(host.ran.is_empty());
}

#[test]
fn apply_errors_only_when_nothing_ran_or_was_read() {
    let mut host = scripted().expect(
        &line(&APT_SIMULATE_INSTALL, &["foo=2.0"]),
        Err(PluginError::Denied("apt-get".into())),
    );
    let got = apply(&mut host, &[change("foo", None, "2.0")]);
    assert!(matches!(got, Err(PluginError::Denied(_))));

    let mut host = scripted()
        .expect(
            &line(&APT_SIMULATE_INSTALL, &["foo=2.0"]),
            out(0, "Inst foo (2.0 x [all])\n"),
        )
        .expect(&line(&APT_INSTALL, &["foo=2.0"]), out(0, "done\n"))
        .expect(&line(&DPKG_QUERY, &["foo"]), out(2, "dpkg-query: error\n"));
    let got = apply(&mut host, &[change("foo", None, "2.0")]);
    assert!(matches!(got, Err(PluginError::CommandFailed(_))));
    assert!(host
        .logs
        .iter()
        .any(|(l, m)| *l == Level::Error && m.contains("done")));
}

/// `apt-get -s install` of acme-api 1.0-2 on a host with acme-lib 2.0-1: apt upgrades the
/// library the new version needs and installs a dependency that was not there.
const API_SIMULATION: &str = "NOTE: This is only a simulation!\n\
    Reading package lists...\n\
    The following packages will be upgraded:\n  acme-api acme-lib\n\
    Inst acme-lib [2.0-1] (2.1-1 stable [all])\n\
    Inst acme-extra (1.0-1 stable [all])\n\
    Inst acme-api [1.0-1] (1.0-2 stable [all])\n\
    Conf acme-lib (2.1-1 stable [all])\n\
    Conf acme-extra (1.0-1 stable [all])\n\
    Conf acme-api (1.0-2 stable [all])\n";

/// Changes as comparable tuples.
fn changes(list: &[Change]) -> Vec<(String, Option<String>, String)> {
    list.iter()
        .map(|c| (c.name.clone(), c.from.clone(), c.to.clone()))
        .collect()
}

#[test]
fn plan_apply_is_the_whole_simulated_transaction() {
    let mut host = scripted().expect(
        &line(&APT_SIMULATE_INSTALL, &["acme-api=1.0-2"]),
        out(0, API_SIMULATION),
    );
    let tx = plan_apply(&mut host, &[change("acme-api", Some("1.0-1"), "1.0-2")]).unwrap();
    host.done();
    assert_eq!(
        changes(&tx.changes),
        changes(&[
            change("acme-lib", Some("2.0-1"), "2.1-1"),
            change("acme-extra", None, "1.0-1"),
            change("acme-api", Some("1.0-1"), "1.0-2"),
        ])
    );
    assert!(tx.removals.is_empty());

    // Removals are named with their installed version; a foreign architecture keeps its
    // qualifier.
    let mut host = scripted().expect(
        &line(&APT_SIMULATE_INSTALL, &["libfoo:i386=2.0"]),
        out(
            0,
            "Remv libfoo-old:i386 [1.0]\nInst libfoo:i386 [1.0] (2.0 x [i386])\n",
        ),
    );
    let tx = plan_apply(&mut host, &[change("libfoo:i386", Some("1.0"), "2.0")]).unwrap();
    host.done();
    assert_eq!(
        changes(&tx.changes),
        changes(&[change("libfoo:i386", Some("1.0"), "2.0")])
    );
    assert_eq!(
        tx.removals
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect::<Vec<_>>(),
        [("libfoo-old:i386", "1.0")]
    );

    // apt cannot resolve: an error with apt's words, nothing else run.
    let mut host = scripted().expect(
        &line(&APT_SIMULATE_INSTALL, &["acme-api=9.9"]),
        out(100, "E: Version '9.9' for 'acme-api' was not found\n"),
    );
    match plan_apply(&mut host, &[change("acme-api", None, "9.9")]) {
        Err(PluginError::CommandFailed(f)) => {
            assert_eq!(f.status, 100);
            assert!(
                f.output.contains("'9.9' for 'acme-api' was not found"),
                "{f:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    host.done();
    assert!(plan_apply(&mut scripted(), &[]).unwrap().changes.is_empty());
}

#[test]
fn apply_installs_the_whole_transaction_it_is_given() {
    let pins = ["acme-api=1.0-2", "acme-extra=1.0-1", "acme-lib=2.1-1"];
    let mut host = scripted()
        .expect(&line(&APT_SIMULATE_INSTALL, &pins), out(0, API_SIMULATION))
        .expect(
            &line(&APT_INSTALL, &pins),
            out(0, "Setting up acme-api (1.0-2) ...\n"),
        )
        .expect(
            &line(&DPKG_QUERY, &["acme-api", "acme-extra", "acme-lib"]),
            out(
                0,
                &(row("ii ", "acme-api", "1.0-2")
                    + &row("ii ", "acme-extra", "1.0-1")
                    + &row("ii ", "acme-lib", "2.1-1")),
            ),
        );
    let report = apply(
        &mut host,
        &[
            change("acme-api", Some("1.0-1"), "1.0-2"),
            change("acme-extra", None, "1.0-1"),
            change("acme-lib", Some("2.0-1"), "2.1-1"),
        ],
    )
    .unwrap();
    host.done();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.outcomes.len(), 3);
}

#[test]
fn apply_refuses_a_resolution_beyond_its_changes() {
    // Only acme-api was given, but apt would also upgrade acme-lib and add acme-extra: a host
    // that resolves differently from the canary is refused, never patched differently.
    let mut host = scripted()
        .expect(
            &line(&APT_SIMULATE_INSTALL, &["acme-api=1.0-2"]),
            out(0, API_SIMULATION),
        )
        .expect(
            &line(&DPKG_QUERY, &["acme-api"]),
            out(0, &row("ii ", "acme-api", "1.0-1")),
        );
    let report = apply(&mut host, &[change("acme-api", Some("1.0-1"), "1.0-2")]).unwrap();
    host.done();
    assert!(!host
        .ran
        .iter()
        .any(|l| l == &line(&APT_INSTALL, &["acme-api=1.0-2"])));
    assert!(!report.ok);
    assert_eq!(report.status, REFUSED_STATUS);
    assert!(
        report
            .output
            .contains("not run: apt would also remove [] and install or change [acme-lib=2.1-1 acme-extra=1.0-1]"),
        "{}",
        report.output
    );
    assert_eq!(
        brief(&report.outcomes[0]),
        ("acme-api".into(), Some("1.0-1".into()), "ii".into(), false)
    );

    // Another version of a package it was given, or a removal, is refused the same way.
    for (sim, why) in [
        (
            "Inst foo [1.0] (2.1 x [all])\n",
            "install or change [foo=2.1]",
        ),
        (
            "Remv bar [3.0]\nInst foo [1.0] (2.0 x [all])\n",
            "remove [bar] and",
        ),
    ] {
        let mut host = scripted()
            .expect(&line(&APT_SIMULATE_INSTALL, &["foo=2.0"]), out(0, sim))
            .expect(
                &line(&DPKG_QUERY, &["foo"]),
                out(0, &row("ii ", "foo", "1.0")),
            );
        let report = apply(&mut host, &[change("foo", Some("1.0"), "2.0")]).unwrap();
        host.done();
        assert_eq!(report.status, REFUSED_STATUS);
        assert!(report.output.contains(why), "{}", report.output);
    }
}

#[test]
fn plan_rollback_from_the_database() {
    let mut host = scripted().expect(
        &line(&DPKG_QUERY, &["foo", "bar", "baz", "qux"]),
        out(
            1,
            &(row("hi ", "foo", "1.0") + &row("ii ", "baz", "2.9") + &row("ii ", "qux", "5.0")),
        ),
    );
    let steps = plan_rollback(
        &mut host,
        &[
            change("foo", Some("1.0"), "2.0"),
            change("bar", None, "1.0"),
            change("baz", Some("3.0"), "3.1"),
            change("qux", Some("4.0"), "5.0"),
        ],
    )
    .unwrap();
    host.done();
    let got: Vec<String> = steps.iter().map(|s| format!("{s:?}")).collect();
    let want = [
        RollbackStep::Downgrade(change("foo", Some("2.0"), "1.0")),
        RollbackStep::Downgrade(change("baz", Some("3.1"), "2.9")),
        RollbackStep::Uninstall("bar".into()),
        RollbackStep::Hold(Pin {
            name: "foo".into(),
            version: "1.0".into(),
        }),
        RollbackStep::Hold(Pin {
            name: "baz".into(),
            version: "2.9".into(),
        }),
    ];
    let want: Vec<String> = want.iter().map(|s| format!("{s:?}")).collect();
    assert_eq!(got, want);
    // The disagreements about baz and qux were logged.
    let warnings = host.logs.iter().filter(|(l, _)| *l == Level::Warn).count();
    assert_eq!(warnings, 2);
}

#[test]
fn rollback_runs_the_plan() {
    let steps = [
        RollbackStep::Downgrade(change("foo", Some("2.0"), "1.0")),
        RollbackStep::Downgrade(change("baz", Some("3.1"), "2.9")),
        RollbackStep::Uninstall("bar".into()),
        RollbackStep::Hold(Pin {
            name: "foo".into(),
            version: "1.0".into(),
        }),
        RollbackStep::Hold(Pin {
            name: "baz".into(),
            version: "2.9".into(),
        }),
    ];
    let mut host = scripted()
        .expect(
            &line(&DPKG_QUERY_ALL, &[]),
            out(0, &(row("ii ", "foo", "2.0") + &row("ii ", "baz", "3.1"))),
        )
        .expect(
            &line(&APT_SIMULATE_ROLLBACK_INSTALL, &["foo=1.0", "baz=2.9"]),
            out(
                0,
                "Inst foo [2.0] (1.0 Debian:12 [amd64])\nInst baz [3.1] (2.9 Debian:12 [amd64])\n",
            ),
        )
        .expect(
            &line(&APT_ROLLBACK_INSTALL, &["foo=1.0", "baz=2.9"]),
            out(0, "ok\n"),
        )
        .expect(
            &line(&DPKG_QUERY, &["foo", "baz"]),
            out(0, &(row("ii ", "baz", "2.9") + &row("ii ", "foo", "1.0"))),
        )
        .expect(
            &line(&APT_SIMULATE_REMOVE, &["bar"]),
            out(0, "Remv bar [1.0]\n"),
        )
        .expect(&line(&APT_REMOVE, &["bar"]), out(0, "Removing bar\n"))
        .expect(
            &line(&DPKG_QUERY, &["bar"]),
            out(0, &row("rc ", "bar", "1.0")),
        )
        .expect(
            &line(&DPKG_QUERY, &["foo", "baz"]),
            out(0, &(row("ii ", "baz", "2.9") + &row("ii ", "foo", "1.0"))),
        )
        .expect(
            &line(&APT_MARK_HOLD, &["foo"]),
            out(0, "foo set on hold.\n"),
        )
        .expect(
            &line(&APT_MARK_HOLD, &["baz"]),
            out(0, "baz set on hold.\n"),
        )
        .expect(
            &line(&DPKG_QUERY, &["foo", "baz"]),
            out(0, &(row("hi ", "baz", "2.9") + &row("hi ", "foo", "1.0"))),
        );
    let report = rollback(&mut host, &steps).unwrap();
    host.done();
    assert!(report.ok, "{report:?}");
    let got: Vec<_> = report.outcomes.iter().map(brief).collect();
    assert_eq!(
        got,
        [
            ("foo".into(), Some("1.0".into()), "ii".into(), true),
            ("baz".into(), Some("2.9".into()), "ii".into(), true),
            ("bar".into(), None, "rc".into(), true),
            ("foo".into(), Some("1.0".into()), "hi".into(), true),
            ("baz".into(), Some("2.9".into()), "hi".into(), true),
        ]
    );
}

#[test]
fn rollback_repairs_half_configured_packages_first() {
    let mut host = scripted()
        .expect(
            &line(&DPKG_QUERY_ALL, &[]),
            out(0, &(row("iF ", "foo", "2.0") + &row("ii ", "bash", "5.2"))),
        )
        .expect(
            &line(&DPKG_CONFIGURE_PENDING, &[]),
            out(1, "dpkg: error processing package foo (--configure)\n"),
        )
        .expect(
            &line(&APT_SIMULATE_ROLLBACK_INSTALL, &["foo=1.0"]),
            out(
                0,
                "Inst foo [2.0] (1.0 Debian:12 [amd64])\nConf foo (1.0 Debian:12 [amd64])\n",
            ),
        )
        .expect(&line(&APT_ROLLBACK_INSTALL, &["foo=1.0"]), out(0, "ok\n"))
        .expect(
            &line(&DPKG_QUERY, &["foo"]),
            out(0, &row("ii ", "foo", "1.0")),
        );
    let steps = [RollbackStep::Downgrade(change("foo", Some("2.0"), "1.0"))];
    let report = rollback(&mut host, &steps).unwrap();
    host.done();
    // dpkg --configure -a failing does not count: the downgrade that follows fixes it.
    assert!(report.ok, "{report:?}");
    assert!(report.output.contains("foo (iF)"));
    assert!(host
        .logs
        .iter()
        .any(|(l, m)| *l == Level::Warn && m.contains("half-way")));
}

#[test]
fn rollback_refuses_unexpected_removals_and_changes() {
    let mut host = scripted()
        .expect(
            &line(&DPKG_QUERY_ALL, &[]),
            out(0, &row("ii ", "jq", "1.6")),
        )
        .expect(
            &line(&APT_SIMULATE_REMOVE, &["jq"]),
            out(0, "Remv yq [3.1.0-3]\nRemv jq [1.6]\n"),
        )
        .expect(
            &line(&DPKG_QUERY, &["jq"]),
            out(0, &row("ii ", "jq", "1.6")),
        );
    let report = rollback(&mut host, &[RollbackStep::Uninstall("jq".into())]).unwrap();
    host.done();
    assert!(!report.ok);
    assert_eq!(report.status, REFUSED_STATUS);
    assert!(report.output.contains("remove [yq]"), "{}", report.output);
    assert_eq!(
        brief(&report.outcomes[0]),
        ("jq".into(), Some("1.6".into()), "ii".into(), false)
    );

    let mut host = scripted()
        .expect(
            &line(&DPKG_QUERY_ALL, &[]),
            out(0, &row("ii ", "foo", "2.0")),
        )
        .expect(
            &line(&APT_SIMULATE_ROLLBACK_INSTALL, &["foo=1.0"]),
            out(
                0,
                "Inst libbar [1.0] (1.1 x [amd64])\nInst foo [2.0] (1.0 x [amd64])\n",
            ),
        )
        .expect(
            &line(&DPKG_QUERY, &["foo"]),
            out(0, &row("ii ", "foo", "2.0")),
        );
    let steps = [RollbackStep::Downgrade(change("foo", Some("2.0"), "1.0"))];
    let report = rollback(&mut host, &steps).unwrap();
    host.done();
    assert!(!report.ok);
    assert!(
        report.output.contains("install or change [libbar=1.1]"),
        "{}",
        report.output
    );
}

#[test]
fn rollback_skips_apt_when_there_is_nothing_to_do() {
    let mut host = scripted()
        .expect(
            &line(&DPKG_QUERY_ALL, &[]),
            out(0, &row("ii ", "foo", "1.0")),
        )
        .expect(
            &line(&APT_SIMULATE_ROLLBACK_INSTALL, &["foo=1.0"]),
            out(0, "foo is already the newest version (1.0).\n"),
        )
        .expect(
            &line(&DPKG_QUERY, &["foo"]),
            out(0, &row("ii ", "foo", "1.0")),
        );
    let steps = [RollbackStep::Downgrade(change("foo", Some("2.0"), "1.0"))];
    let report = rollback(&mut host, &steps).unwrap();
    host.done();
    assert!(report.ok, "{report:?}");
    assert!(report.output.contains("nothing to do"));
}

#[test]
fn rollback_never_holds_the_wrong_version() {
    let mut host = scripted()
        .expect(
            &line(&DPKG_QUERY, &["foo"]),
            out(0, &row("ii ", "foo", "2.0")),
        )
        .expect(
            &line(&DPKG_QUERY, &["foo"]),
            out(0, &row("ii ", "foo", "2.0")),
        );
    let steps = [RollbackStep::Hold(Pin {
        name: "foo".into(),
        version: "1.0".into(),
    })];
    let report = rollback(&mut host, &steps).unwrap();
    host.done();
    assert!(!report.ok);
    assert!(!host.ran.iter().any(|l| l.starts_with("apt-mark")));
    assert_eq!(
        brief(&report.outcomes[0]),
        ("foo".into(), Some("2.0".into()), "ii".into(), false)
    );
    assert!(report.output.contains("not holding foo"));
}

#[test]
fn rollback_unhold() {
    let mut host = scripted()
        .expect(
            &line(&DPKG_QUERY, &["foo"]),
            out(0, &row("hi ", "foo", "1.0")),
        )
        .expect(
            &line(&crate::commands::APT_MARK_UNHOLD, &["foo"]),
            out(0, "Canceled hold on foo.\n"),
        )
        .expect(
            &line(&DPKG_QUERY, &["foo"]),
            out(0, &row("ii ", "foo", "1.0")),
        );
    let report = rollback(&mut host, &[RollbackStep::Unhold("foo".into())]).unwrap();
    host.done();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.outcomes[0].wanted, None);
}

#[test]
fn rollback_input_checks() {
    let mut host = scripted();
    let got = rollback(&mut host, &[RollbackStep::RestoreSnapshot("snap-1".into())]);
    assert!(matches!(got, Err(PluginError::Unsupported(_))));
    let got = rollback(
        &mut host,
        &[
            RollbackStep::Uninstall("foo".into()),
            RollbackStep::RestoreSnapshot("snap-1".into()),
        ],
    );
    assert!(matches!(got, Err(PluginError::Unsupported(_))));
    let got = rollback(&mut host, &[RollbackStep::Uninstall("rm -rf".into())]);
    assert!(matches!(got, Err(PluginError::InvalidInput(_))));
    let got = rollback(
        &mut host,
        &[
            RollbackStep::Uninstall("foo".into()),
            RollbackStep::Downgrade(change("foo", None, "1.0")),
        ],
    );
    assert!(matches!(got, Err(PluginError::InvalidInput(_))));
    assert!(host.ran.is_empty());
    assert!(rollback(&mut host, &[]).unwrap().ok);
}

#[test]
fn report_output_is_bounded() {
    let mut report = Report::default();
    let cmd = APT_INSTALL.command(&["foo=1"]);
    for _ in 0..20 {
        let big = Output {
            status: 0,
            stdout: "é".repeat(5000).into_bytes(),
            stderr: Vec::new(),
        };
        report.ran(&cmd, &big, true);
    }
    let done = report.finish();
    assert!(done.output.len() <= OUTPUT_MAX + 3);
    assert!(done.output.starts_with("..."));
}

/// apt-get's output when it got dpkg's lock at once and finds nothing broken.
const APT_CHECK_IDLE: &str =
    "Reading package lists...\nBuilding dependency tree...\nReading state information...\n";

/// Every field of an outcome (the bindings' records have no `PartialEq`).
type Fields = (String, Option<String>, Option<String>, String, bool);

fn fields(o: &PackageOutcome) -> Fields {
    (
        o.name.clone(),
        o.wanted.clone(),
        o.found.clone(),
        o.state.clone(),
        o.ok,
    )
}

fn outcomes(report: &ApplyReport) -> Vec<Fields> {
    report.outcomes.iter().map(fields).collect()
}

/// The outcome of a package that should be installed at `wanted`.
fn outcome(name: &str, wanted: &str, found: Option<&str>, state: &str, ok: bool) -> Fields {
    (
        name.into(),
        Some(wanted.into()),
        found.map(str::to_string),
        state.into(),
        ok,
    )
}

/// `verify` of `changes` against a database that answers `dpkg_query` (status 0 or 1).
fn verify_against(changes: &[Change], queried: &[&str], status: i32, rows: &str) -> ApplyReport {
    let mut host = scripted()
        .expect(&line(&APT_WAIT_IDLE, &[]), out(0, APT_CHECK_IDLE))
        .expect(&line(&DPKG_QUERY, queried), out(status, rows));
    let report = verify(&mut host, changes).unwrap();
    host.done();
    report
}

#[test]
fn verify_fully_installed_at_the_target_is_ok() {
    let report = verify_against(
        &[
            change("libssl3", Some("3.0.19-1~deb12u2"), "3.0.22-1~deb12u2"),
            change("zlib1g:i386", None, "1:1.3"),
        ],
        &["libssl3", "zlib1g:i386"],
        0,
        &(row("ii ", "libssl3", "3.0.22-1~deb12u2") + "hi \tzlib1g\t1:1.3\ti386\tzlib\n"),
    );
    assert_eq!(
        outcomes(&report),
        [
            outcome(
                "libssl3",
                "3.0.22-1~deb12u2",
                Some("3.0.22-1~deb12u2"),
                "ii",
                true
            ),
            outcome("zlib1g:i386", "1:1.3", Some("1:1.3"), "hi", true),
        ]
    );
    assert!(report.ok);
    assert_eq!(report.status, 0);
    assert_eq!(
        report.output,
        format!("$ apt-get -o DPkg::Lock::Timeout=120 check\n{APT_CHECK_IDLE}[exit status 0]\n")
    );
}

#[test]
fn verify_half_configured_at_the_target_is_not_ok_and_names_the_state() {
    let report = verify_against(
        &[
            change("foo", Some("1.0"), "2.0"),
            change("bar", Some("1.0"), "1.1"),
        ],
        &["foo", "bar"],
        0,
        &(row("iF ", "foo", "2.0") + &row("iU ", "bar", "1.1")),
    );
    assert_eq!(
        outcomes(&report),
        [
            outcome("foo", "2.0", Some("2.0"), "iF", false),
            outcome("bar", "1.1", Some("1.1"), "iU", false),
        ]
    );
    assert!(!report.ok);
    assert_eq!(report.status, 0);
}

#[test]
fn verify_another_version_is_not_ok() {
    let report = verify_against(
        &[change("foo", Some("1.0"), "2.0")],
        &["foo"],
        0,
        &row("ii ", "foo", "1.0"),
    );
    assert_eq!(
        outcomes(&report),
        [outcome("foo", "2.0", Some("1.0"), "ii", false)]
    );
    assert!(!report.ok);
}

#[test]
fn verify_absent_package_is_not_ok() {
    // `nosuch` is unknown to dpkg (no line, dpkg-query exits 1); `gone` was removed and
    // only its configuration files are left.
    let report = verify_against(
        &[change("nosuch", None, "1.0"), change("gone", None, "3.0")],
        &["nosuch", "gone"],
        1,
        &row("rc ", "gone", "3.0"),
    );
    assert_eq!(
        outcomes(&report),
        [
            outcome("nosuch", "1.0", None, "un", false),
            outcome("gone", "3.0", None, "rc", false),
        ]
    );
    assert!(!report.ok);
}

#[test]
fn verify_lock_timeout_is_an_error_naming_the_wait() {
    let waiting = "Waiting for cache lock: Could not get lock /var/lib/dpkg/lock-frontend. \
                   It is held by process 4242 (apt-get)...\n";
    let mut host = scripted().expect(
        &line(&APT_WAIT_IDLE, &[]),
        Ok(Output {
            status: 100,
            stdout: waiting.repeat(3).into_bytes(),
            stderr: b"E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), \
                      is another process using it?\n"
                .to_vec(),
        }),
    );
    let got = verify(&mut host, &[change("foo", Some("1.0"), "2.0")]);
    host.done();
    let Err(PluginError::CommandFailed(failure)) = got else {
        panic!("expected a command failure, got {got:?}");
    };
    assert_eq!(failure.program, "apt-get");
    assert_eq!(failure.status, 100);
    assert!(
        failure.output.starts_with(
            "the package manager stayed busy for 120 s: another apt or dpkg run held its lock \
             the whole time; apt-get said:\n"
        ),
        "{}",
        failure.output
    );
    assert!(failure.output.contains("held by process 4242 (apt-get)"));
    assert!(failure.output.ends_with("is another process using it?\n"));
    // The database was not read.
    assert_eq!(host.ran.len(), 1);
}

#[test]
fn verify_lock_timeout_on_the_administration_directory_or_without_waiting() {
    for error in [
        "E: Unable to lock the administration directory (/var/lib/dpkg/), is another process using it?\n",
        "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 7 (dpkg)\n",
    ] {
        let mut host = scripted().expect(
            &line(&APT_WAIT_IDLE, &[]),
            Ok(Output {
                status: 100,
                stdout: Vec::new(),
                stderr: error.as_bytes().to_vec(),
            }),
        );
        let got = verify(&mut host, &[change("foo", None, "2.0")]);
        host.done();
        assert!(
            matches!(&got, Err(PluginError::CommandFailed(f)) if f.output.ends_with(error)),
            "{error}: {got:?}"
        );
    }
}

#[test]
fn verify_reads_back_after_a_check_that_waited_and_got_the_lock() {
    let waited = "Waiting for cache lock: Could not get lock /var/lib/dpkg/lock-frontend. \
                  It is held by process 4242 (apt-get)...\n"
        .to_string()
        + APT_CHECK_IDLE;
    let mut host = scripted()
        .expect(&line(&APT_WAIT_IDLE, &[]), out(0, &waited))
        .expect(
            &line(&DPKG_QUERY, &["foo"]),
            out(0, &row("ii ", "foo", "2.0")),
        );
    let report = verify(&mut host, &[change("foo", Some("1.0"), "2.0")]).unwrap();
    host.done();
    assert_eq!(
        outcomes(&report),
        [outcome("foo", "2.0", Some("2.0"), "ii", true)]
    );
    assert!(report.ok);
}

#[test]
fn verify_reads_back_and_reports_when_the_check_finds_broken_dependencies() {
    let broken = "Reading package lists...\nBuilding dependency tree...\n\
                  Reading state information...\n\
                  You might want to run 'apt --fix-broken install' to correct these.\n\
                  The following packages have unmet dependencies:\n \
                  foo : Depends: libfoo (>= 2.0) but 1.0 is installed\n";
    let mut host = scripted()
        .expect(
            &line(&APT_WAIT_IDLE, &[]),
            Ok(Output {
                status: 100,
                stdout: broken.as_bytes().to_vec(),
                stderr: b"E: Unmet dependencies. Try 'apt --fix-broken install' with no packages \
                          (or specify a solution).\n"
                    .to_vec(),
            }),
        )
        .expect(
            &line(&DPKG_QUERY, &["foo"]),
            out(0, &row("iU ", "foo", "2.0")),
        );
    let report = verify(&mut host, &[change("foo", Some("1.0"), "2.0")]).unwrap();
    host.done();
    assert_eq!(
        outcomes(&report),
        [outcome("foo", "2.0", Some("2.0"), "iU", false)]
    );
    assert!(!report.ok);
    // The check's status is not the report's: verify runs no package manager change.
    assert_eq!(report.status, 0);
    assert!(
        report.output.contains("E: Unmet dependencies."),
        "{}",
        report.output
    );
    assert!(
        report.output.ends_with("[exit status 100]\n"),
        "{}",
        report.output
    );
    assert_eq!(
        host.logs,
        [(
            Level::Warn,
            "apt-get check exited with status 100; reading the package states anyway".to_string()
        )]
    );
}

#[test]
fn verify_not_root_still_reads_back() {
    // Unprivileged, apt cannot open the lock file at all: that is no busy package manager.
    let mut host = scripted()
        .expect(
            &line(&APT_WAIT_IDLE, &[]),
            Ok(Output {
                status: 100,
                stdout: Vec::new(),
                stderr: b"E: Could not open lock file /var/lib/dpkg/lock-frontend - open (13: Permission denied)\n\
                          E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), are you root?\n"
                    .to_vec(),
            }),
        )
        .expect(&line(&DPKG_QUERY, &["foo"]), out(0, &row("ii ", "foo", "2.0")));
    let report = verify(&mut host, &[change("foo", None, "2.0")]).unwrap();
    host.done();
    assert_eq!(
        outcomes(&report),
        [outcome("foo", "2.0", Some("2.0"), "ii", true)]
    );
    assert!(report.ok);
}

#[test]
fn verify_checks_input_first_and_errors_only_when_nothing_could_be_read() {
    let mut host = scripted();
    let got = verify(&mut host, &[change("-o", None, "1.0")]);
    assert!(matches!(got, Err(PluginError::InvalidInput(_))), "{got:?}");
    let got = verify(&mut host, &[change("foo", None, "1.0 ; rm -rf /")]);
    assert!(matches!(got, Err(PluginError::InvalidInput(_))), "{got:?}");
    let empty = verify(&mut host, &[]).unwrap();
    assert!(empty.ok && empty.outcomes.is_empty() && empty.output.is_empty());
    assert!(host.ran.is_empty());

    let mut host = scripted().expect(
        &line(&APT_WAIT_IDLE, &[]),
        Err(PluginError::Denied("apt-get".into())),
    );
    let got = verify(&mut host, &[change("foo", None, "1.0")]);
    assert!(matches!(got, Err(PluginError::Denied(_))), "{got:?}");

    let mut host = scripted()
        .expect(&line(&APT_WAIT_IDLE, &[]), out(0, APT_CHECK_IDLE))
        .expect(&line(&DPKG_QUERY, &["foo"]), out(2, "dpkg-query: error\n"));
    let got = verify(&mut host, &[change("foo", None, "1.0")]);
    host.done();
    assert!(
        matches!(&got, Err(PluginError::CommandFailed(f)) if f.program == "dpkg-query" && f.status == 2),
        "{got:?}"
    );
}

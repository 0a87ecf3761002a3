//! The sandbox holds against a hostile plugin, and the host keeps serving after each fault.

use std::sync::Arc;
use std::time::Instant;

use patchwave_core::{Change, EnvGrant, ExecGrant, PluginError};
use patchwave_plugin_host::{Limits, LoadError, LoadedPlugin, PluginGrants, PluginRuntime};
use patchwave_transport::{LocalTransport, Transport};

use crate::support::{audit_lines, load, local, runtime, wasm};

const CANARY: &str = "/tmp/patchwave-hostile-canary";

fn grant(program: &str, args: &[&str]) -> ExecGrant {
    ExecGrant {
        program: program.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        each: None,
        env: vec![],
    }
}

fn grants() -> PluginGrants {
    // `echo` and `head` are granted; `touch` is declared by the plugin but not granted here.
    PluginGrants::List(vec![
        grant("echo", &["**"]),
        grant("head", &["-c", "*", "/dev/zero"]),
    ])
}

fn limits() -> Limits {
    Limits {
        deadline_ms: 500,
        memory_bytes: 64 << 20,
        max_items: 100_000,
        ..Limits::default()
    }
}

async fn hostile(rt: &PluginRuntime, limits: Limits) -> LoadedPlugin {
    load(rt, "patchwave_fixture_hostile", grants(), limits).await
}

/// The hostile fixture with these grants and the test limits.
async fn hostile_granted(rt: &PluginRuntime, grants: PluginGrants) -> LoadedPlugin {
    load(rt, "patchwave_fixture_hostile", grants, limits()).await
}

/// The audit log's last line.
fn last_line(dir: &std::path::Path) -> serde_json::Value {
    audit_lines(dir).pop().unwrap()
}

fn behave(what: &str) -> Vec<Change> {
    vec![Change {
        name: what.into(),
        from: None,
        to: "0".into(),
    }]
}

/// The `env` behaviour: `printenv NAME` with `NAME=VALUE` set.
fn set_env(name: &str, value: &str) -> Vec<Change> {
    let mut changes = behave("env");
    changes.push(Change {
        name: name.into(),
        from: None,
        to: value.into(),
    });
    changes
}

/// The `tail` behaviour: `/bin/echo ARGS…`.
fn tail(args: &[&str]) -> Vec<Change> {
    let mut changes = behave("tail");
    changes.extend(args.iter().map(|a| Change {
        name: a.to_string(),
        from: None,
        to: "0".into(),
    }));
    changes
}

/// After any fault the same loaded plugin must still serve calls.
async fn still_serving(plugin: &LoadedPlugin) {
    let facts = plugin
        .facts(local())
        .await
        .expect("plugin serves the next call");
    assert_eq!(facts.id, "debian");
    let echoed = plugin
        .apply(
            local(),
            &[
                Change {
                    name: "echo".into(),
                    from: None,
                    to: "0".into(),
                },
                Change {
                    name: "ok".into(),
                    from: None,
                    to: "0".into(),
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(echoed.output, "ok\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_is_interrupted_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let plugin = hostile(&rt, limits()).await;
    let t0 = Instant::now();
    let err = plugin.apply(local(), &behave("loop")).await.unwrap_err();
    let took = t0.elapsed();
    assert!(
        matches!(&err, PluginError::Deadline { plugin, function, limit_ms: 500 } if plugin == "hostile" && function == "apply"),
        "{err:?}"
    );
    assert!(
        took.as_millis() >= 500,
        "stopped before its deadline: {took:?}"
    );
    still_serving(&plugin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bomb_is_stopped_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let plugin = hostile(&rt, limits()).await;
    let err = plugin.apply(local(), &behave("bomb")).await.unwrap_err();
    assert!(
        matches!(&err, PluginError::MemoryLimit { limit_bytes, .. } if *limit_bytes == 64 << 20),
        "{err:?}"
    );
    still_serving(&plugin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_is_a_trap_carrying_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let plugin = hostile(&rt, limits()).await;
    let err = plugin.apply(local(), &behave("panic")).await.unwrap_err();
    match &err {
        PluginError::Trap {
            message, function, ..
        } => {
            assert_eq!(function, "apply");
            assert!(
                message.contains("hostile fixture panicked on purpose"),
                "{message}"
            );
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    still_serving(&plugin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeclared_exec_is_denied_audited_and_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let plugin = hostile(&rt, limits()).await;
    // The fixture tries `rm -rf /tmp/patchwave-hostile-canary`; keep one there to prove it survives.
    std::fs::create_dir_all(CANARY).unwrap();
    let err = plugin
        .apply(local(), &behave("undeclared"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PluginError::Denied { message } if message.contains("rm") && message.contains("not declared")),
        "{err:?}"
    );
    assert!(std::path::Path::new(CANARY).exists(), "denied command ran");
    let lines = audit_lines(dir.path());
    let denied: Vec<_> = lines.iter().filter(|l| l["program"] == "rm").collect();
    assert_eq!(denied.len(), 1, "{lines:?}");
    assert_eq!(denied[0]["decision"], "denied-undeclared");
    assert_eq!(denied[0]["plugin"], "hostile");
    assert_eq!(
        denied[0]["plugin_digest"].as_str().unwrap(),
        plugin.digest()
    );
    assert_eq!(denied[0]["host"], "localhost");
    assert!(denied[0]["status"].is_null());
    still_serving(&plugin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_but_ungranted_exec_is_denied_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let plugin = hostile(&rt, limits()).await;
    let _ = std::fs::remove_dir_all(CANARY);
    let _ = std::fs::remove_file(CANARY);
    let err = plugin
        .apply(local(), &behave("ungranted"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PluginError::Denied { message } if message.contains("touch") && message.contains("not granted")),
        "{err:?}"
    );
    assert!(
        !std::path::Path::new(CANARY).exists(),
        "ungranted command ran"
    );
    let lines = audit_lines(dir.path());
    let denied: Vec<_> = lines.iter().filter(|l| l["program"] == "touch").collect();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["decision"], "denied-not-granted");
    // Allowed requests are audited too, with their exit status and duration.
    still_serving(&plugin).await;
    let lines = audit_lines(dir.path());
    // Logged before it ran, then with its result.
    let echo: Vec<_> = lines.iter().filter(|l| l["program"] == "echo").collect();
    assert_eq!(echo.len(), 2, "{echo:?}");
    assert_eq!(echo[0]["phase"], "start");
    assert_eq!(echo[0]["decision"], "allowed");
    assert!(echo[0]["status"].is_null());
    let allowed = echo[1];
    assert_eq!(allowed["phase"], "end");
    assert_eq!(allowed["decision"], "allowed");
    assert_eq!(allowed["status"], 0);
    assert!(allowed["duration_ms"].is_u64());
    assert_eq!(allowed["args"], serde_json::json!(["ok"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_log_is_truncated_and_the_call_completes() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let plugin = hostile(&rt, limits()).await;
    let report = plugin.apply(local(), &behave("huge-log")).await.unwrap();
    assert_eq!(report.output, "logged");
    still_serving(&plugin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_result_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    // Enough memory for the guest to build a million outcomes: the host's item limit stops it.
    let plugin = hostile(
        &rt,
        Limits {
            memory_bytes: 512 << 20,
            deadline_ms: 20_000,
            ..limits()
        },
    )
    .await;
    let err = plugin
        .apply(local(), &behave("huge-result"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PluginError::ResultTooLarge { detail, .. } if detail.contains("limit of 100000")),
        "{err:?}"
    );
    // With the normal memory limit the same request dies inside the guest instead.
    let small = hostile(
        &rt,
        Limits {
            deadline_ms: 20_000,
            ..limits()
        },
    )
    .await;
    let err = small
        .apply(local(), &behave("huge-result"))
        .await
        .unwrap_err();
    assert!(matches!(err, PluginError::MemoryLimit { .. }), "{err:?}");
    still_serving(&plugin).await;
    still_serving(&small).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_exec_output_is_cut_off_by_the_transport() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let plugin = hostile(&rt, limits()).await;
    let capped: Arc<dyn Transport> =
        Arc::new(LocalTransport::new("localhost".into()).with_max_output(1 << 20));
    let err = plugin
        .apply(capped, &behave("huge-exec"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PluginError::Exec { message } if message.contains("more than 1048576 bytes")),
        "{err:?}"
    );
    let lines = audit_lines(dir.path());
    let head = lines
        .iter()
        .find(|l| l["program"] == "head" && l["phase"] == "end")
        .unwrap();
    assert_eq!(head["decision"], "allowed");
    assert!(head["error"].as_str().unwrap().contains("more than"));
    still_serving(&plugin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_wasm_gives_a_clear_load_error() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let path = dir.path().join("bad.wasm");

    let core_module = b"\0asm\x01\0\0\0";
    let err = rt
        .load_bytes(
            &path,
            core_module,
            PluginGrants::Manifest,
            Limits::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(&err, LoadError::NotAComponent { .. }), "{err:?}");
    assert!(err.to_string().contains("core WebAssembly module"), "{err}");

    let err = rt
        .load_bytes(
            &path,
            b"#!/bin/sh\necho hi\n",
            PluginGrants::Manifest,
            Limits::default(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a WebAssembly file"), "{err}");

    let real = std::fs::read(wasm("patchwave_fixture_hostile")).unwrap();
    let err = rt
        .load_bytes(
            &path,
            &real[..real.len() / 2],
            PluginGrants::Manifest,
            Limits::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(&err, LoadError::Invalid { .. }), "{err:?}");
    assert!(err.to_string().contains("bad.wasm"), "{err}");

    // The runtime still loads and runs a good plugin afterwards.
    let plugin = hostile(&rt, limits()).await;
    still_serving(&plugin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_components_are_cached_by_digest() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let first = hostile(&rt, limits()).await;
    // The cache holds its key (see trust.rs) and exactly one entry, named by the digest.
    let key = dir.path().join("cache/cache.key");
    let (keys, cached): (Vec<_>, Vec<_>) = walk(&dir.path().join("cache"))
        .into_iter()
        .partition(|p| *p == key);
    assert_eq!(keys, vec![key]);
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0]
        .to_string_lossy()
        .ends_with(&format!("{}.cwasm", first.digest())));
    // A second load (and a second runtime) uses the cache and behaves the same.
    let rt2 = runtime(dir.path());
    let second = hostile(&rt2, limits()).await;
    assert_eq!(second.digest(), first.digest());
    still_serving(&second).await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_interface_has_exactly_the_reviewed_imports() {
    // Every function a plugin can import from us must be reviewed for a grant check. `exec`
    // checks grants first; `log` reaches nothing. A new import fails this test until it is
    // added here together with its check.
    let wit = std::fs::read_to_string(crate::support::repo().join("wit/plugin.wit")).unwrap();
    let start = wit.find("interface host {").unwrap();
    let end = start + wit[start..].find("\n}\n").unwrap();
    let funcs: Vec<&str> = wit[start..end]
        .lines()
        .filter_map(|l| l.trim().split_once(": func(").map(|(name, _)| name))
        .collect();
    assert_eq!(funcs, vec!["exec", "log"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_calls_run_concurrently_each_in_a_fresh_store() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let plugin = Arc::new(hostile(&rt, limits()).await);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let plugin = plugin.clone();
        tasks.spawn(async move {
            let what = if i % 4 == 0 { "panic" } else { "echo" };
            plugin.apply(local(), &behave(what)).await
        });
    }
    let (mut ok, mut trapped) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(_) => ok += 1,
            Err(PluginError::Trap { .. }) => trapped += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!((ok, trapped), (12, 4));
}

/// The audit lines of `program`'s requests with this first argument.
fn audited<'a>(
    lines: &'a [serde_json::Value],
    program: &str,
    arg0: &str,
) -> Vec<&'a serde_json::Value> {
    lines
        .iter()
        .filter(|l| l["program"] == program && l["args"][0] == arg0)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_values_are_granted_exactly_and_audited_in_full() {
    // debconf evaluates DEBIAN_FRONTEND in a Perl `eval`: whoever picks its value picks the
    // code every maintainer script runs as root. The plugin declares "any value"; the
    // operator grants the same pattern, then a literal.
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let any = ExecGrant {
        env: vec![EnvGrant::new("DEBIAN_FRONTEND", "*")],
        ..grant("printenv", &["DEBIAN_FRONTEND"])
    };
    let plugin = hostile_granted(
        &rt,
        PluginGrants::List(vec![grant("echo", &["**"]), any.clone()]),
    )
    .await;
    let evil = format!("readline; system(\"touch {CANARY}\")");
    let _ = std::fs::remove_dir_all(CANARY);
    let _ = std::fs::remove_file(CANARY);
    let err = plugin
        .apply(local(), &set_env("DEBIAN_FRONTEND", &evil))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PluginError::Denied { message } if message.contains("printenv") && message.contains("not declared") && message.contains("DEBIAN_FRONTEND=readline; system(")),
        "{err:?}"
    );
    assert!(!std::path::Path::new(CANARY).exists());
    let ok = plugin
        .apply(local(), &set_env("DEBIAN_FRONTEND", "noninteractive"))
        .await
        .unwrap();
    assert_eq!(ok.output, "noninteractive\n");
    let lines = audit_lines(dir.path());
    let lines = audited(&lines, "printenv", "DEBIAN_FRONTEND");
    let env = |value: &str| serde_json::json!([{"name": "DEBIAN_FRONTEND", "value": value}]);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert_eq!(lines[0]["decision"], "denied-undeclared");
    assert_eq!(lines[0]["env"], env(&evil));
    for line in &lines[1..] {
        assert_eq!(line["decision"], "allowed");
        assert_eq!(line["env"], env("noninteractive"));
    }

    // The operator's literal wins over the plugin's "any".
    let literal = ExecGrant {
        env: vec![EnvGrant::new("DEBIAN_FRONTEND", "noninteractive")],
        ..any
    };
    let plugin = hostile_granted(&rt, PluginGrants::List(vec![literal])).await;
    let err = plugin
        .apply(local(), &set_env("DEBIAN_FRONTEND", "Readline"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PluginError::Denied { message } if message.contains("not granted")),
        "{err:?}"
    );
    let last = last_line(dir.path());
    assert_eq!(last["decision"], "denied-not-granted");
    assert_eq!(last["env"], env("Readline"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_env_values_are_audited_as_their_hash() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let plugin = hostile_granted(&rt, PluginGrants::Manifest).await;
    let report = plugin
        .apply(local(), &set_env("PATCHWAVE_TOKEN", "s3cret"))
        .await
        .unwrap();
    assert_eq!(report.output, "s3cret\n");
    let text = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert!(!text.contains("s3cret"), "{text}");
    let lines = audit_lines(dir.path());
    let lines = audited(&lines, "printenv", "PATCHWAVE_TOKEN");
    assert_eq!(lines.len(), 2);
    for line in lines {
        assert_eq!(
            line["env"],
            serde_json::json!([{
                "name": "PATCHWAVE_TOKEN",
                // sha256("s3cret")
                "sha256": "1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0",
            }])
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_names_the_host_owns_are_forbidden_at_request_time() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let plugin = hostile_granted(&rt, PluginGrants::Manifest).await;
    for (name, why) in [
        ("PATH", "`PATH` is refused"),
        ("LD_PRELOAD", "`LD_PRELOAD` is refused"),
        ("A=B", "\"A=B\" is not a variable name"),
        ("", "\"\" is not a variable name"),
    ] {
        let err = plugin
            .apply(local(), &set_env(name, "/tmp/x"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, PluginError::Denied { message } if message.contains("is forbidden") && message.contains(why)),
            "{name}: {err:?}"
        );
        let last = last_line(dir.path());
        assert_eq!(last["decision"], "denied-forbidden", "{name}");
        assert_eq!(
            last["env"],
            serde_json::json!([{"name": name, "value": "/tmp/x"}])
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tails_that_would_install_a_file_or_remove_a_package_are_denied_and_audited() {
    // The plugin declares `/bin/echo **`; the operator grants apt's shapes with typed
    // tails, as for the Debian plugin. (`/bin/echo` stands in for apt-get: nothing runs
    // whatever the outcome.)
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let typed = |args: &[&str], each: &str| ExecGrant {
        each: Some(each.into()),
        ..grant("/bin/echo", args)
    };
    let plugin = hostile_granted(
        &rt,
        PluginGrants::List(vec![
            typed(&["install", "--", "**"], "<package>=<version>"),
            typed(&["remove", "--", "**"], "<package>"),
        ]),
    )
    .await;
    for args in [
        &["install", "--", "/tmp/x.deb"][..],
        &["install", "--", "acme=1.0-2", "./x.deb"],
        &["install", "--", "openssh-server=1:9.2p1-2-"],
        &["remove", "--", "openssh-server-"],
        &["remove", "--", "acme+"],
        &["remove", "--", "-oAPT::Get::AutomaticRemove=1"],
    ] {
        let err = plugin.apply(local(), &tail(args)).await.unwrap_err();
        assert!(
            matches!(&err, PluginError::Denied { message } if message.contains("not granted")),
            "{args:?}: {err:?}"
        );
        let last = last_line(dir.path());
        assert_eq!(last["decision"], "denied-not-granted", "{args:?}");
        assert_eq!(last["args"], serde_json::json!(args));
    }
    let ok = plugin
        .apply(
            local(),
            &tail(&["install", "--", "acme=1.0-2", "zlib1g:i386=1:1.3"]),
        )
        .await
        .unwrap();
    assert_eq!(ok.output, "install -- acme=1.0-2 zlib1g:i386=1:1.3\n");
    let ok = plugin
        .apply(local(), &tail(&["remove", "--", "g++:amd64"]))
        .await
        .unwrap();
    assert_eq!(ok.output, "remove -- g++:amd64\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_env_names_are_refused_at_manifest_and_grant_load() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let err = rt
        .load(
            &wasm("patchwave_fixture_greedy"),
            PluginGrants::Manifest,
            Limits::default(),
        )
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(&err, LoadError::Config { .. }), "{err:?}");
    for needle in [
        "manifest wants `apt-get`: env `PATH` is refused",
        "manifest wants `apt-get`: env `LD_PRELOAD` is refused",
        "manifest wants `apt-get`: env name \"A=B\" is not a variable name",
        "manifest wants `apt-get`: env name \"\" is not a variable name",
        "manifest wants `apt-get`: each `<pkg>`: unknown class `<pkg>`",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in {text}");
    }

    // The operator's grants are checked the same way, for a plugin that asks for nothing
    // wrong.
    let bad = ExecGrant {
        env: ["PATH", "LD_PRELOAD", "A=B", ""]
            .iter()
            .map(|n| EnvGrant::new(n, "x"))
            .collect(),
        ..grant("echo", &["**"])
    };
    let err = rt
        .load(
            &wasm("patchwave_fixture_hostile"),
            PluginGrants::List(vec![bad]),
            limits(),
        )
        .await
        .unwrap_err();
    let text = err.to_string();
    for needle in [
        "grant `echo`: env `PATH` is refused",
        "grant `echo`: env `LD_PRELOAD` is refused",
        "grant `echo`: env name \"A=B\"",
        "grant `echo`: env name \"\"",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in {text}");
    }
}

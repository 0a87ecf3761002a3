//! The sandbox holds against a hostile plugin, and the host keeps serving after each fault.

use std::sync::Arc;
use std::time::Instant;

use patchwave_core::{Change, ExecGrant, PluginError};
use patchwave_plugin_host::{Limits, LoadError, LoadedPlugin, PluginGrants, PluginRuntime};
use patchwave_transport::{LocalTransport, Transport};

use crate::support::{audit_lines, load, local, runtime, wasm};

const CANARY: &str = "/tmp/patchwave-hostile-canary";

fn grants() -> PluginGrants {
    // `echo` and `head` are granted; `touch` is declared by the plugin but not granted here.
    PluginGrants::List(vec![
        ExecGrant {
            program: "echo".into(),
            args: vec!["**".into()],
            env: vec![],
        },
        ExecGrant {
            program: "head".into(),
            args: vec!["-c".into(), "*".into(), "/dev/zero".into()],
            env: vec![],
        },
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

fn behave(what: &str) -> Vec<Change> {
    vec![Change {
        name: what.into(),
        from: None,
        to: "0".into(),
    }]
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

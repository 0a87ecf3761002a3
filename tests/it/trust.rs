//! What patchwave keeps on disk cannot be swapped under it: the compiled-plugin cache (native
//! code, outside the sandbox), plugin files, and the private state files.
//!
//! The suite runs as root, which permissions do not stop when it *accesses* files, so these
//! tests exercise the checks themselves: owners changed with chown to uid 65534, modes with
//! chmod, symbolic links planted where files are expected.

use std::os::unix::fs::{chown, symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use patchwave_engine::config::{Config, DefaultDirs};
use patchwave_engine::plugins::PluginSetError;
use patchwave_engine::PluginSet;
use patchwave_plugin_host::{
    AuditLog, Limits, LoadError, LoadedPlugin, PluginGrants, PluginRuntime, RuntimeOptions,
};
use patchwave_store::SqliteStore;

use crate::support::{patchwave_bin, run, wasm};

const NOBODY: u32 = 65534;

fn no_grants() -> PluginGrants {
    PluginGrants::List(vec![])
}

fn is_root() -> bool {
    patchwave_fs::runner_uid() == 0
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn write_mode(path: &Path, content: impl AsRef<[u8]>, mode: u32) {
    std::fs::write(path, content).unwrap();
    chmod(path, mode);
}

/// A runtime with its audit log in `dir` and its cache in `dir/cache`, or why not.
fn try_runtime(dir: &Path) -> Result<PluginRuntime, LoadError> {
    let audit = Arc::new(AuditLog::open(&dir.join("audit.jsonl")).unwrap());
    PluginRuntime::new(
        RuntimeOptions {
            cache_dir: Some(dir.join("cache")),
            ..RuntimeOptions::default()
        },
        audit,
    )
}

async fn load_in(dir: &Path, name: &str) -> LoadedPlugin {
    let rt = try_runtime(dir).unwrap();
    rt.load(&wasm(name), no_grants(), Limits::default())
        .await
        .unwrap()
}

/// The cache entry of `digest`, wherever the engine's subdirectory is.
fn entry(dir: &Path, digest: &str) -> PathBuf {
    let want = format!("{digest}.cwasm");
    for sub in std::fs::read_dir(dir.join("cache")).unwrap() {
        let p = sub.unwrap().path().join(&want);
        if p.exists() {
            return p;
        }
    }
    panic!("no cache entry {want} under {}", dir.display());
}

/// The sha256 of a built plugin, as the runtime computes it (from a runtime with no cache).
async fn digest_of(name: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let audit = Arc::new(AuditLog::open(&dir.path().join("audit.jsonl")).unwrap());
    let rt = PluginRuntime::new(RuntimeOptions::default(), audit).unwrap();
    rt.load(&wasm(name), no_grants(), Limits::default())
        .await
        .unwrap()
        .digest()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_cache_entry_is_never_run_and_the_genuine_plugin_is() {
    let dir = tempfile::tempdir().unwrap();
    // The hostile fixture's genuine artifact, compiled and cached by this very runner...
    let hostile = load_in(dir.path(), "patchwave_fixture_hostile").await;
    assert_eq!(hostile.name(), "hostile");
    let hostile_entry = entry(dir.path(), hostile.digest());
    // ...copied to the name of the Debian plugin's entry. Deserialized, it would make
    // `manifest()` of "debian.wasm" answer `hostile` (and run with debian's grants).
    let debian_digest = digest_of("patchwave_plugin_debian").await;
    let forged = hostile_entry.with_file_name(format!("{debian_digest}.cwasm"));
    std::fs::copy(&hostile_entry, &forged).unwrap();

    let debian = load_in(dir.path(), "patchwave_plugin_debian").await;
    assert_eq!(debian.name(), "debian");
    assert_eq!(debian.digest(), debian_digest);
    // The forgery was overwritten with the genuine artifact, which is then used as it is.
    let genuine = std::fs::read(&forged).unwrap();
    assert_ne!(genuine, std::fs::read(&hostile_entry).unwrap());
    assert_eq!(mode(&forged), 0o600);
    assert_eq!(
        load_in(dir.path(), "patchwave_plugin_debian").await.name(),
        "debian"
    );
    assert_eq!(
        std::fs::read(&forged).unwrap(),
        genuine,
        "a good entry is reused"
    );

    // Garbage, a torn write and the genuine artifact of another runner (another key) are
    // all recompiled and overwritten.
    let other = tempfile::tempdir().unwrap();
    let other_debian = load_in(other.path(), "patchwave_plugin_debian").await;
    let elsewhere = std::fs::read(entry(other.path(), other_debian.digest())).unwrap();
    assert_ne!(elsewhere, genuine, "each runner has its own key");
    for bad in [
        b"garbage".to_vec(),
        genuine[..genuine.len() / 2].to_vec(),
        elsewhere,
    ] {
        std::fs::write(&forged, &bad).unwrap();
        let plugin = load_in(dir.path(), "patchwave_plugin_debian").await;
        assert_eq!(plugin.name(), "debian");
        assert_ne!(std::fs::read(&forged).unwrap(), bad);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_writes_never_follow_a_planted_link() {
    let dir = tempfile::tempdir().unwrap();
    let first = load_in(dir.path(), "patchwave_fixture_hostile").await;
    let engine_dir = entry(dir.path(), first.digest())
        .parent()
        .unwrap()
        .to_path_buf();
    let victim = dir.path().join("victim");
    write_mode(&victim, "precious\n", 0o644);
    let digest = digest_of("patchwave_plugin_debian").await;
    // At the entry itself, and at the temporary name a writer used to derive from its pid.
    let at_entry = engine_dir.join(format!("{digest}.cwasm"));
    symlink(&victim, &at_entry).unwrap();
    symlink(
        &victim,
        engine_dir.join(format!("{digest}.tmp{}", std::process::id())),
    )
    .unwrap();

    let plugin = load_in(dir.path(), "patchwave_plugin_debian").await;
    assert_eq!(plugin.name(), "debian");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(mode(&victim), 0o644);
    // The link at the entry's name was replaced by a real, private entry.
    let meta = std::fs::symlink_metadata(&at_entry).unwrap();
    assert!(meta.is_file(), "{meta:?}");
    assert_eq!(meta.mode() & 0o777, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_directories_are_the_runners_and_closed_to_others() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir(&cache).unwrap();

    // Readable by others but ours: tightened when the runtime starts.
    chmod(&cache, 0o755);
    drop(try_runtime(dir.path()).unwrap());
    assert_eq!(mode(&cache), 0o700);

    // Writable by others: refused, naming the path, its owner and mode, and left alone.
    for bad in [0o777, 0o770] {
        chmod(&cache, bad);
        let err = try_runtime(dir.path()).unwrap_err().to_string();
        assert!(err.contains(&cache.display().to_string()), "{err}");
        assert!(err.contains(&format!("mode {bad:04o}")), "{err}");
        assert!(err.contains("group or others can write"), "{err}");
        assert_eq!(mode(&cache), bad);
    }
    chmod(&cache, 0o700);

    // A link instead of the directory.
    let real = dir.path().join("real-cache");
    std::fs::rename(&cache, &real).unwrap();
    symlink(&real, &cache).unwrap();
    let err = try_runtime(dir.path()).unwrap_err().to_string();
    assert!(err.contains("symbolic link"), "{err}");
    std::fs::remove_file(&cache).unwrap();
    std::fs::rename(&real, &cache).unwrap();

    if !is_root() {
        eprintln!("SKIP: the ownership half needs root to chown");
        return;
    }
    // Owned by someone else, the cache or the engine's subdirectory in it.
    chown(&cache, Some(NOBODY), None).unwrap();
    let err = try_runtime(dir.path()).unwrap_err().to_string();
    assert!(err.contains("owner uid 65534"), "{err}");
    assert!(err.contains("not owned by uid 0"), "{err}");
    chown(&cache, Some(0), None).unwrap();
    let plugin = load_in(dir.path(), "patchwave_fixture_hostile").await;
    let engine_dir = entry(dir.path(), plugin.digest())
        .parent()
        .unwrap()
        .to_path_buf();
    chown(&engine_dir, Some(NOBODY), None).unwrap();
    let err = try_runtime(dir.path()).unwrap_err().to_string();
    assert!(err.contains(&engine_dir.display().to_string()), "{err}");
    assert!(err.contains("owner uid 65534"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_key_is_private_made_once_and_refused_when_exposed() {
    let dir = tempfile::tempdir().unwrap();
    drop(try_runtime(dir.path()).unwrap());
    let key = dir.path().join("cache/cache.key");
    assert_eq!(mode(&key), 0o600);
    let bytes = std::fs::read(&key).unwrap();
    assert_eq!(bytes.len(), 32);
    drop(try_runtime(dir.path()).unwrap());
    assert_eq!(std::fs::read(&key).unwrap(), bytes, "the key is made once");

    // Readable by others: it may be known, so it is refused rather than tightened.
    chmod(&key, 0o644);
    let err = try_runtime(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("cache.key") && err.contains("mode 0644"),
        "{err}"
    );
    assert_eq!(mode(&key), 0o644);
    chmod(&key, 0o600);

    // The wrong size, a link, someone else's.
    std::fs::write(&key, b"short").unwrap();
    let err = try_runtime(dir.path()).unwrap_err().to_string();
    assert!(err.contains("holds 5 bytes"), "{err}");
    std::fs::remove_file(&key).unwrap();
    let planted = dir.path().join("planted");
    std::fs::write(&planted, [7u8; 32]).unwrap();
    chmod(&planted, 0o600);
    symlink(&planted, &key).unwrap();
    let err = try_runtime(dir.path()).unwrap_err().to_string();
    assert!(err.contains("symbolic link"), "{err}");
    if is_root() {
        std::fs::remove_file(&key).unwrap();
        std::fs::copy(&planted, &key).unwrap();
        chown(&key, Some(NOBODY), None).unwrap();
        let err = try_runtime(dir.path()).unwrap_err().to_string();
        assert!(err.contains("owner uid 65534"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_someone_else_could_swap_are_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    chmod(&plugins, 0o755);
    let file = plugins.join("debian.wasm");
    std::fs::copy(wasm("patchwave_plugin_debian"), &file).unwrap();
    chmod(&file, 0o644);
    let rt = try_runtime(dir.path()).unwrap();
    let load = |path: PathBuf| {
        let rt = &rt;
        async move { rt.load(&path, no_grants(), Limits::default()).await }
    };
    assert_eq!(load(file.clone()).await.unwrap().name(), "debian");

    chmod(&file, 0o666);
    let err = load(file.clone()).await.unwrap_err();
    assert!(matches!(err, LoadError::Untrusted { .. }), "{err}");
    assert!(err.to_string().contains("mode 0666"), "{err}");
    chmod(&file, 0o644);

    chmod(&plugins, 0o777);
    let err = load(file.clone()).await.unwrap_err();
    assert!(matches!(err, LoadError::Untrusted { .. }), "{err}");
    let defaults = DefaultDirs {
        state_dir: Ok(dir.path().join("state")),
        plugin_dir: Ok(plugins.clone()),
    };
    let config = Config::from_toml_with("", "t", dir.path(), &defaults).unwrap();
    let err = PluginSet::load(&rt, &config).await.unwrap_err();
    assert!(matches!(err, PluginSetError::UntrustedDir { .. }), "{err}");
    assert!(err.to_string().contains("mode 0777"), "{err}");
    chmod(&plugins, 0o755);
    assert!(PluginSet::load(&rt, &config)
        .await
        .unwrap()
        .get("debian")
        .is_some());

    if is_root() {
        chown(&file, Some(NOBODY), None).unwrap();
        let err = load(file.clone()).await.unwrap_err();
        assert!(err.to_string().contains("owner uid 65534"), "{err}");
        chown(&file, Some(0), None).unwrap();
        chown(&plugins, Some(NOBODY), None).unwrap();
        let err = PluginSet::load(&rt, &config).await.unwrap_err();
        assert!(err.to_string().contains("owner uid 65534"), "{err}");
    }
}

#[test]
fn symlinked_audit_log_and_store_are_refused_and_their_targets_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    write_mode(&victim, "", 0o644);
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    symlink(&victim, state.join("audit.jsonl")).unwrap();
    symlink(&victim, state.join("patchwave.db")).unwrap();

    let err = AuditLog::open(&state.join("audit.jsonl")).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    let err = SqliteStore::open(state.join("patchwave.db")).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    // An empty file would have become a database, or taken an audit line.
    assert_eq!(std::fs::read(&victim).unwrap(), b"");
    assert_eq!(mode(&victim), 0o644);

    // SQLite's journal beside the store is checked too.
    std::fs::remove_file(state.join("patchwave.db")).unwrap();
    symlink(&victim, state.join("patchwave.db-wal")).unwrap();
    let err = SqliteStore::open(state.join("patchwave.db")).unwrap_err();
    assert!(err.to_string().contains("patchwave.db-wal"), "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"");
}

#[test]
fn state_files_are_private_under_umask_022_and_old_ones_are_tightened() {
    if !Path::new("/var/lib/dpkg/status").exists() {
        eprintln!("SKIP: this machine has no dpkg database");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(wasm("patchwave_plugin_debian"), plugins.join("debian.wasm")).unwrap();
    let state = dir.path().join("state");
    let scan = || {
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg("umask 022 && exec \"$0\" \"$@\"")
            .arg(patchwave_bin())
            .arg("--state-dir")
            .arg(&state)
            .arg("--plugin-dir")
            .arg(&plugins)
            .args(["scan", "localhost"])
            .env_remove("PATCHWAVE_CONFIG");
        let (code, out, err) = run(&mut cmd);
        assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    };
    let check = || {
        let mut seen = 0;
        let mut stack = vec![state.clone()];
        while let Some(p) = stack.pop() {
            let m = mode(&p);
            if p.is_dir() {
                assert_eq!(m, 0o700, "{}", p.display());
                stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            } else {
                assert_eq!(m, 0o600, "{}", p.display());
            }
            seen += 1;
        }
        for f in ["patchwave.db", "audit.jsonl", "cache/cache.key"] {
            assert!(state.join(f).exists(), "{f} missing");
        }
        seen
    };
    scan();
    // The state dir, store, audit log, cache, its key, its engine directory and an entry.
    assert!(check() >= 7);

    // What an older patchwave left under umask 022 is made private again.
    chmod(&state, 0o755);
    chmod(&state.join("patchwave.db"), 0o644);
    chmod(&state.join("audit.jsonl"), 0o644);
    chmod(&state.join("cache"), 0o755);
    scan();
    check();
}

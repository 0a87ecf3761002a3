//! Real files, real modes and owners. The suite runs as root, and root is not stopped by
//! permissions when it *accesses* files, so these test the checks themselves: owners are
//! changed with chown to uid 65534 (`nobody`), modes with chmod.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::{chown, symlink, PermissionsExt};

use super::*;

const NOBODY: u32 = 65534;

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, Permissions::from_mode(mode)).unwrap();
}

fn write_mode(path: &Path, content: impl AsRef<[u8]>, mode: u32) {
    std::fs::write(path, content).unwrap();
    chmod(path, mode);
}

fn is_root() -> bool {
    runner_uid() == 0
}

#[test]
fn new_dirs_are_0700_and_new_files_0600_whatever_the_umask() {
    let previous = rustix::process::umask(Mode::from_raw_mode(0o022));
    let tmp = tempfile::tempdir().unwrap();
    let deep = tmp.path().join("a/b/state");
    let dir = PrivateDir::ensure(&deep).unwrap();
    let sub = dir.subdir("cache").unwrap();
    drop(dir.open("store.db", Access::ReadWrite).unwrap());
    drop(open_private(&deep.join("audit.jsonl"), Access::Append).unwrap());
    sub.write_atomically("entry", b"x").unwrap();
    assert!(sub.create_new("key", b"k").unwrap());
    rustix::process::umask(previous);

    for d in ["a", "a/b", "a/b/state", "a/b/state/cache"] {
        assert_eq!(mode(&tmp.path().join(d)), 0o700, "{d}");
    }
    for f in [
        "a/b/state/store.db",
        "a/b/state/audit.jsonl",
        "a/b/state/cache/entry",
        "a/b/state/cache/key",
    ] {
        assert_eq!(mode(&tmp.path().join(f)), 0o600, "{f}");
    }
}

#[test]
fn an_existing_0755_dir_of_ours_is_tightened_and_0644_files_too() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir(&state).unwrap();
    chmod(&state, 0o755);
    write_mode(&state.join("audit.jsonl"), "line\n", 0o644);

    let dir = PrivateDir::ensure(&state).unwrap();
    assert_eq!(mode(&state), 0o700);
    let mut text = String::new();
    dir.open("audit.jsonl", Access::Read)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "line\n");
    assert_eq!(mode(&state.join("audit.jsonl")), 0o600);
}

#[test]
fn a_dir_others_can_write_is_refused_with_path_owner_and_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir(&state).unwrap();
    for bad in [0o777, 0o775, 0o1777] {
        chmod(&state, bad);
        let err = PrivateDir::ensure(&state).unwrap_err();
        assert_eq!(err.refusal(), Some(Refusal::WritableByOthers), "{bad:o}");
        let text = err.to_string();
        assert!(text.contains(&state.display().to_string()), "{text}");
        assert!(text.contains(&format!("mode {bad:04o}")), "{text}");
        assert!(
            text.contains(&format!("owner uid {}", runner_uid())),
            "{text}"
        );
        // Refused, not repaired: what others may have put there is not ours to bless.
        assert_eq!(mode(&state), bad);
    }
}

#[test]
fn a_dir_owned_by_another_user_is_refused() {
    if !is_root() {
        eprintln!("SKIP: needs root to chown");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir(&state).unwrap();
    chmod(&state, 0o700);
    chown(&state, Some(NOBODY), Some(NOBODY)).unwrap();
    let err = PrivateDir::ensure(&state).unwrap_err();
    assert_eq!(err.refusal(), Some(Refusal::NotOwner { runner: 0 }));
    assert!(err.to_string().contains("owner uid 65534"), "{err}");

    // The same for a subdirectory found inside a private one.
    let top = tmp.path().join("top");
    let dir = PrivateDir::ensure(&top).unwrap();
    std::fs::create_dir(top.join("cache")).unwrap();
    chown(top.join("cache"), Some(NOBODY), None).unwrap();
    let err = dir.subdir("cache").unwrap_err();
    assert_eq!(err.refusal(), Some(Refusal::NotOwner { runner: 0 }));
}

#[test]
fn symlinked_dirs_and_files_are_refused_and_their_targets_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    chmod(&elsewhere, 0o755);
    let target = elsewhere.join("victim");
    write_mode(&target, "precious\n", 0o644);

    // The directory itself.
    let link = tmp.path().join("state");
    symlink(&elsewhere, &link).unwrap();
    let err = PrivateDir::ensure(&link).unwrap_err();
    assert_eq!(err.refusal(), Some(Refusal::Symlink), "{err}");
    assert_eq!(mode(&elsewhere), 0o755, "target directory was chmodded");

    // Files and subdirectories inside a private directory.
    let dir = PrivateDir::ensure(&tmp.path().join("real")).unwrap();
    symlink(&target, tmp.path().join("real/audit.jsonl")).unwrap();
    symlink(&elsewhere, tmp.path().join("real/cache")).unwrap();
    for access in [Access::Read, Access::ReadWrite, Access::Append] {
        let err = dir.open("audit.jsonl", access).unwrap_err();
        assert_eq!(err.refusal(), Some(Refusal::Symlink), "{access:?}: {err}");
    }
    assert_eq!(
        dir.read("audit.jsonl").unwrap_err().refusal(),
        Some(Refusal::Symlink)
    );
    assert_eq!(
        dir.subdir("cache").unwrap_err().refusal(),
        Some(Refusal::Symlink)
    );
    // An atomic write replaces the link itself.
    dir.write_atomically("audit.jsonl", b"new\n").unwrap();
    assert!(
        std::fs::symlink_metadata(tmp.path().join("real/audit.jsonl"))
            .unwrap()
            .is_file()
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    assert_eq!(mode(&target), 0o644);
}

#[test]
fn files_owned_by_others_or_hard_linked_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = PrivateDir::ensure(&tmp.path().join("state")).unwrap();
    let other = tmp.path().join("other");
    std::fs::write(&other, "x").unwrap();
    std::fs::hard_link(&other, tmp.path().join("state/store.db")).unwrap();
    let err = dir.open("store.db", Access::ReadWrite).unwrap_err();
    assert_eq!(
        err.refusal(),
        Some(Refusal::HardLinked { links: 2 }),
        "{err}"
    );

    if is_root() {
        std::fs::write(tmp.path().join("state/audit.jsonl"), "x").unwrap();
        chown(tmp.path().join("state/audit.jsonl"), Some(NOBODY), None).unwrap();
        let err = dir.open("audit.jsonl", Access::Append).unwrap_err();
        assert_eq!(err.refusal(), Some(Refusal::NotOwner { runner: 0 }));
    }
    assert_eq!(
        dir.open("../escape", Access::ReadWrite)
            .unwrap_err()
            .refusal(),
        Some(Refusal::NotAName)
    );
}

#[test]
fn temp_files_are_exclusive_and_leave_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = PrivateDir::ensure(&tmp.path().join("state")).unwrap();
    dir.write_atomically("known_hosts", b"one\n").unwrap();
    dir.write_atomically("known_hosts", b"two\n").unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("known_hosts")]);
    assert_eq!(dir.read("known_hosts").unwrap().unwrap(), b"two\n");
}

#[test]
fn create_new_never_replaces() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = PrivateDir::ensure(&tmp.path().join("state")).unwrap();
    assert!(dir.create_new("key", b"first").unwrap());
    assert!(!dir.create_new("key", b"second").unwrap());
    assert_eq!(dir.read_secret("key").unwrap().unwrap(), b"first");
    assert_eq!(dir.read("missing").unwrap(), None);
}

#[test]
fn a_secret_others_can_read_is_refused_not_tightened() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = PrivateDir::ensure(&tmp.path().join("state")).unwrap();
    assert!(dir.create_new("key", b"k").unwrap());
    let key = tmp.path().join("state/key");
    chmod(&key, 0o640);
    let err = dir.read_secret("key").unwrap_err();
    assert_eq!(err.refusal(), Some(Refusal::ReadableByOthers), "{err}");
    assert_eq!(mode(&key), 0o640);
}

#[test]
fn trusted_files_need_a_trusted_owner_and_no_writers_but_us() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    chmod(&plugins, 0o755);
    let wasm = plugins.join("debian.wasm");
    write_mode(&wasm, "\0asm", 0o644);
    open_trusted(&wasm).unwrap();
    check_trusted_dir(&plugins).unwrap();

    chmod(&wasm, 0o664);
    let err = open_trusted(&wasm).unwrap_err();
    assert_eq!(err.refusal(), Some(Refusal::WritableByOthers), "{err}");
    chmod(&wasm, 0o644);

    chmod(&plugins, 0o777);
    assert_eq!(
        open_trusted(&wasm).unwrap_err().refusal(),
        Some(Refusal::WritableByOthers)
    );
    assert_eq!(
        check_trusted_dir(&plugins).unwrap_err().refusal(),
        Some(Refusal::WritableByOthers)
    );
    chmod(&plugins, 0o755);

    // A link from a good directory to a file in a directory others can write.
    let open_dir = tmp.path().join("drop");
    std::fs::create_dir(&open_dir).unwrap();
    chmod(&open_dir, 0o1777);
    write_mode(&open_dir.join("x.wasm"), "\0asm", 0o644);
    symlink(open_dir.join("x.wasm"), plugins.join("x.wasm")).unwrap();
    let err = open_trusted(&plugins.join("x.wasm")).unwrap_err();
    assert!(err.to_string().contains("drop"), "{err}");

    if is_root() {
        chown(&wasm, Some(NOBODY), None).unwrap();
        let err = open_trusted(&wasm).unwrap_err();
        assert_eq!(
            err.refusal(),
            Some(Refusal::NotRootOrRunner { runner: 0 }),
            "{err}"
        );
        chown(&wasm, Some(0), None).unwrap();
        chown(&plugins, Some(NOBODY), None).unwrap();
        assert_eq!(
            check_trusted_dir(&plugins).unwrap_err().refusal(),
            Some(Refusal::NotRootOrRunner { runner: 0 })
        );
    }
}

//! Private state files: the one place patchwave creates and opens what it keeps on disk.
//!
//! * [`PrivateDir::ensure`] creates a directory `0700`, or accepts an existing one only if
//!   the user patchwave runs as owns it and neither group nor others can write to it. One
//!   that others can only read (`0755`) is tightened to `0700`; a symbolic link is refused.
//! * Files in it are opened relative to the directory's descriptor with `O_NOFOLLOW`,
//!   created `0600`, tightened to `0600`, and refused when they are symbolic links, not
//!   regular files, owned by another user or hard-linked elsewhere.
//! * [`PrivateDir::write_atomically`] writes a temporary file created exclusively
//!   (`O_CREAT|O_EXCL|O_NOFOLLOW`, a random name) in the same directory, fsyncs it and
//!   renames it over the name; [`PrivateDir::create_new`] publishes a file only if the
//!   name is still free.
//! * [`open_trusted`] and [`check_trusted_dir`] are the rule for what patchwave only reads
//!   but must not have swapped under it (plugins): owned by root or by the runner, and
//!   writable by neither group nor others.
//!
//! Directories above a private directory are not checked. Whoever can rename entries there
//! can move the runner's own files around, but cannot make a file the runner accepts: every
//! file and directory used must be owned by the runner and closed to others.

use std::fs::{File, Metadata, Permissions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags, CWD};
use rustix::io::Errno;

/// Mode of every directory patchwave creates for its state.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file patchwave creates for its state.
pub const FILE_MODE: u32 = 0o600;

/// The effective uid: the user whose files patchwave accepts as its own.
pub fn runner_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Why a path was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A symbolic link where patchwave keeps a file or directory of its own.
    #[error("it is a symbolic link; patchwave never follows links for its state files")]
    Symlink,
    /// Something other than a directory.
    #[error("it is not a directory")]
    NotADirectory,
    /// Something other than a regular file.
    #[error("it is not a regular file")]
    NotARegularFile,
    /// Owned by a user other than the runner.
    #[error("it is not owned by uid {runner}, the user patchwave runs as; its owner could change what patchwave reads from it")]
    NotOwner {
        /// The runner's effective uid.
        runner: u32,
    },
    /// Owned by neither root nor the runner.
    #[error("it is owned by neither root nor uid {runner}, the user patchwave runs as; its owner could swap it")]
    NotRootOrRunner {
        /// The runner's effective uid.
        runner: u32,
    },
    /// Group or others may write to it.
    #[error("group or others can write to it (check what is in it, then `chmod go-w` it)")]
    WritableByOthers,
    /// A secret that group or others may read.
    #[error("group or others can read it; it must be 0600")]
    ReadableByOthers,
    /// A state file that is also reachable under another name.
    #[error("it has {links} hard links; a state file must have exactly one, or writing it would change another file")]
    HardLinked {
        /// `st_nlink`.
        links: u64,
    },
    /// A name that is not a single plain file name.
    #[error("it is not a plain file name inside its directory")]
    NotAName,
}

/// Errors creating, opening or checking state files.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// A system call failed.
    #[error("{path}: cannot {op}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// What was being done (`open`, `create directory`, ...).
        op: &'static str,
        /// The error.
        source: io::Error,
    },
    /// The path exists but may not be used.
    #[error("{path} (owner uid {owner}, mode {mode:04o}): refused: {reason}")]
    Refused {
        /// The path refused.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Its permission bits.
        mode: u32,
        /// Why.
        reason: Refusal,
    },
}

impl FsError {
    /// The refusal, when the path was refused rather than unreachable.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            FsError::Refused { reason, .. } => Some(*reason),
            FsError::Io { .. } => None,
        }
    }
}

impl From<FsError> for io::Error {
    fn from(e: FsError) -> io::Error {
        let kind = match &e {
            FsError::Io { source, .. } => source.kind(),
            FsError::Refused { .. } => io::ErrorKind::PermissionDenied,
        };
        io::Error::new(kind, e)
    }
}

fn io_err(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> FsError {
    let path = path.to_path_buf();
    move |source| FsError::Io { path, op, source }
}

fn errno(path: &Path, op: &'static str) -> impl FnOnce(Errno) -> FsError {
    let f = io_err(path, op);
    move |e| f(e.into())
}

fn refused(path: &Path, meta: &Metadata, reason: Refusal) -> FsError {
    FsError::Refused {
        path: path.to_path_buf(),
        owner: meta.uid(),
        mode: meta.mode() & 0o7777,
        reason,
    }
}

/// How a private file is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read only; the file must exist.
    Read,
    /// Read and write, created (`0600`) when missing, never truncated.
    ReadWrite,
    /// Read and append, created (`0600`) when missing.
    Append,
}

impl Access {
    fn flags(self) -> OFlags {
        match self {
            Access::Read => OFlags::RDONLY,
            Access::ReadWrite => OFlags::RDWR | OFlags::CREATE,
            Access::Append => OFlags::RDWR | OFlags::APPEND | OFlags::CREATE,
        }
    }
}

/// A directory private to the runner, held open so that every file in it is reached
/// through the directory that was checked.
#[derive(Debug)]
pub struct PrivateDir {
    path: PathBuf,
    fd: OwnedFd,
}

impl PrivateDir {
    /// Create `path` (and missing parents) `0700`, or check an existing one: it must be a
    /// directory, not a symbolic link, owned by the runner and not writable by group or
    /// others. Read or search access for others is taken away (`0755` becomes `0700`).
    pub fn ensure(path: &Path) -> Result<PrivateDir, FsError> {
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(path)
                .map_err(io_err(path, "create directory"))?,
            Err(e) => return Err(io_err(path, "inspect")(e)),
            Ok(_) => {}
        }
        let fd = open_dir(CWD, path, path)?;
        Ok(PrivateDir {
            path: path.to_path_buf(),
            fd,
        })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A private directory `name` inside this one, created `0700` when missing, with the
    /// same checks as [`PrivateDir::ensure`].
    pub fn subdir(&self, name: impl AsRef<Path>) -> Result<PrivateDir, FsError> {
        let name = self.name(name.as_ref())?;
        let path = self.path.join(name);
        match rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(DIR_MODE)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(errno(&path, "create directory")(e)),
        }
        let fd = open_dir(&self.fd, name, &path)?;
        Ok(PrivateDir { path, fd })
    }

    /// Open the private file `name`: never through a symbolic link, created `0600` when
    /// missing (except for [`Access::Read`]), refused unless it is a regular file with one
    /// link owned by the runner, and tightened to `0600`.
    pub fn open(&self, name: impl AsRef<Path>, access: Access) -> Result<File, FsError> {
        let name = self.name(name.as_ref())?;
        let path = self.path.join(name);
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            access.flags() | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(FILE_MODE),
        )
        .map_err(|e| self.open_error(&path, e))?;
        let file = File::from(fd);
        check_private_file(&path, &file, false)?;
        Ok(file)
    }

    /// [`PrivateDir::open`] for a file that may be absent: `None` when it does not exist.
    /// Nothing is created.
    pub fn open_existing(
        &self,
        name: impl AsRef<Path>,
        access: Access,
    ) -> Result<Option<File>, FsError> {
        let name = self.name(name.as_ref())?;
        let path = self.path.join(name);
        let flags = access.flags() & !OFlags::CREATE;
        match rustix::fs::openat(
            &self.fd,
            name,
            flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(self.open_error(&path, e)),
            Ok(fd) => {
                let file = File::from(fd);
                check_private_file(&path, &file, false)?;
                Ok(Some(file))
            }
        }
    }

    /// The whole content of the private file `name`, or `None` when it does not exist.
    pub fn read(&self, name: impl AsRef<Path>) -> Result<Option<Vec<u8>>, FsError> {
        self.read_checked(name.as_ref(), false)
    }

    /// [`PrivateDir::read`] for a secret: a file group or others can read is refused
    /// rather than tightened, since what it holds may already be known.
    pub fn read_secret(&self, name: impl AsRef<Path>) -> Result<Option<Vec<u8>>, FsError> {
        self.read_checked(name.as_ref(), true)
    }

    fn read_checked(&self, name: &Path, secret: bool) -> Result<Option<Vec<u8>>, FsError> {
        let name = self.name(name)?;
        let path = self.path.join(name);
        let fd = match rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(self.open_error(&path, e)),
            Ok(fd) => fd,
        };
        let mut file = File::from(fd);
        check_private_file(&path, &file, secret)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(io_err(&path, "read"))?;
        Ok(Some(bytes))
    }

    /// Replace `name` with `data` atomically: a temporary file with a random name is
    /// created exclusively (`0600`, `O_EXCL|O_NOFOLLOW`) in this directory, written,
    /// fsynced and renamed over `name`, and the directory is fsynced. Whatever `name` was
    /// (a symbolic link included) is replaced, never written through.
    pub fn write_atomically(&self, name: impl AsRef<Path>, data: &[u8]) -> Result<(), FsError> {
        let name = self.name(name.as_ref())?;
        let path = self.path.join(name);
        let tmp = self.write_temp(name, data)?;
        let renamed = rustix::fs::renameat(&self.fd, &tmp, &self.fd, name)
            .map_err(errno(&path, "rename into place"));
        if renamed.is_err() {
            let _ = rustix::fs::unlinkat(&self.fd, &tmp, AtFlags::empty());
        }
        renamed?;
        self.sync()
    }

    /// Create `name` holding `data` only if no such name exists, atomically (written in
    /// full to a temporary file first, then linked to `name`): `false` when the name was
    /// taken, in which case nothing was changed.
    pub fn create_new(&self, name: impl AsRef<Path>, data: &[u8]) -> Result<bool, FsError> {
        let name = self.name(name.as_ref())?;
        let path = self.path.join(name);
        let tmp = self.write_temp(name, data)?;
        let linked = rustix::fs::linkat(&self.fd, &tmp, &self.fd, name, AtFlags::empty());
        let _ = rustix::fs::unlinkat(&self.fd, &tmp, AtFlags::empty());
        match linked {
            Ok(()) => self.sync().map(|()| true),
            Err(Errno::EXIST) => Ok(false),
            Err(e) => Err(errno(&path, "create")(e)),
        }
    }

    fn write_temp(&self, name: &Path, data: &[u8]) -> Result<PathBuf, FsError> {
        write_temp(&self.fd, &self.path, name, data, FILE_MODE)
    }

    fn sync(&self) -> Result<(), FsError> {
        rustix::fs::fsync(&self.fd).map_err(errno(&self.path, "sync directory"))
    }

    /// `name` as a single plain component, or a refusal.
    fn name<'a>(&self, name: &'a Path) -> Result<&'a Path, FsError> {
        let mut parts = name.components();
        match (parts.next(), parts.next()) {
            (Some(Component::Normal(_)), None) => Ok(name),
            _ => Err(FsError::Refused {
                path: self.path.join(name),
                owner: 0,
                mode: 0,
                reason: Refusal::NotAName,
            }),
        }
    }

    fn open_error(&self, path: &Path, e: Errno) -> FsError {
        open_error(path, e, "open", Refusal::NotARegularFile)
    }
}

/// A new temporary file next to `name` in the directory `dir_fd` (at `dir`), created
/// exclusively with a random name and never through a link, holding `data` (fsynced), with
/// permission bits `mode`. Returns its name.
fn write_temp(
    dir_fd: &OwnedFd,
    dir: &Path,
    name: &Path,
    data: &[u8],
    mode: u32,
) -> Result<PathBuf, FsError> {
    let mut suffix = [0u8; 8];
    random_bytes(&mut suffix).map_err(io_err(dir, "pick a temporary name"))?;
    let hex: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name.as_os_str());
    tmp_name.push(format!(".{hex}.tmp"));
    let tmp = PathBuf::from(tmp_name);
    let tmp_path = dir.join(&tmp);
    let fd = rustix::fs::openat(
        dir_fd,
        &tmp,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(FILE_MODE),
    )
    .map_err(errno(&tmp_path, "create temporary file"))?;
    let mut file = File::from(fd);
    let written = file
        .set_permissions(Permissions::from_mode(mode))
        .and_then(|()| file.write_all(data))
        .and_then(|()| file.sync_all())
        .map_err(io_err(&tmp_path, "write"));
    if written.is_err() {
        let _ = rustix::fs::unlinkat(dir_fd, &tmp, AtFlags::empty());
    }
    written.map(|()| tmp)
}

/// Replace the file at `path` with `data` atomically, for files kept outside the state
/// directory that other users may need to read (known_hosts): a temporary file with a
/// random name is created exclusively (`O_EXCL|O_NOFOLLOW`) in the same directory, written,
/// fsynced and renamed over `path`, then the directory is fsynced. The new file keeps the
/// old one's permission bits minus group and other write, or gets `new_mode` when there was
/// none. A symbolic link (or anything but a regular file) at `path` is refused and left as
/// it is.
pub fn replace_file(path: &Path, data: &[u8], new_mode: u32) -> Result<(), FsError> {
    let (dir_path, name) = split(path)?;
    let dir = rustix::fs::open(
        dir_path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno(dir_path, "open directory"))?;
    let mode = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(refused(path, &meta, Refusal::Symlink))
        }
        Ok(meta) if !meta.is_file() => return Err(refused(path, &meta, Refusal::NotARegularFile)),
        Ok(meta) => meta.mode() & 0o755,
        Err(e) if e.kind() == io::ErrorKind::NotFound => new_mode & 0o755,
        Err(e) => return Err(io_err(path, "inspect")(e)),
    };
    let tmp = write_temp(&dir, dir_path, name, data, mode)?;
    let renamed =
        rustix::fs::renameat(&dir, &tmp, &dir, name).map_err(errno(path, "rename into place"));
    if renamed.is_err() {
        let _ = rustix::fs::unlinkat(&dir, &tmp, AtFlags::empty());
    }
    renamed?;
    rustix::fs::fsync(&dir).map_err(errno(dir_path, "sync directory"))
}

/// Open (creating it `0600`) the lock file at `path`, never through a symbolic link.
pub fn open_lock_file(path: &Path) -> Result<File, FsError> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(FILE_MODE),
    )
    .map_err(|e| open_error(path, e, "open", Refusal::NotARegularFile))?;
    let file = File::from(fd);
    let meta = file.metadata().map_err(io_err(path, "inspect"))?;
    if !meta.is_file() {
        return Err(refused(path, &meta, Refusal::NotARegularFile));
    }
    Ok(file)
}

/// Turn a failed `open` of `path` into a refusal when a symbolic link (or, for `wrong_kind`,
/// something of the wrong type) was in the way, else into an IO error.
fn open_error(path: &Path, e: Errno, op: &'static str, wrong_kind: Refusal) -> FsError {
    if matches!(e, Errno::LOOP | Errno::NOTDIR | Errno::ISDIR | Errno::NXIO) {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            let reason = if meta.file_type().is_symlink() {
                Refusal::Symlink
            } else {
                wrong_kind
            };
            return refused(path, &meta, reason);
        }
    }
    errno(path, op)(e)
}

/// Refuse `meta` (of `path`) unless the runner owns it.
fn check_runner_owns(path: &Path, meta: &Metadata) -> Result<(), FsError> {
    let runner = runner_uid();
    if meta.uid() != runner {
        return Err(refused(path, meta, Refusal::NotOwner { runner }));
    }
    Ok(())
}

/// Open and check a private directory `name` relative to `at`.
fn open_dir(at: impl AsFd, name: &Path, path: &Path) -> Result<OwnedFd, FsError> {
    let fd = rustix::fs::openat(
        at,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| open_error(path, e, "open directory", Refusal::NotADirectory))?;
    let dir = File::from(fd);
    let meta = dir.metadata().map_err(io_err(path, "inspect"))?;
    if !meta.is_dir() {
        return Err(refused(path, &meta, Refusal::NotADirectory));
    }
    check_runner_owns(path, &meta)?;
    if meta.mode() & 0o022 != 0 {
        return Err(refused(path, &meta, Refusal::WritableByOthers));
    }
    if meta.mode() & 0o7077 != 0 {
        dir.set_permissions(Permissions::from_mode(DIR_MODE))
            .map_err(io_err(path, "make private (chmod 0700)"))?;
        tracing::info!(dir = %path.display(), was = format!("{:04o}", meta.mode() & 0o7777), "made the state directory private (0700)");
    }
    Ok(dir.into())
}

/// Check an opened private file; tighten it to `0600` unless it is a `secret`, which is
/// refused instead when group or others can read it.
fn check_private_file(path: &Path, file: &File, secret: bool) -> Result<(), FsError> {
    let meta = file.metadata().map_err(io_err(path, "inspect"))?;
    if !meta.is_file() {
        return Err(refused(path, &meta, Refusal::NotARegularFile));
    }
    check_runner_owns(path, &meta)?;
    if meta.nlink() != 1 {
        return Err(refused(
            path,
            &meta,
            Refusal::HardLinked {
                links: meta.nlink(),
            },
        ));
    }
    if meta.mode() & 0o7077 != 0 {
        if secret {
            return Err(refused(path, &meta, Refusal::ReadableByOthers));
        }
        file.set_permissions(Permissions::from_mode(FILE_MODE))
            .map_err(io_err(path, "make private (chmod 0600)"))?;
        tracing::info!(file = %path.display(), was = format!("{:04o}", meta.mode() & 0o7777), "made the state file private (0600)");
    }
    Ok(())
}

/// Create or open the private file at `path`: its directory is made private with
/// [`PrivateDir::ensure`], then the file is opened with [`PrivateDir::open`].
pub fn open_private(path: &Path, access: Access) -> Result<File, FsError> {
    let (dir, name) = split(path)?;
    PrivateDir::ensure(dir)?.open(name, access)
}

/// The directory and file name of `path` (a bare name is in the working directory).
pub fn split(path: &Path) -> Result<(&Path, &Path), FsError> {
    let name = path.file_name().ok_or_else(|| FsError::Refused {
        path: path.to_path_buf(),
        owner: 0,
        mode: 0,
        reason: Refusal::NotAName,
    })?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok((dir, Path::new(name)))
}

/// Refuse `meta` (of `path`) unless it is owned by root or the runner and neither group
/// nor others can write to it.
fn check_trusted(path: &Path, meta: &Metadata) -> Result<(), FsError> {
    let runner = runner_uid();
    if meta.uid() != 0 && meta.uid() != runner {
        return Err(refused(path, meta, Refusal::NotRootOrRunner { runner }));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(refused(path, meta, Refusal::WritableByOthers));
    }
    Ok(())
}

/// Check a directory patchwave reads trusted files from (plugins): following symbolic
/// links, it must be a directory owned by root or the runner that neither group nor
/// others can write to (so nobody else can add, remove or swap what is in it).
pub fn check_trusted_dir(path: &Path) -> Result<(), FsError> {
    let meta = std::fs::metadata(path).map_err(io_err(path, "inspect"))?;
    if !meta.is_dir() {
        return Err(refused(path, &meta, Refusal::NotADirectory));
    }
    check_trusted(path, &meta)
}

/// Open a file patchwave reads and must not have swapped under it (a plugin). Symbolic
/// links are followed, but the file reached must be a regular file owned by root or the
/// runner and writable by neither group nor others, and so must be both the directory
/// named in `path` and the one the file really is in. Read the returned handle: the checks
/// were made on it.
pub fn open_trusted(path: &Path) -> Result<File, FsError> {
    let file = File::open(path).map_err(io_err(path, "open"))?;
    let meta = file.metadata().map_err(io_err(path, "inspect"))?;
    if !meta.is_file() {
        return Err(refused(path, &meta, Refusal::NotARegularFile));
    }
    check_trusted(path, &meta)?;
    let (named_dir, _) = split(path)?;
    check_trusted_dir(named_dir)?;
    // Where the opened file really is, whatever links led to it.
    let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .or_else(|_| path.canonicalize())
        .map_err(io_err(path, "resolve"))?;
    if let Some(dir) = real.parent() {
        if dir != named_dir {
            check_trusted_dir(dir)?;
        }
    }
    Ok(file)
}

/// Fill `buf` from the kernel's random number generator.
pub fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

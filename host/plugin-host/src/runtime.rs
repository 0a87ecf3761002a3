//! The process-wide engine: compile once, cache precompiled components, tick epochs.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::audit::AuditLog;
use crate::bindings::OsPlugin;
use crate::cache::{CacheError, CompiledCache};
use crate::limits::Limits;
use crate::plugin::{LoadedPlugin, PluginGrants};
use crate::state::CallState;

/// How often the epoch advances; deadlines are counted in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Interfaces a plugin may import. Everything else (sockets, http, ...) is refused at load.
/// WASI's cli/io/clocks/random/filesystem are linked with an empty context: no preopened
/// directories, no environment, no arguments, stdout/stderr captured.
const ALLOWED_IMPORTS: &[&str] = &[
    "patchwave:plugin/",
    "wasi:io/",
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:filesystem/",
];

/// Errors loading a plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("plugin {path}: cannot read: {source}")]
    Read {
        /// Path given.
        path: PathBuf,
        /// IO error.
        source: std::io::Error,
    },
    /// The bytes are not a WebAssembly component.
    #[error("plugin {path}: {reason}")]
    NotAComponent {
        /// Path given.
        path: PathBuf,
        /// What it is instead.
        reason: String,
    },
    /// wasmtime refused to compile or link it.
    #[error("plugin {path}: invalid component: {message}")]
    Invalid {
        /// Path given.
        path: PathBuf,
        /// wasmtime's words, with causes.
        message: String,
    },
    /// It imports something plugins may not have.
    #[error("plugin {path}: imports `{import}`, which plugins are not given (allowed: patchwave:plugin, wasi:io/cli/clocks/random/filesystem with no preopens)")]
    ForbiddenImport {
        /// Path given.
        path: PathBuf,
        /// The import.
        import: String,
    },
    /// Its manifest call failed.
    #[error("plugin {path}: manifest: {source}")]
    Manifest {
        /// Path given.
        path: PathBuf,
        /// Why.
        source: patchwave_core::PluginError,
    },
    /// The operator's grants or limits for it are invalid.
    #[error("plugin {path}: {message}")]
    Config {
        /// Path given.
        path: PathBuf,
        /// Problems.
        message: String,
    },
    /// The file, or the directory it is in, could be changed by someone other than root
    /// and the runner (the plugin would run with the genuine plugin's grants).
    #[error("plugin {path}: not loaded: {source}")]
    Untrusted {
        /// Path given.
        path: PathBuf,
        /// Which file or directory, and why.
        source: patchwave_fs::FsError,
    },
    /// The engine could not be set up.
    #[error("plugin runtime: {0}")]
    Engine(String),
    /// The compiled-plugin cache cannot be used safely.
    #[error(transparent)]
    Cache(#[from] CacheError),
}

/// Process-wide runtime settings.
#[derive(Clone, Debug)]
pub struct RuntimeOptions {
    /// Where precompiled components are cached (`None` = compile every time). The
    /// directory is made private to the runner (refused when another user owns it or can
    /// write to it) and holds the key that authenticates its entries (`cache.key`).
    pub cache_dir: Option<PathBuf>,
    /// Largest memory any plugin may be given.
    pub max_memory_bytes: u64,
    /// Concurrent plugin calls the instance pool holds (0 = no pooling allocator).
    pub pool_instances: u32,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            cache_dir: None,
            max_memory_bytes: 1 << 30,
            pool_instances: 128,
        }
    }
}

/// One engine for the process.
pub struct PluginRuntime {
    engine: Engine,
    linker: Arc<Linker<CallState>>,
    options: RuntimeOptions,
    cache: Option<CompiledCache>,
    audit: Arc<AuditLog>,
}

impl std::fmt::Debug for PluginRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRuntime")
            .field("options", &self.options)
            .field("audit", &self.audit.path())
            .finish()
    }
}

/// Bytes of each pooled linear memory kept resident between calls.
const KEEP_RESIDENT_BYTES: usize = 4 << 20;

fn engine_config(options: &RuntimeOptions, pooling: bool) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    if pooling {
        let n = options.pool_instances;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(8))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(4))
            .max_memory_size(usize::try_from(options.max_memory_bytes).unwrap_or(usize::MAX))
            // Reset a slot's first pages with memset instead of madvise + page faults on
            // the next call: an inventory call touches a few MiB every time.
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(64 << 10);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

impl PluginRuntime {
    /// Build the engine, the linker and the epoch ticker.
    pub fn new(options: RuntimeOptions, audit: Arc<AuditLog>) -> Result<Self, LoadError> {
        let engine = match options.pool_instances {
            0 => Engine::new(&engine_config(&options, false)),
            _ => Engine::new(&engine_config(&options, true)).or_else(|e| {
                tracing::warn!(error = %e, "pooling allocator unavailable; allocating on demand");
                Engine::new(&engine_config(&options, false))
            }),
        }
        .map_err(|e| LoadError::Engine(format!("{e:#}")))?;

        let mut linker = Linker::<CallState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        OsPlugin::add_to_linker::<CallState, wasmtime::component::HasSelf<CallState>>(
            &mut linker,
            |s| s,
        )
        .map_err(|e| LoadError::Engine(format!("{e:#}")))?;

        // The ticker lives exactly as long as the engine: loaded plugins keep the engine (and
        // so their deadlines) alive even after the runtime value is dropped.
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("patchwave-epoch".into())
            .spawn(move || loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            })
            .map_err(|e| LoadError::Engine(format!("epoch thread: {e}")))?;

        let cache = match &options.cache_dir {
            None => None,
            Some(dir) => Some(CompiledCache::open(dir, &engine_tag(&engine))?),
        };
        Ok(PluginRuntime {
            engine,
            linker: Arc::new(linker),
            options,
            cache,
            audit,
        })
    }

    /// The audit log every plugin of this runtime writes to.
    pub fn audit(&self) -> &Arc<AuditLog> {
        &self.audit
    }

    /// Load a plugin from a `.wasm` file. The file, the directory it is named in and the
    /// one it really is in must be owned by root or the runner and writable by neither
    /// group nor others; the bytes checked are the bytes loaded.
    pub async fn load(
        &self,
        path: &Path,
        grants: PluginGrants,
        limits: Limits,
    ) -> Result<LoadedPlugin, LoadError> {
        let mut file = patchwave_fs::open_trusted(path).map_err(|e| match e {
            patchwave_fs::FsError::Io { source, .. } => LoadError::Read {
                path: path.to_path_buf(),
                source,
            },
            refused => LoadError::Untrusted {
                path: path.to_path_buf(),
                source: refused,
            },
        })?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.load_bytes(path, &bytes, grants, limits).await
    }

    /// Load a plugin from its bytes (`path` names it in errors).
    pub async fn load_bytes(
        &self,
        path: &Path,
        bytes: &[u8],
        grants: PluginGrants,
        limits: Limits,
    ) -> Result<LoadedPlugin, LoadError> {
        check_component_header(path, bytes)?;
        let problems = limits.problems(self.options.max_memory_bytes);
        if !problems.is_empty() {
            return Err(LoadError::Config {
                path: path.to_path_buf(),
                message: problems.join("; "),
            });
        }
        let digest = hex::encode(Sha256::digest(bytes));
        let component = self.compile_cached(path, bytes, &digest)?;
        for (name, _) in component.component_type().imports(&self.engine) {
            if !ALLOWED_IMPORTS.iter().any(|p| name.starts_with(p)) {
                return Err(LoadError::ForbiddenImport {
                    path: path.to_path_buf(),
                    import: name.to_string(),
                });
            }
        }
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Invalid {
                path: path.to_path_buf(),
                message: format!("{e:#}"),
            })?;
        let pre = crate::bindings::OsPluginPre::new(pre).map_err(|e| LoadError::Invalid {
            path: path.to_path_buf(),
            message: format!("does not implement patchwave:plugin/os-plugin: {e:#}"),
        })?;
        LoadedPlugin::new(path, pre, digest, grants, limits, self.audit.clone()).await
    }

    fn compile_cached(
        &self,
        path: &Path,
        bytes: &[u8],
        digest: &str,
    ) -> Result<Component, LoadError> {
        let invalid = |e: wasmtime::Error| LoadError::Invalid {
            path: path.to_path_buf(),
            message: format!("{e:#}"),
        };
        let Some(cache) = &self.cache else {
            return Component::new(&self.engine, bytes).map_err(invalid);
        };
        if let Some(artifact) = cache.get(digest) {
            // SAFETY: `artifact` is the very buffer whose HMAC (under this runner's key, over
            // the engine's compatibility hash, the wasm digest and these bytes) was just
            // verified, so `precompile_component` of an engine with these settings wrote
            // it for this wasm. It is not read from disk again.
            #[allow(unsafe_code)]
            let loaded = unsafe { Component::deserialize(&self.engine, &artifact) };
            match loaded {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(file = %cache.path(digest).display(), error = %e, "discarding unusable cache entry")
                }
            }
        }
        let compiled = self.engine.precompile_component(bytes).map_err(invalid)?;
        if let Err(e) = cache.put(digest, &compiled) {
            tracing::warn!(file = %cache.path(digest).display(), error = %e, "could not cache compiled plugin");
        }
        // SAFETY: `compiled` was produced just now by this engine's `precompile_component`.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(&self.engine, &compiled) };
        component.map_err(invalid)
    }
}

/// The cache subdirectory for this engine: 16 hex digits of its compatibility hash, so a
/// new wasmtime or different settings never meet an old artifact.
fn engine_tag(engine: &Engine) -> String {
    let mut h = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}

fn check_component_header(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    let not = |reason: &str| LoadError::NotAComponent {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    if bytes.len() < 8 || &bytes[0..4] != b"\0asm" {
        return Err(not("not a WebAssembly file (no `\\0asm` header)"));
    }
    match bytes[4..8] {
        [0x0d, 0x00, 0x01, 0x00] => Ok(()),
        [0x01, 0x00, 0x00, 0x00] => Err(not(
            "is a core WebAssembly module, not a component: build it for wasm32-wasip2 (or run `wasm-tools component new`)",
        )),
        _ => Err(not("unknown WebAssembly version/layer")),
    }
}

//! Costs of the plugin runtime: per-call instantiation and a whole `inventory` call, and the
//! same inventory parsing run natively as the baseline.
//!
//! ```text
//! make plugins   # or: cd plugins && cargo build --release --target wasm32-wasip2
//! cargo bench -p patchwave-plugin-host --bench plugin -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! The plugins are read from `$PATCHWAVE_PLUGIN_BUILD` (default
//! `<repo>/plugins/target/wasm32-wasip2/release`).
//!
//! Targets: `instantiate/*` < 50 µs; `inventory_3000/wasm_call` < 2 ms and at most 2.5× the
//! native baseline. Async calls are driven with `b.iter(|| rt.block_on(..))` on a
//! multi-thread tokio runtime.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use patchwave_core::HostId;
use patchwave_plugin_debian::dpkg::{parse_inventory, SHOW_FORMAT};
use patchwave_plugin_host::{
    AuditLog, Limits, LoadedPlugin, PluginGrants, PluginRuntime, RuntimeOptions,
};
use patchwave_transport::{Command, Output, Transport, TransportError};

/// Packages in the canned `dpkg-query` output.
const PACKAGES: usize = 3_000;

/// The real `dpkg-query -W` output of a Debian 12 machine (720 packages).
const DEBIAN12: &str = include_str!("../../../plugins/debian/tests/data/dpkg-query-debian12.txt");

/// `PACKAGES` lines of realistic `dpkg-query` output: the Debian 12 machine's packages, then
/// copies of them with `-pwN` appended to the binary and source names (versions, arches and
/// the name/source relations stay real). Deterministic.
fn dpkg_output() -> String {
    let base: Vec<&str> = DEBIAN12.lines().collect();
    let mut out = String::with_capacity(PACKAGES * 64);
    for i in 0..PACKAGES {
        let line = base[i % base.len()];
        let copy = i / base.len();
        if copy == 0 {
            out.push_str(line);
        } else {
            let f: Vec<&str> = line.split('\t').collect();
            let [status, name, version, arch, source] = f[..] else {
                panic!("unexpected test data line {line:?}");
            };
            out.push_str(&format!(
                "{status}\t{name}-pw{copy}\t{version}\t{arch}\t{source}-pw{copy}"
            ));
        }
        out.push('\n');
    }
    out
}

/// A target that answers the Debian plugin's inventory query with canned output and refuses
/// everything else. No process, no network: the inventory bench measures the runtime and the
/// plugin (instantiate, grant check, audit line, copies across the boundary, parse, result
/// lowering), not how fast a real host answers.
struct CannedDpkg {
    host: HostId,
    stdout: Vec<u8>,
}

#[async_trait::async_trait]
impl Transport for CannedDpkg {
    fn host(&self) -> &HostId {
        &self.host
    }

    async fn exec(&self, cmd: &Command) -> Result<Output, TransportError> {
        if cmd.program == "dpkg-query" && cmd.args == ["-W", SHOW_FORMAT] {
            // A transport hands over an owned buffer, so the copy is part of the call.
            return Ok(Output {
                status: 0,
                stdout: self.stdout.clone(),
                stderr: Vec::new(),
            });
        }
        Err(TransportError::Config {
            host: self.host.clone(),
            detail: format!("bench target only answers dpkg-query, not {cmd:?}"),
        })
    }
}

/// The same inventory flow natively: the plugin's own `facts::inventory` against a host
/// that hands back (a copy of) the same output.
struct NativeCanned<'a>(&'a [u8]);

impl patchwave_plugin_debian::host::Host for NativeCanned<'_> {
    fn exec(
        &mut self,
        cmd: &patchwave_plugin_sdk::Command,
    ) -> Result<patchwave_plugin_sdk::Output, patchwave_plugin_sdk::PluginError> {
        assert_eq!(cmd.program, "dpkg-query");
        Ok(patchwave_plugin_sdk::Output {
            status: 0,
            stdout: self.0.to_vec(),
            stderr: Vec::new(),
        })
    }

    fn log(&mut self, _level: patchwave_plugin_sdk::Level, _message: &str) {}
}

fn plugin_dir() -> PathBuf {
    std::env::var_os("PATCHWAVE_PLUGIN_BUILD")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../plugins/target/wasm32-wasip2/release")
        })
}

fn load(rt: &tokio::runtime::Runtime, runtime: &PluginRuntime, file: &str) -> LoadedPlugin {
    let path = plugin_dir().join(file);
    assert!(
        path.is_file(),
        "{} is missing: run `make plugins` first (or set PATCHWAVE_PLUGIN_BUILD to the \
         directory holding the built plugins)",
        path.display()
    );
    rt.block_on(runtime.load(&path, PluginGrants::Manifest, Limits::default()))
        .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()))
}

struct Setup {
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    /// Keep the runtimes alive (they own the engines and epoch tickers).
    _runtimes: Vec<PluginRuntime>,
    debian: LoadedPlugin,
    hostile: LoadedPlugin,
    /// The Debian plugin on a runtime without the pooling allocator, for comparison.
    debian_on_demand: LoadedPlugin,
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let audit = Arc::new(AuditLog::open(&dir.path().join("audit.log")).unwrap());
    let pooled = PluginRuntime::new(RuntimeOptions::default(), audit.clone()).unwrap();
    let on_demand = PluginRuntime::new(
        RuntimeOptions {
            pool_instances: 0,
            ..RuntimeOptions::default()
        },
        audit,
    )
    .unwrap();
    let debian = load(&rt, &pooled, "patchwave_plugin_debian.wasm");
    let hostile = load(&rt, &pooled, "patchwave_fixture_hostile.wasm");
    let debian_on_demand = load(&rt, &on_demand, "patchwave_plugin_debian.wasm");
    Setup {
        rt,
        _dir: dir,
        _runtimes: vec![pooled, on_demand],
        debian,
        hostile,
        debian_on_demand,
    }
}

fn benches(c: &mut Criterion) {
    let s = setup();
    let rt = &s.rt;

    let mut g = c.benchmark_group("instantiate");
    for (name, plugin) in [
        ("debian", &s.debian),
        ("hostile", &s.hostile),
        ("debian_no_pooling", &s.debian_on_demand),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| rt.block_on(plugin.bench_instantiate()).unwrap())
        });
    }
    // Instantiate + one trivial export call + result lifting.
    for (name, plugin) in [
        ("compare_versions_empty/debian", &s.debian),
        ("compare_versions_empty/hostile", &s.hostile),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| black_box(rt.block_on(plugin.compare_versions(&[])).unwrap()))
        });
    }
    g.finish();

    let text = dpkg_output();
    let expected = parse_inventory(&text).unwrap().len();
    assert_eq!(
        expected, PACKAGES,
        "every canned line is an installed package"
    );
    let target: Arc<dyn Transport> = Arc::new(CannedDpkg {
        host: HostId::from("bench"),
        stdout: text.clone().into_bytes(),
    });
    let got = rt.block_on(s.debian.inventory(target.clone())).unwrap();
    assert_eq!(got.len(), expected);

    let mut g = c.benchmark_group("inventory_3000");
    g.throughput(Throughput::Elements(PACKAGES as u64));
    g.bench_function("wasm_call", |b| {
        b.iter(|| black_box(rt.block_on(s.debian.inventory(target.clone())).unwrap()))
    });
    // The same call with the non-pooling allocator (fresh mmap'd memories every call).
    g.bench_function("wasm_call_no_pooling", |b| {
        b.iter(|| {
            black_box(
                rt.block_on(s.debian_on_demand.inventory(target.clone()))
                    .unwrap(),
            )
        })
    });
    g.bench_function("native_parse", |b| {
        b.iter(|| black_box(parse_inventory(black_box(&text)).unwrap()))
    });
    let bytes = text.as_bytes();
    g.bench_function("native_flow", |b| {
        b.iter(|| {
            let mut host = NativeCanned(black_box(bytes));
            black_box(patchwave_plugin_debian::facts::inventory(&mut host).unwrap())
        })
    });
    g.finish();

    // The fixed part of an inventory call: instantiate, the exec round trip (grant check,
    // audit line) and a one-package answer.
    let one: Arc<dyn Transport> = Arc::new(CannedDpkg {
        host: HostId::from("bench"),
        stdout: text
            .lines()
            .next()
            .map(|l| format!("{l}\n"))
            .unwrap()
            .into_bytes(),
    });
    c.bench_function("inventory_1/wasm_call", |b| {
        b.iter(|| black_box(rt.block_on(s.debian.inventory(one.clone())).unwrap()))
    });
}

criterion_group! {
    name = plugin;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(plugin);

//! Planning a rollout: which pinned set goes to which hosts, and the whole transaction the
//! package manager resolves for it at the canary.
//!
//! A request names the packages (explicit pins, or the fixes of open findings) and an
//! ecosystem. The plan is built from the configured hosts and what the store knows about
//! them (what is installed, from the last scan):
//!
//! 1. hosts of other ecosystems are left out; hosts never scanned are named and left out;
//! 2. each host's changes are the pins its installed versions are below (every comparison of
//!    the request in one batched `compare-versions` call);
//! 3. the hosts of the first stage (the canary when there is one) are asked what applying
//!    their changes would really do (`plan-apply`, the package manager's own simulation,
//!    read-only). The dependencies it would install or upgrade join the release manifest;
//!    two canary hosts resolving a package to different versions is an error, and a canary
//!    host whose resolution fails or would remove packages is refused (named, left out);
//! 4. the manifest — pins plus those dependencies — is what every later host installs:
//!    each later host resolves its own transaction right before its apply, and the executor
//!    refuses one that leaves the manifest (see [`crate::rollout`]).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use patchwave_advisory::{ecosystems_for_host, Ecosystem, FixedIn};
use patchwave_core::{Change, HostId, PluginError, Transaction};
use patchwave_rollout::{
    plan, Force, PatchClass, PinnedPackage, Plan, PlanErrors, ReleaseManifest, Target,
};
use patchwave_store::{Store, StoreError};

use crate::findings::{PluginOracle, VersionOracle};
use crate::plugins::PluginSet;
use crate::scan::{choose_plugin, HostTarget};

/// Where the pinned versions come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinSource {
    /// Exact versions given by the operator: `(name, version)`.
    Explicit(Vec<(String, String)>),
    /// The fixes of every open, not excluded finding of this class or higher on the planned
    /// hosts: per package, the highest fix any of them needs.
    Findings {
        /// The lowest class included.
        min: PatchClass,
    },
}

/// What to roll out, and to which hosts.
#[derive(Clone, Debug)]
pub struct PlanRequest {
    /// The packages.
    pub pins: PinSource,
    /// The OSV ecosystem of the pins (`Debian:12`); hosts of other ecosystems are left out.
    pub ecosystem: Ecosystem,
    /// The patch class; by default `high` for explicit pins, the highest class among the
    /// findings pinned otherwise.
    pub class: Option<PatchClass>,
    /// Only hosts of this scope.
    pub scope: Option<String>,
    /// Only these hosts (empty: every configured host).
    pub hosts: Vec<HostId>,
    /// Go ahead despite refused anti-patterns.
    pub force: Option<Force>,
}

/// A plan (or why there is none) and what planning left out, with the reasons: those are
/// worth showing whether or not a plan came of it.
#[derive(Debug)]
pub struct Planned {
    /// The plan (its manifest holds the dependencies resolved at the canary), or why not.
    pub outcome: Result<Plan, PlanningError>,
    /// Hosts left out: never scanned, or refused when their transaction was resolved.
    pub not_planned: Vec<(HostId, String)>,
    /// Findings with no usable fix (`--from-findings`), one line each.
    pub not_pinned: Vec<String>,
    /// The hosts whose resolved transactions gave the manifest's dependencies.
    pub resolved_on: Vec<HostId>,
}

/// Why no plan was made.
#[derive(Debug, thiserror::Error)]
pub enum PlanningError {
    /// The request itself is wrong (a bad pin, an ecosystem no plugin orders, a plan the
    /// policy refuses).
    #[error("{0}")]
    Invalid(String),
    /// There is nothing to pin (no finding of the class with a fix on the planned hosts).
    #[error("{0}")]
    NothingToPin(String),
    /// The canary could not resolve the transaction (every canary host refused, or two of
    /// them resolved a package differently).
    #[error("{0}")]
    Resolution(String),
    /// A plugin failed as a whole.
    #[error("{0}")]
    Plugin(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PlanErrors> for PlanningError {
    fn from(e: PlanErrors) -> Self {
        PlanningError::Invalid(e.to_string())
    }
}

/// What planning reads: the store, the plugins, the configured hosts with their transports,
/// and the policies.
pub struct Planner<'a> {
    /// The store (inventories, findings, host summaries).
    pub store: &'a dyn Store,
    /// The loaded plugins (version ordering, `plan-apply`).
    pub plugins: &'a PluginSet,
    /// Every configured host, with its transport.
    pub hosts: &'a [HostTarget],
    /// How rollouts are staged.
    pub rollout_policy: &'a patchwave_rollout::Policy,
    /// How findings are classified.
    pub classify: &'a patchwave_advisory::Policy,
    /// Ubuntu hosts get Ubuntu Pro records.
    pub ubuntu_pro: bool,
    /// Hosts asked at once when resolving.
    pub concurrency: usize,
}

impl Planner<'_> {
    /// Plan `request` at `now` (see the module documentation).
    pub async fn plan(&self, request: &PlanRequest, now: DateTime<Utc>) -> Planned {
        let mut planned = Planned {
            outcome: Err(PlanningError::Invalid(String::new())),
            not_planned: Vec::new(),
            not_pinned: Vec::new(),
            resolved_on: Vec::new(),
        };
        planned.outcome = self.plan_into(request, now, &mut planned).await;
        planned
    }

    /// [`Planner::plan`]'s work; what is left out lands in `notes` as it is found.
    async fn plan_into(
        &self,
        request: &PlanRequest,
        now: DateTime<Utc>,
        notes: &mut Planned,
    ) -> Result<Plan, PlanningError> {
        let oracle = PluginOracle::new(self.plugins);
        if !request.ecosystem.is_known() {
            return Err(PlanningError::Invalid(format!(
                "--ecosystem `{}`: not an OSV ecosystem patchwave knows (known: \
                 Debian:<release>, Ubuntu:<yy.mm>[:LTS], Ubuntu:Pro:<yy.mm>:LTS, \
                 Ubuntu:Pro:<variant>:<yy.mm>:LTS, Red Hat:<stream>, Rocky Linux:<major>, \
                 AlmaLinux:<major>)",
                request.ecosystem
            )));
        }
        if oracle.comparer(&request.ecosystem).is_none() {
            let known: BTreeSet<String> = self
                .plugins
                .iter()
                .flat_map(|p| p.manifest().ecosystems.iter().cloned())
                .collect();
            return Err(PlanningError::Invalid(format!(
                "--ecosystem `{}`: no loaded plugin orders its versions (the loaded plugins \
                 handle: {})",
                request.ecosystem,
                known.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
        let not_planned = &mut notes.not_planned;
        let eligible = self.eligible(request, not_planned).await?;
        let ids: Vec<HostId> = eligible.iter().map(|h| h.config.id.clone()).collect();
        let manifest = match &request.pins {
            PinSource::Explicit(pins) => {
                explicit_manifest(&request.ecosystem, pins, request.class)?
            }
            PinSource::Findings { min } => {
                self.manifest_from_findings(
                    &oracle,
                    request,
                    &ids,
                    *min,
                    now,
                    &mut notes.not_pinned,
                )
                .await?
            }
        };
        let mut targets = self.targets(&oracle, request, &eligible, &manifest).await?;

        // Resolve the transaction on the hosts of the first stage, as the plan stands (a plan
        // the policy refuses is reported before any host is asked).
        let first = plan(
            &manifest,
            &targets,
            self.rollout_policy,
            request.force.clone(),
        )?;
        let reference: Vec<HostId> = first
            .stages()
            .first()
            .map(|s| s.hosts.iter().map(|h| h.host.clone()).collect())
            .unwrap_or_default();
        let resolved = self.resolve(&eligible, &targets, &reference).await;
        let mut dependencies: BTreeMap<String, (String, HostId)> = BTreeMap::new();
        let resolved_on = &mut notes.resolved_on;
        let mut refused = BTreeSet::new();
        for (host, result) in resolved {
            let tx = match result {
                Ok(tx) if tx.removals.is_empty() => tx,
                Ok(tx) => {
                    let removed: Vec<String> = tx
                        .removals
                        .iter()
                        .map(|p| format!("{} {}", p.name, p.version))
                        .collect();
                    not_planned.push((
                        host.clone(),
                        format!(
                            "refused: applying would remove {} (an apply never removes packages)",
                            removed.join(", ")
                        ),
                    ));
                    refused.insert(host);
                    continue;
                }
                Err(e) => {
                    not_planned.push((
                        host.clone(),
                        format!("refused: its transaction could not be resolved: {e}"),
                    ));
                    refused.insert(host);
                    continue;
                }
            };
            for c in &tx.changes {
                if manifest.pins(&c.name, &c.to) {
                    continue;
                }
                match dependencies.get(&c.name) {
                    Some((version, other)) if version != &c.to => {
                        return Err(PlanningError::Resolution(format!(
                            "the canary resolves {} to {} on {other} but to {} on {host}: pin the \
                             version you want explicitly",
                            c.name, version, c.to
                        )));
                    }
                    Some(_) => {}
                    None => {
                        dependencies.insert(c.name.clone(), (c.to.clone(), host.clone()));
                    }
                }
            }
            if let Some(t) = targets.iter_mut().find(|t| t.host == host) {
                t.changes = tx.changes;
            }
            resolved_on.push(host);
        }
        if !reference.is_empty() && resolved_on.is_empty() {
            let why: Vec<String> = not_planned
                .iter()
                .filter(|(h, _)| refused.contains(h))
                .map(|(h, why)| format!("{h}: {why}"))
                .collect();
            return Err(PlanningError::Resolution(format!(
                "no host of the first stage could resolve the transaction: {}",
                why.join("; ")
            )));
        }
        targets.retain(|t| !refused.contains(&t.host));
        let ecosystem = request.ecosystem.to_string();
        let manifest = manifest
            .with_dependencies(
                dependencies
                    .into_iter()
                    .map(|(name, (version, _))| PinnedPackage::new(&ecosystem, &name, &version))
                    .collect(),
            )
            .map_err(|e| PlanningError::Resolution(e.to_string()))?;
        let plan = plan(
            &manifest,
            &targets,
            self.rollout_policy,
            request.force.clone(),
        )?;
        resolved_on.sort();
        Ok(plan)
    }

    /// The configured hosts the request may go to: of its scope and host list, scanned, and
    /// of its ecosystem. Hosts never scanned are named in `not_planned`.
    async fn eligible(
        &self,
        request: &PlanRequest,
        not_planned: &mut Vec<(HostId, String)>,
    ) -> Result<Vec<&HostTarget>, PlanningError> {
        let mut eligible = Vec::new();
        for target in self.hosts {
            let host = &target.config;
            if !request.hosts.is_empty() && !request.hosts.contains(&host.id) {
                continue;
            }
            if request.scope.as_ref().is_some_and(|s| *s != host.scope) {
                continue;
            }
            let summary = self.store.host_summary(&host.id).await?;
            let Some(facts) = summary.and_then(|s| s.facts) else {
                not_planned.push((host.id.clone(), "never scanned".to_string()));
                continue;
            };
            if ecosystems_for_host(&facts.id, &facts.version_id, self.ubuntu_pro)
                .contains(&request.ecosystem)
            {
                eligible.push(target);
            }
        }
        Ok(eligible)
    }

    /// The manifest that fixes every open finding of class `min` or higher on `hosts`: per
    /// package, the highest fixed version any finding needs (one batched comparison).
    async fn manifest_from_findings(
        &self,
        oracle: &PluginOracle,
        request: &PlanRequest,
        hosts: &[HostId],
        min: PatchClass,
        now: DateTime<Utc>,
        not_pinned: &mut Vec<String>,
    ) -> Result<ReleaseManifest, PlanningError> {
        let assessed = crate::findings::assess_fleet(
            self.store,
            self.plugins,
            self.classify.clone(),
            self.ubuntu_pro,
        )
        .await?;
        let mut fixes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut highest: Option<PatchClass> = None;
        for f in assessed.findings(now) {
            if f.class() < min || f.is_excluded(now) || !hosts.contains(&f.host) {
                continue;
            }
            match f.fixed_in() {
                FixedIn::Version(v) => {
                    highest = highest.max(Some(f.class()));
                    fixes
                        .entry(f.package.clone())
                        .or_default()
                        .insert(v.clone());
                }
                FixedIn::NoFixYet => {
                    not_pinned.push(format!("{} {}: no fix yet", f.host, f.package))
                }
                FixedIn::Unknown(why) => {
                    not_pinned.push(format!("{} {}: {why}", f.host, f.package))
                }
            }
        }
        let Some(highest) = highest else {
            return Err(PlanningError::NothingToPin(format!(
                "no open {min} or higher finding with a fix on the planned hosts"
            )));
        };
        // Every candidate against every other, in one call: the highest is the one no other
        // candidate is above.
        let mut pairs = Vec::new();
        for candidates in fixes.values() {
            for a in candidates {
                for b in candidates {
                    if a != b {
                        pairs.push((a.clone(), b.clone()));
                    }
                }
            }
        }
        let answers = compare(oracle, &request.ecosystem, &pairs).await?;
        let mut pins = Vec::new();
        let ecosystem = request.ecosystem.to_string();
        for (name, candidates) in &fixes {
            let highest_fix = candidates.iter().find(|a| {
                candidates.iter().all(|b| {
                    *a == b || answers.get(&((*a).clone(), b.clone())) != Some(&Ordering::Less)
                })
            });
            let Some(version) = highest_fix else {
                return Err(PlanningError::Plugin(format!(
                    "{name}: the plugin gave no consistent order of its fixes {candidates:?}"
                )));
            };
            pins.push(PinnedPackage::new(&ecosystem, name, version));
        }
        let class = request.class.unwrap_or(highest);
        ReleaseManifest::new(pins, &format!("findings: {min} and higher"), class)
            .map_err(|e| PlanningError::Invalid(e.to_string()))
    }

    /// Each eligible host with its changes: the manifest's packages installed on it below the
    /// pin (one batched comparison for the whole fleet).
    async fn targets(
        &self,
        oracle: &PluginOracle,
        request: &PlanRequest,
        eligible: &[&HostTarget],
        manifest: &ReleaseManifest,
    ) -> Result<Vec<Target>, PlanningError> {
        let mut installed: Vec<(usize, String, String, String)> = Vec::new();
        for (i, host) in eligible.iter().enumerate() {
            let inventory = self.store.inventory(&host.config.id).await?;
            let packages = inventory.map(|i| i.packages).unwrap_or_default();
            for pin in manifest.packages() {
                if let Some(p) = packages.iter().find(|p| p.name == pin.name) {
                    if p.version != pin.version {
                        installed.push((
                            i,
                            pin.name.clone(),
                            p.version.clone(),
                            pin.version.clone(),
                        ));
                    }
                }
            }
        }
        let pairs: Vec<(String, String)> = installed
            .iter()
            .map(|(_, _, from, to)| (from.clone(), to.clone()))
            .collect();
        let answers = compare(oracle, &request.ecosystem, &pairs).await?;
        let mut changes: Vec<Vec<Change>> = vec![Vec::new(); eligible.len()];
        for (i, name, from, to) in installed {
            if answers.get(&(from.clone(), to.clone())) == Some(&Ordering::Less) {
                changes[i].push(Change {
                    name,
                    from: Some(from),
                    to,
                });
            }
        }
        Ok(eligible
            .iter()
            .zip(changes)
            .map(|(host, changes)| Target {
                host: host.config.id.clone(),
                environment: host.config.env,
                scope: host.config.scope.clone(),
                changes,
            })
            .collect())
    }

    /// `plan-apply` on each of `hosts` that has changes, `concurrency` at a time.
    async fn resolve(
        &self,
        eligible: &[&HostTarget],
        targets: &[Target],
        hosts: &[HostId],
    ) -> Vec<(HostId, Result<Transaction, PluginError>)> {
        let gate = Arc::new(tokio::sync::Semaphore::new(self.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for id in hosts {
            let Some(changes) = targets
                .iter()
                .find(|t| &t.host == id)
                .map(|t| t.changes.clone())
                .filter(|c| !c.is_empty())
            else {
                continue;
            };
            let Some(target) = eligible.iter().find(|t| &t.config.id == id) else {
                continue;
            };
            let target = (*target).clone();
            let plugins = Arc::new(self.plugins.clone());
            let gate = gate.clone();
            // The plugin that scanned the host (its inventory is what the plan read), unless
            // the host names another; as the executor chooses.
            let named = target.config.plugin.clone();
            let scanned_by = self
                .store
                .host_summary(id)
                .await
                .ok()
                .flatten()
                .and_then(|s| s.plugin)
                .filter(|p| named.as_ref().is_none_or(|n| n == p));
            tasks.spawn(async move {
                let _slot = gate.acquire_owned().await;
                let transport = target.transport.clone();
                let plugin = match scanned_by.and_then(|p| plugins.get(&p).cloned()) {
                    Some(p) => Ok(p),
                    None => choose_plugin(&plugins, &target, transport.clone())
                        .await
                        .map(|(p, _)| p),
                };
                let result = match plugin {
                    Ok(plugin) => plugin.plan_apply(transport, &changes).await,
                    Err(e) => Err(e),
                };
                (target.config.id.clone(), result)
            });
        }
        let mut out = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            if let Ok(r) = joined {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// The manifest of explicit pins (`class` default high).
fn explicit_manifest(
    ecosystem: &Ecosystem,
    pins: &[(String, String)],
    class: Option<PatchClass>,
) -> Result<ReleaseManifest, PlanningError> {
    let ecosystem = ecosystem.to_string();
    let pins = pins
        .iter()
        .map(|(name, version)| PinnedPackage::new(&ecosystem, name, version))
        .collect();
    ReleaseManifest::new(pins, "explicit", class.unwrap_or(PatchClass::High))
        .map_err(|e| PlanningError::Invalid(e.to_string()))
}

/// Order `pairs` in one call; the answers by pair. A pair the plugin cannot order is an
/// error naming it.
async fn compare(
    oracle: &PluginOracle,
    ecosystem: &Ecosystem,
    pairs: &[(String, String)],
) -> Result<BTreeMap<(String, String), Ordering>, PlanningError> {
    if pairs.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut unique: Vec<(String, String)> = pairs.to_vec();
    unique.sort();
    unique.dedup();
    let answers = oracle
        .compare(ecosystem, &unique)
        .await
        .map_err(PlanningError::Plugin)?;
    let mut out = BTreeMap::new();
    for (pair, answer) in unique.into_iter().zip(answers) {
        match answer {
            Ok(o) => {
                out.insert(pair, o);
            }
            Err(e) => {
                return Err(PlanningError::Invalid(format!(
                    "{} vs {}: {e}",
                    pair.0, pair.1
                )))
            }
        }
    }
    Ok(out)
}

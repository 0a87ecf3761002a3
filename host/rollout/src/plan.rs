//! Planning: which hosts get the manifest in which stage, and which plans are refused.

use std::collections::BTreeSet;
use std::fmt;

use patchwave_core::{Change, Environment, HostId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::manifest::{PatchClass, ReleaseManifest};
use crate::policy::{Policy, PolicyError};
use crate::problems::{ok_or_problems, Problems};

/// One host the manifest may go to, as the engine sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The host.
    pub host: HostId,
    /// Prod or non-prod: non-prod hosts form the canary.
    pub environment: Environment,
    /// The host's reporting scope (team, service, …). The canary must cover every scope that
    /// has prod hosts for critical and high patches.
    pub scope: String,
    /// The manifest's packages installed on this host below the pinned version, each with
    /// its `from` version and the pinned `to` version. Empty: the host is up to date.
    pub changes: Vec<Change>,
}

/// Permission to go ahead with a plan that would otherwise be refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Force {
    /// Why it is safe or necessary.
    pub reason: String,
    /// Who decided it.
    pub by: String,
}

/// A force that overrode refusals, kept in the plan so the engine audits it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForceRecord {
    /// Why it is safe or necessary.
    pub reason: String,
    /// Who decided it.
    pub by: String,
    /// Every refusal it overrode.
    pub overridden: Vec<AntiPattern>,
}

/// A stage of a rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageId {
    /// The non-prod hosts, before any prod host.
    Canary,
    /// A prod wave, numbered from 1.
    Wave(u32),
}

impl fmt::Display for StageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StageId::Canary => f.write_str("canary"),
            StageId::Wave(n) => write!(f, "wave {n}"),
        }
    }
}

/// A host in a stage, with what it gets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedHost {
    /// The host.
    pub host: HostId,
    /// Prod or non-prod.
    pub environment: Environment,
    /// Reporting scope.
    pub scope: String,
    /// Exactly the changes applied to it.
    pub changes: Vec<Change>,
}

/// One stage of the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedStage {
    /// Which stage.
    pub id: StageId,
    /// For a wave: the policy's cumulative coverage of the prod hosts, in percent.
    pub coverage_percent: Option<u32>,
    /// For a wave: how many prod hosts have the manifest once it is done (cumulative).
    pub prod_hosts_covered: usize,
    /// Its hosts, in the order they start.
    pub hosts: Vec<PlannedHost>,
}

/// A plan a rollout can start from: the manifest, the policy, the stages and the hosts
/// already up to date. Built only by [`plan`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    manifest: ReleaseManifest,
    policy: Policy,
    stages: Vec<PlannedStage>,
    up_to_date: Vec<HostId>,
    forced: Option<ForceRecord>,
}

impl Plan {
    /// The pinned set every stage gets.
    pub fn manifest(&self) -> &ReleaseManifest {
        &self.manifest
    }

    /// The policy the plan was made with, which the rollout follows.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The stages in order: the canary (if any), then the waves.
    pub fn stages(&self) -> &[PlannedStage] {
        &self.stages
    }

    /// Targets that needed no change, sorted by id.
    pub fn up_to_date(&self) -> &[HostId] {
        &self.up_to_date
    }

    /// The force that overrode refusals, if one was needed.
    pub fn forced(&self) -> Option<&ForceRecord> {
        self.forced.as_ref()
    }

    /// How many hosts are staged over all stages.
    pub fn staged_hosts(&self) -> usize {
        self.stages.iter().map(|s| s.hosts.len()).sum()
    }

    /// The stage and planned entry of `host`, if it is staged.
    pub fn host(&self, host: &HostId) -> Option<(&PlannedStage, &PlannedHost)> {
        self.stages.iter().find_map(|stage| {
            stage
                .hosts
                .iter()
                .find(|h| &h.host == host)
                .map(|h| (stage, h))
        })
    }

    /// The changes planned for `host`, if it is staged.
    pub fn changes_for(&self, host: &HostId) -> Option<&[Change]> {
        self.host(host).map(|(_, h)| h.changes.as_slice())
    }
}

/// A plan shape that is refused unless forced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum AntiPattern {
    /// Every prod host would get the manifest in one stage.
    SingleProdStage {
        /// How many prod hosts that stage would hold.
        prod_hosts: usize,
        /// The policy's waves.
        waves: Vec<u32>,
    },
    /// Hosts would not be re-inventoried after their apply.
    VerifyOff,
    /// Critical or high patches would reach prod without a canary in front of them.
    NoCanary {
        /// The manifest's class.
        class: PatchClass,
        /// Why there is no canary.
        missing: MissingCanary,
    },
}

/// Why critical or high patches would reach prod without a canary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "why", rename_all = "kebab-case")]
pub enum MissingCanary {
    /// The policy turns the canary off.
    Disabled,
    /// These scopes have prod targets but no non-prod target in the canary.
    UncoveredScopes {
        /// The scopes, sorted.
        scopes: Vec<String>,
    },
}

impl fmt::Display for AntiPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AntiPattern::SingleProdStage { prod_hosts, waves } => write!(
                f,
                "all {prod_hosts} prod hosts would be patched in a single stage (waves {waves:?}); \
                 use several waves such as [5, 25, 50, 100]"
            ),
            AntiPattern::VerifyOff => f.write_str(
                "verify is off: applies would be trusted on their exit code alone; set verify = true",
            ),
            AntiPattern::NoCanary {
                class,
                missing: MissingCanary::Disabled,
            } => write!(
                f,
                "{class} patches would reach prod without a canary: the policy disables it; \
                 set canary = true"
            ),
            AntiPattern::NoCanary {
                class,
                missing: MissingCanary::UncoveredScopes { scopes },
            } => write!(
                f,
                "{class} patches would reach prod without a canary: no non-prod host in scope {}; \
                 add a non-prod host of each such scope to the rollout",
                scopes.join(", ")
            ),
        }
    }
}

/// One problem that stops a plan.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PlanError {
    /// The policy is invalid.
    #[error("policy: {0}")]
    Policy(PolicyError),
    /// The same host is targeted twice.
    #[error("host {host} is targeted more than once")]
    DuplicateTarget {
        /// The host.
        host: HostId,
    },
    /// A host's changes name the same package twice.
    #[error("host {host}: package {package} is changed more than once")]
    DuplicateChange {
        /// The host.
        host: HostId,
        /// The package.
        package: String,
    },
    /// A change's target version is not the manifest's pin for that package.
    #[error("host {host}: change of {package} to {version} is not pinned by the manifest")]
    NotPinned {
        /// The host.
        host: HostId,
        /// The package.
        package: String,
        /// The version the change asks for.
        version: String,
    },
    /// The plan has a refused shape.
    #[error("refused: {0}; to go ahead anyway, plan again with a force giving the reason and who decides it")]
    Refused(AntiPattern),
    /// A force was given with a blank reason or name.
    #[error("force: `{field}` is blank; a force needs a reason and who decides it")]
    ForceIncomplete {
        /// `reason` or `by`.
        field: &'static str,
    },
}

/// All problems of one plan.
pub type PlanErrors = Problems<PlanError>;

/// Plans a rollout of `manifest` over `targets`.
///
/// Targets without changes are listed as up to date. Non-prod targets form the canary (when
/// the policy runs one for the manifest's class; otherwise they join the first wave ahead of
/// its prod hosts). Prod targets are ordered by the SHA-256 of their id — so re-planning the
/// same fleet gives the same waves and adding a host does not reorder the others — and wave
/// `i` ends at cumulative coverage `ceil(waves[i] · N / 100)`, with at least one new host per
/// wave while hosts remain; waves left empty at the end are dropped.
///
/// Refused unless `force` is given (and then recorded in the plan): all of several prod hosts
/// in a single stage, or any prod host under a single-wave policy (one prod host under a
/// multi-wave policy is fine: it cannot be split); verify off; critical or high patches whose
/// prod scopes are not all covered by a canary host.
pub fn plan(
    manifest: &ReleaseManifest,
    targets: &[Target],
    policy: &Policy,
    force: Option<Force>,
) -> Result<Plan, PlanErrors> {
    let mut problems = target_problems(manifest, targets);
    if let Some(force) = &force {
        problems.extend(force_problems(force));
    }
    if let Err(errors) = policy.validate() {
        // Stages cannot be computed from an invalid policy: report what is known.
        let mut all = errors.map(PlanError::Policy);
        all.extend(problems);
        return Err(all);
    }
    let (staged, up_to_date) = split_targets(targets);
    let stages = build_stages(manifest.class(), policy, staged);
    let refusals = anti_patterns(manifest.class(), policy, &stages);
    let forced = match (refusals.is_empty(), force) {
        (true, _) => None,
        (false, Some(force)) => Some(ForceRecord {
            reason: force.reason,
            by: force.by,
            overridden: refusals,
        }),
        (false, None) => {
            problems.extend(refusals.into_iter().map(PlanError::Refused));
            None
        }
    };
    ok_or_problems(
        Plan {
            manifest: manifest.clone(),
            policy: policy.clone(),
            stages,
            up_to_date,
            forced,
        },
        problems,
    )
}

fn target_problems(manifest: &ReleaseManifest, targets: &[Target]) -> Vec<PlanError> {
    let mut problems = Vec::new();
    let mut hosts = BTreeSet::new();
    for target in targets {
        if !hosts.insert(&target.host) {
            problems.push(PlanError::DuplicateTarget {
                host: target.host.clone(),
            });
        }
        let mut packages = BTreeSet::new();
        for change in &target.changes {
            if !packages.insert(&change.name) {
                problems.push(PlanError::DuplicateChange {
                    host: target.host.clone(),
                    package: change.name.clone(),
                });
            }
            if !manifest.pins(&change.name, &change.to) {
                problems.push(PlanError::NotPinned {
                    host: target.host.clone(),
                    package: change.name.clone(),
                    version: change.to.clone(),
                });
            }
        }
    }
    problems
}

fn force_problems(force: &Force) -> Vec<PlanError> {
    [("reason", &force.reason), ("by", &force.by)]
        .into_iter()
        .filter(|(_, value)| value.trim().is_empty())
        .map(|(field, _)| PlanError::ForceIncomplete { field })
        .collect()
}

/// Staged hosts (first occurrence of each id) and the ids of up-to-date ones, sorted.
fn split_targets(targets: &[Target]) -> (Vec<PlannedHost>, Vec<HostId>) {
    let mut seen = BTreeSet::new();
    let mut staged = Vec::new();
    let mut up_to_date = Vec::new();
    for target in targets {
        if !seen.insert(&target.host) {
            continue;
        }
        if target.changes.is_empty() {
            up_to_date.push(target.host.clone());
        } else {
            staged.push(PlannedHost {
                host: target.host.clone(),
                environment: target.environment,
                scope: target.scope.clone(),
                changes: target.changes.clone(),
            });
        }
    }
    up_to_date.sort();
    (staged, up_to_date)
}

/// Hosts within a stage start in the order of the SHA-256 of their id (ties, which do not
/// happen in practice, by the id itself): stable across re-plans and host additions.
fn sort_by_key(hosts: &mut [PlannedHost]) {
    hosts.sort_by_cached_key(|h| {
        let digest: [u8; 32] = Sha256::digest(h.host.as_str().as_bytes()).into();
        (digest, h.host.clone())
    });
}

fn build_stages(class: PatchClass, policy: &Policy, staged: Vec<PlannedHost>) -> Vec<PlannedStage> {
    let (mut non_prod, mut prod): (Vec<_>, Vec<_>) = staged
        .into_iter()
        .partition(|h| h.environment == Environment::NonProd);
    sort_by_key(&mut non_prod);
    sort_by_key(&mut prod);
    let mut stages = Vec::new();
    if policy.canary_for(class) && !non_prod.is_empty() {
        stages.push(PlannedStage {
            id: StageId::Canary,
            coverage_percent: None,
            prod_hosts_covered: 0,
            hosts: std::mem::take(&mut non_prod),
        });
    }
    let mut waves = waves(prod, &policy.waves);
    if !non_prod.is_empty() {
        match waves.first_mut() {
            Some(first) => {
                non_prod.append(&mut first.hosts);
                first.hosts = non_prod;
            }
            None => waves.push(PlannedStage {
                id: StageId::Wave(1),
                coverage_percent: Some(100),
                prod_hosts_covered: 0,
                hosts: non_prod,
            }),
        }
    }
    stages.extend(waves);
    stages
}

/// Cumulative wave ends: wave `i` ends at `max(ceil(p_i · n / 100), previous end + 1)`,
/// capped at `n`; waves that would add no host are dropped.
pub fn wave_ends(prod_hosts: usize, waves: &[u32]) -> Vec<(u32, usize)> {
    let mut ends = Vec::new();
    let mut covered = 0usize;
    for &percent in waves {
        if covered >= prod_hosts {
            break;
        }
        let by_percent = (prod_hosts * percent.min(100) as usize).div_ceil(100);
        let end = by_percent.max(covered + 1).min(prod_hosts);
        ends.push((percent, end));
        covered = end;
    }
    ends
}

fn waves(prod: Vec<PlannedHost>, percents: &[u32]) -> Vec<PlannedStage> {
    let ends = wave_ends(prod.len(), percents);
    let mut hosts = prod.into_iter();
    let mut start = 0;
    let mut stages = Vec::new();
    for (number, (percent, end)) in (1u32..).zip(ends) {
        stages.push(PlannedStage {
            id: StageId::Wave(number),
            coverage_percent: Some(percent),
            prod_hosts_covered: end,
            hosts: hosts.by_ref().take(end - start).collect(),
        });
        start = end;
    }
    stages
}

fn anti_patterns(class: PatchClass, policy: &Policy, stages: &[PlannedStage]) -> Vec<AntiPattern> {
    let prod_in = |stage: &PlannedStage| {
        stage
            .hosts
            .iter()
            .filter(|h| h.environment == Environment::Prod)
            .count()
    };
    let prod_hosts: usize = stages.iter().map(prod_in).sum();
    let prod_stages = stages.iter().filter(|s| prod_in(s) > 0).count();
    let mut found = Vec::new();
    if prod_hosts > 0 && (policy.waves.len() == 1 || (prod_stages == 1 && prod_hosts > 1)) {
        found.push(AntiPattern::SingleProdStage {
            prod_hosts,
            waves: policy.waves.clone(),
        });
    }
    if !policy.verify && !stages.is_empty() {
        found.push(AntiPattern::VerifyOff);
    }
    if class.requires_canary() && prod_hosts > 0 {
        if let Some(missing) = missing_canary(policy, stages) {
            found.push(AntiPattern::NoCanary { class, missing });
        }
    }
    found
}

fn missing_canary(policy: &Policy, stages: &[PlannedStage]) -> Option<MissingCanary> {
    if !policy.canary {
        return Some(MissingCanary::Disabled);
    }
    let scopes_of = |canary: bool| -> BTreeSet<&str> {
        stages
            .iter()
            .filter(|s| (s.id == StageId::Canary) == canary)
            .flat_map(|s| &s.hosts)
            .filter(|h| canary || h.environment == Environment::Prod)
            .map(|h| h.scope.as_str())
            .collect()
    };
    let covered = scopes_of(true);
    let uncovered: Vec<String> = scopes_of(false)
        .difference(&covered)
        .map(|s| s.to_string())
        .collect();
    (!uncovered.is_empty()).then_some(MissingCanary::UncoveredScopes { scopes: uncovered })
}

#[cfg(test)]
mod tests;

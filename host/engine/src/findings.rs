//! Findings: the fleet's inventories matched against the stored advisories, classified, each
//! with its SLA clock.
//!
//! The work grows with the number of *distinct* things in the fleet, not with hosts ×
//! packages:
//! 1. hosts that share an inventory (content-addressed in the store) and the same advisory
//!    ecosystems form a [`Cohort`]; each distinct inventory is read once;
//! 2. every package of every cohort becomes a [`PackageQuery`] (ecosystems + lookup name +
//!    version); identical queries across cohorts are assessed once;
//! 3. the version pairs all those queries need are deduplicated and answered in a few
//!    batched `compare-versions` calls to the plugin that orders that ecosystem's versions;
//! 4. each distinct query is matched and classified once; hosts get their findings by
//!    fanning the shared [`Vulnerability`] out, lazily ([`FleetFindings::findings`]).
//!
//! Nothing is dropped silently: a host that was never scanned, or whose OS maps to no
//! advisory ecosystem, is listed in [`FleetFindings::unassessed`] with the reason; a range
//! whose versions the plugin cannot order is kept in [`FleetFindings::errors`].

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchwave_advisory::{
    ecosystems_for_host, Advisory, AdvisoryIndex, Assessor, CvssScorer, Ecosystem, EpssFeed,
    Finding, HostRef, Intel, KevCatalog, MatchError, PackageQuery, Policy, PrecomputedOrder,
    Severity, SeverityKind, VersionPair, Vulnerability,
};
use patchwave_core::{HostId, Installed};
use patchwave_store::{FleetHost, InventoryId, Store, StoreError};

use patchwave_plugin_host::OsPlugin;

use crate::plugins::PluginSet;

/// Pairs sent to a plugin in one `compare-versions` call.
const COMPARE_BATCH: usize = 10_000;

/// What findings are computed from: the advisories, KEV and EPSS, and the policy.
pub struct Intelligence {
    index: AdvisoryIndex,
    intel: Intel,
    policy: Policy,
}

impl Intelligence {
    /// Build from values already in memory.
    pub fn new(
        advisories: Vec<Advisory>,
        kev: Option<&KevCatalog>,
        epss: Option<&EpssFeed>,
        policy: Policy,
    ) -> Intelligence {
        Intelligence {
            index: AdvisoryIndex::new(advisories),
            intel: Intel::new(kev, epss),
            policy,
        }
    }

    /// Read the advisories, KEV and EPSS from the store.
    pub async fn load(store: &dyn Store, policy: Policy) -> Result<Intelligence, StoreError> {
        let advisories = store.advisories().await?;
        let kev = store.kev().await?;
        let epss = store.epss().await?;
        Ok(Intelligence::new(
            advisories,
            kev.catalog.as_ref(),
            epss.as_ref().map(|e| &e.feed),
            policy,
        ))
    }

    /// The advisory index.
    pub fn index(&self) -> &AdvisoryIndex {
        &self.index
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

/// The fleet as matching sees it: every host, and each distinct inventory once.
#[derive(Debug, Default)]
pub struct FleetInventories {
    /// Every registered host.
    pub hosts: Vec<FleetHost>,
    /// The packages of every inventory some host has as its latest.
    pub inventories: HashMap<InventoryId, Arc<Vec<Installed>>>,
}

impl FleetInventories {
    /// Read every host and each distinct latest inventory from the store.
    pub async fn load(store: &dyn Store) -> Result<FleetInventories, StoreError> {
        let hosts = store.fleet_hosts().await?;
        let mut inventories = HashMap::new();
        for id in hosts.iter().filter_map(|h| h.inventory) {
            if let std::collections::hash_map::Entry::Vacant(slot) = inventories.entry(id) {
                slot.insert(Arc::new(store.inventory_packages(id).await?));
            }
        }
        Ok(FleetInventories { hosts, inventories })
    }
}

/// The findings of every host in `store`, versions ordered by `plugins`, classified by
/// `policy`.
pub async fn assess_fleet(
    store: &dyn Store,
    plugins: &PluginSet,
    policy: Policy,
    ubuntu_pro: bool,
) -> Result<FleetFindings, StoreError> {
    let fleet = FleetInventories::load(store).await?;
    let intelligence = Intelligence::load(store, policy).await?;
    let oracle = Arc::new(PluginOracle::new(plugins));
    Ok(assess(&fleet, &intelligence, oracle, AssessOptions { ubuntu_pro }).await)
}

/// Orders versions for matching, a batch at a time.
#[async_trait]
pub trait VersionOracle: Send + Sync {
    /// Compare each pair in `ecosystem`'s version syntax; one answer per pair, in order.
    /// `Err` when no one can order this ecosystem's versions or the comparison failed
    /// as a whole.
    async fn compare(
        &self,
        ecosystem: &Ecosystem,
        pairs: &[(String, String)],
    ) -> Result<Vec<Result<Ordering, String>>, String>;

    /// Which comparer serves `ecosystem` (plugin name), or `None`. Pairs of ecosystems
    /// served by the same comparer are batched together.
    fn comparer(&self, ecosystem: &Ecosystem) -> Option<String>;
}

/// The loaded plugins as a [`VersionOracle`]: an ecosystem is ordered by the first plugin
/// (in name order) whose manifest lists its name (`Debian`, `Ubuntu`, `Red Hat`, ...).
pub struct PluginOracle {
    plugins: Vec<Arc<dyn OsPlugin>>,
}

impl PluginOracle {
    /// Use these plugins.
    pub fn new(plugins: &PluginSet) -> Self {
        PluginOracle {
            plugins: plugins.iter().cloned().collect(),
        }
    }
}

/// The OSV ecosystem name without its release: `Ubuntu:22.04:LTS` → `Ubuntu`.
fn ecosystem_base(ecosystem: &Ecosystem) -> String {
    let name = ecosystem.to_string();
    name.split(':').next().unwrap_or_default().to_string()
}

#[async_trait]
impl VersionOracle for PluginOracle {
    async fn compare(
        &self,
        ecosystem: &Ecosystem,
        pairs: &[(String, String)],
    ) -> Result<Vec<Result<Ordering, String>>, String> {
        let name = self
            .comparer(ecosystem)
            .ok_or_else(|| format!("no plugin orders {ecosystem} versions"))?;
        let plugin = self
            .plugins
            .iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| format!("plugin {name} is not loaded"))?;
        plugin
            .compare_versions(pairs)
            .await
            .map_err(|e| format!("plugin {name}: {e}"))
    }

    fn comparer(&self, ecosystem: &Ecosystem) -> Option<String> {
        let base = ecosystem_base(ecosystem);
        self.plugins
            .iter()
            .find(|p| p.manifest().ecosystems.contains(&base))
            .map(|p| p.name().to_string())
    }
}

/// Hosts that share one inventory and the same advisory ecosystems, and what is wrong with
/// that inventory.
#[derive(Debug)]
pub struct Cohort {
    /// The hosts, sorted by id.
    pub hosts: Vec<HostRef>,
    /// The ecosystems whose advisories apply to them.
    pub ecosystems: Vec<Ecosystem>,
    /// Every vulnerable package of the inventory with what is wrong with it.
    pub vulnerable: Vec<(Installed, Arc<Vulnerability>)>,
}

/// A host no finding can be computed for, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unassessed {
    /// The host.
    pub host: HostId,
    /// Why.
    pub reason: String,
}

/// How much work an assessment did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AssessStats {
    /// Registered hosts.
    pub hosts: usize,
    /// Hosts assessed.
    pub assessed_hosts: usize,
    /// Distinct (inventory, ecosystems) groups.
    pub cohorts: usize,
    /// Distinct queries matched and classified.
    pub distinct_queries: usize,
    /// Distinct version pairs compared by plugins.
    pub version_pairs: usize,
    /// `compare-versions` calls made.
    pub compare_calls: usize,
    /// Distinct queries with a finding.
    pub vulnerable_queries: usize,
}

/// The fleet's findings, shared per cohort.
#[derive(Debug, Default)]
pub struct FleetFindings {
    /// Groups of hosts with their shared findings, sorted by first host id.
    pub cohorts: Vec<Cohort>,
    /// Hosts without findings because they could not be assessed.
    pub unassessed: Vec<Unassessed>,
    /// Ranges that could not be decided, once each, sorted.
    pub errors: Vec<MatchError>,
    /// Ecosystems whose versions nothing could order, with why; their packages are not
    /// assessed.
    pub unordered: BTreeMap<String, String>,
    /// Work done.
    pub stats: AssessStats,
}

impl FleetFindings {
    /// Every finding of every host, fanned out from the cohorts, with exclusions judged at
    /// `now`; sorted by host, then package.
    pub fn findings(&self, now: DateTime<Utc>) -> Vec<Finding> {
        let mut out: Vec<Finding> = self
            .cohorts
            .iter()
            .flat_map(|c| {
                c.hosts.iter().flat_map(move |h| {
                    c.vulnerable
                        .iter()
                        .map(move |(pkg, v)| Finding::new(h, pkg, v, now))
                })
            })
            .collect();
        out.sort_by(|a, b| {
            (a.host.as_str(), &a.package, &a.installed_version).cmp(&(
                b.host.as_str(),
                &b.package,
                &b.installed_version,
            ))
        });
        out
    }

    /// Findings of one host.
    pub fn for_host(&self, host: &HostId, now: DateTime<Utc>) -> Vec<Finding> {
        let mut out = Vec::new();
        for c in &self.cohorts {
            if let Some(h) = c.hosts.iter().find(|h| &h.id == host) {
                out.extend(c.vulnerable.iter().map(|(p, v)| Finding::new(h, p, v, now)));
            }
        }
        out.sort_by(|a, b| a.package.cmp(&b.package));
        out
    }

    /// Number of findings (hosts × vulnerable packages), without building them.
    pub fn count(&self) -> usize {
        self.cohorts
            .iter()
            .map(|c| c.hosts.len() * c.vulnerable.len())
            .sum()
    }
}

/// Scores CVSS v3.0, v3.1 and v4.0 vectors exactly (`patchwave-cvss`); v2 is refused.
pub fn cvss_scorer() -> impl CvssScorer {
    |severity: &Severity| -> Result<u8, String> {
        match severity.kind {
            SeverityKind::CvssV3 | SeverityKind::CvssV4 => patchwave_cvss::parse(&severity.score)
                .map(|v| v.base_score().tenths())
                .map_err(|e| e.to_string()),
            _ => Err(format!(
                "{:?} scores are not used (only CVSS v3.x and v4.0)",
                severity.kind
            )),
        }
    }
}

/// Options of an assessment.
#[derive(Clone, Copy, Debug, Default)]
pub struct AssessOptions {
    /// Ubuntu hosts are attached to Ubuntu Pro (ESM records apply).
    pub ubuntu_pro: bool,
}

/// Match and classify the whole fleet.
pub async fn assess(
    fleet: &FleetInventories,
    intelligence: &Intelligence,
    oracle: Arc<dyn VersionOracle>,
    options: AssessOptions,
) -> FleetFindings {
    let mut out = FleetFindings {
        stats: AssessStats {
            hosts: fleet.hosts.len(),
            ..AssessStats::default()
        },
        ..FleetFindings::default()
    };
    let groups = group_hosts(fleet, options, &mut out.unassessed);
    out.stats.assessed_hosts = groups.values().map(Vec::len).sum();
    out.stats.cohorts = groups.len();

    // Distinct queries across every cohort; each cohort keeps (package, query) references.
    // The dedup key borrows from the inventories, so a package seen again costs one hash
    // lookup and no allocation: the work that allocates grows with distinct queries.
    let index = &intelligence.index;
    let mut queries: Vec<PackageQuery> = Vec::new();
    let mut query_ids: FxHashMap<(usize, &str, Option<&str>, &str), usize> = FxHashMap::default();
    let mut ecosystem_sets: Vec<&Vec<Ecosystem>> = Vec::new();
    let mut cohort_packages: Vec<(&CohortKey, Vec<(usize, usize)>)> = Vec::new();
    for key in groups.keys() {
        let Some(packages) = fleet.inventories.get(&key.0) else {
            continue;
        };
        let set = match ecosystem_sets.iter().position(|s| **s == key.1) {
            Some(i) => i,
            None => {
                ecosystem_sets.push(&key.1);
                ecosystem_sets.len() - 1
            }
        };
        let mut refs = Vec::new();
        for (i, pkg) in packages.iter().enumerate() {
            let dedup = (
                set,
                pkg.name.as_str(),
                pkg.source.as_deref(),
                pkg.version.as_str(),
            );
            let id = *query_ids.entry(dedup).or_insert_with(|| {
                queries.push(index.query(&key.1, pkg));
                queries.len() - 1
            });
            refs.push((i, id));
        }
        cohort_packages.push((key, refs));
    }
    out.stats.distinct_queries = queries.len();

    let order = compare_all(index, &queries, oracle, &mut out).await;

    let scorer = cvss_scorer();
    let assessor = Assessor {
        index,
        policy: &intelligence.policy,
        intel: &intelligence.intel,
        scorer: &scorer,
    };
    let mut errors: Vec<MatchError> = Vec::new();
    let assessed: Vec<Option<Arc<Vulnerability>>> = queries
        .iter()
        .map(|q| {
            let a = assessor.assess(q, &order);
            errors.extend(a.errors);
            a.vulnerability
        })
        .collect();
    out.stats.vulnerable_queries = assessed.iter().flatten().count();
    errors.sort_by_cached_key(|e| e.to_string());
    errors.dedup_by(|a, b| a.to_string() == b.to_string());
    out.errors = errors;

    for (key, refs) in cohort_packages {
        let Some(packages) = fleet.inventories.get(&key.0) else {
            continue;
        };
        let vulnerable = refs
            .iter()
            .filter_map(|&(i, q)| {
                let v = assessed.get(q)?.as_ref()?;
                Some((packages.get(i)?.clone(), Arc::clone(v)))
            })
            .collect();
        let hosts = groups.get(key).cloned().unwrap_or_default();
        out.cohorts.push(Cohort {
            hosts,
            ecosystems: key.1.clone(),
            vulnerable,
        });
    }
    out.cohorts.sort_by(|a, b| {
        a.hosts
            .first()
            .map(|h| &h.id)
            .cmp(&b.hosts.first().map(|h| &h.id))
    });
    out
}

/// (inventory, ecosystems): hosts with the same key have the same findings.
type CohortKey = (InventoryId, Vec<Ecosystem>);

/// Group assessable hosts by cohort; record the others with the reason.
fn group_hosts(
    fleet: &FleetInventories,
    options: AssessOptions,
    unassessed: &mut Vec<Unassessed>,
) -> BTreeMap<CohortKey, Vec<HostRef>> {
    let mut groups: BTreeMap<CohortKey, Vec<HostRef>> = BTreeMap::new();
    for host in &fleet.hosts {
        let id = host.record.id.clone();
        let skip = |reason: String| Unassessed {
            host: id.clone(),
            reason,
        };
        let (Some(inventory), Some(facts)) = (host.inventory, host.facts.as_ref()) else {
            unassessed.push(skip("never scanned successfully: no inventory".into()));
            continue;
        };
        let ecosystems = ecosystems_for_host(&facts.id, &facts.version_id, options.ubuntu_pro);
        if ecosystems.is_empty() {
            unassessed.push(skip(format!(
                "no advisory ecosystem for {} {}",
                facts.id, facts.version_id
            )));
            continue;
        }
        if !fleet.inventories.contains_key(&inventory) {
            unassessed.push(skip(format!("inventory {} not loaded", inventory.0)));
            continue;
        }
        groups
            .entry((inventory, ecosystems))
            .or_default()
            .push(HostRef {
                id,
                scope: Some(host.record.scope.clone()),
            });
    }
    for hosts in groups.values_mut() {
        hosts.sort_by(|a, b| a.id.cmp(&b.id));
    }
    groups
}

/// Answer every version pair the queries need, batched per comparer.
///
/// Two rounds: first each installed version against its candidates' events (and events
/// within each range), then, with those answers, only the fixes above each installed
/// version against each other (see [`AdvisoryIndex::pairs_among_fixes`]).
async fn compare_all(
    index: &AdvisoryIndex,
    queries: &[PackageQuery],
    oracle: Arc<dyn VersionOracle>,
    out: &mut FleetFindings,
) -> PrecomputedOrder {
    let mut order = PrecomputedOrder::new();
    // Pairs among a package's advisory events do not depend on the installed version:
    // once per lookup set.
    let mut lookups_done: FxHashSet<&[patchwave_advisory::Lookup]> = FxHashSet::default();
    let first: Vec<Vec<VersionPair>> = queries
        .iter()
        .map(|q| {
            let mut pairs = index.pairs_for_version(q);
            if lookups_done.insert(q.lookups.as_slice()) {
                pairs.extend(index.pairs_within_ranges(q));
            }
            pairs
        })
        .collect();
    compare_round(queries, first, &oracle, out, &mut order).await;
    let second: Vec<Vec<VersionPair>> = queries
        .iter()
        .map(|q| index.pairs_among_fixes(q, &order))
        .collect();
    compare_round(queries, second, &oracle, out, &mut order).await;
    order
}

/// One round of comparisons: `pairs[i]` are the pairs query `i` needs; deduplicated and
/// batched per comparer.
async fn compare_round(
    queries: &[PackageQuery],
    pairs: Vec<Vec<VersionPair>>,
    oracle: &Arc<dyn VersionOracle>,
    out: &mut FleetFindings,
    order: &mut PrecomputedOrder,
) {
    // comparer name -> (an ecosystem it serves, the distinct pairs).
    let mut work: BTreeMap<String, (Ecosystem, FxHashSet<VersionPair>)> = BTreeMap::new();
    for (q, pairs) in queries.iter().zip(pairs) {
        if pairs.is_empty() {
            continue;
        }
        let Some(ecosystem) = q.lookups.first().map(|l| l.ecosystem.clone()) else {
            continue;
        };
        let Some(comparer) = oracle.comparer(&ecosystem) else {
            out.unordered
                .entry(ecosystem_base(&ecosystem))
                .or_insert_with(|| format!("no plugin orders {ecosystem} versions"));
            continue;
        };
        work.entry(comparer)
            .or_insert_with(|| (ecosystem, FxHashSet::default()))
            .1
            .extend(pairs);
    }
    // Batches run as separate tasks, so a multi-core runner compares on every core.
    let mut tasks = tokio::task::JoinSet::new();
    for (comparer, (ecosystem, pairs)) in work {
        let pairs: Vec<VersionPair> = pairs.into_iter().collect();
        out.stats.version_pairs += pairs.len();
        for chunk in pairs.chunks(COMPARE_BATCH) {
            let chunk = chunk.to_vec();
            let asked: Vec<(String, String)> =
                chunk.iter().map(|p| (p.a.clone(), p.b.clone())).collect();
            let (oracle, ecosystem, comparer) =
                (Arc::clone(oracle), ecosystem.clone(), comparer.clone());
            out.stats.compare_calls += 1;
            tasks.spawn(async move {
                let answers = oracle.compare(&ecosystem, &asked).await;
                (comparer, chunk, answers)
            });
        }
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((_, chunk, Ok(answers))) => {
                for (pair, answer) in chunk.into_iter().zip(answers) {
                    order.insert(pair, answer);
                }
            }
            // Left unanswered: evaluation reports each affected range as an error.
            Ok((comparer, _, Err(why))) => {
                out.unordered.insert(comparer, why);
            }
            Err(e) => {
                out.unordered.insert(
                    "compare-versions".into(),
                    format!("comparison task failed: {e}"),
                );
            }
        }
    }
}

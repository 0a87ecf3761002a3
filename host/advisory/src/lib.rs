//! Advisories: what is known to be vulnerable, how badly, and by when it must be fixed.
//!
//! Pure library: every parser takes the bytes the caller read, every clock is a parameter.
//!
//! - [`model`]: the advisory model ([`Advisory`], [`Affected`], ranges, severities), kept by
//!   the store as JSON.
//! - [`ecosystem`]: OSV ecosystem names (`Debian:12`, `Ubuntu:Pro:22.04:LTS`, …) and which of
//!   them apply to a host.
//! - [`osv`], [`kev`], [`epss`]: parsers. A malformed record is reported as [`Rejected`] and
//!   skipped; only a document that cannot be read at all is an error.
//! - [`feed`]: when a feed may replace what is stored (empty, shrunk, future-dated or older
//!   feeds are refused unless forced) and how far a feed with rejected records may prune.
//! - [`matching`]: an index by (ecosystem, package) and the two-phase evaluation of OSV
//!   ranges: [`AdvisoryIndex::pairs_needed`] lists the version comparisons, the caller has
//!   them answered in one batch, then [`AdvisoryIndex::evaluate`] uses the answers.
//! - [`mod@classify`], [`policy`], [`sla`]: class (critical/high/moderate/low), the rule that
//!   chose it, and the SLA clock.
//! - [`finding`]: one [`Assessment`] per distinct (ecosystems, package, version), fanned out
//!   to hosts as [`Finding`]s.

pub mod classify;
pub mod ecosystem;
pub mod epss;
pub mod feed;
pub mod finding;
pub mod kev;
pub mod matching;
pub mod model;
pub mod osv;
pub mod policy;
pub mod reject;
pub mod sla;
pub mod vendor;

mod cve;
mod timestamp;

pub use classify::{classify, CvssScorer, Evidence, Intel, PatchClass, Rule, ThreatIntel, Verdict};
pub use ecosystem::{ecosystems_for_host, Ecosystem, PackageNaming, UbuntuChannel, VersionFamily};
pub use epss::{parse_epss, EpssFeed, EpssRow};
pub use feed::{
    osv_refusals, prune_for, refusals, unknown_ecosystems, FeedKind, FeedStamp, OsvLocation, Prune,
    Refusal, UnknownEcosystem, MAX_CLOCK_SKEW, SHRINK_PERCENT,
};
pub use finding::{
    AdvisoryCves, Assessment, Assessor, ExclusionStatus, Finding, FindingStatus, FixedIn, HostRef,
    Vulnerability,
};
pub use kev::{kev_removed, parse_kev, KevCatalog, KevEntry, KevTombstone};
pub use matching::{
    AdvisoryIndex, Evaluation, Hit, Lookup, Match, MatchError, PackageQuery, PrecomputedOrder,
    RangeEnd, VersionOrder, VersionPair,
};
pub use model::{
    Advisory, Affected, Binary, CveSeverity, Event, Range, RangeKind, Severity, SeverityKind,
    Source,
};
pub use osv::{parse_osv, parse_osv_documents};
pub use policy::{
    CombineMode, Exclusion, ExclusionConfig, Policy, PolicyConfig, PolicyErrors, PolicyProblem,
    Selector, Target,
};
pub use reject::{DocumentError, Location, Position, RejectReason, Rejected};
pub use sla::{Cycle, Sla};
pub use vendor::{VendorScheme, VendorSeverity};

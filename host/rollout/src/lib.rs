//! Staged rollouts as a pure state machine: plan, windows, gates and `decide`.
//!
//! A rollout moves one pinned set of packages (a [`ReleaseManifest`]) through the fleet in
//! stages and stops and undoes it the moment it hurts: a canary on the non-prod hosts, a soak
//! and a smoke check, then prod waves at cumulative coverage (5 %, 25 %, 50 %, 100 % by
//! default), each ending in a go / no-go gate. A failed gate halts the rollout and rolls
//! back that stage's hosts (or every stage's, per [`Policy::rollback_scope`]).
//!
//! Everything here is pure: no IO, no clock (`now` is always a parameter). The engine
//! persists [`Rollout`], executes [`Action`]s and feeds their outcomes back as
//! [`Observation`]s to [`decide`].

mod action;
mod decide;
mod health;
pub mod judge;
mod manifest;
mod observation;
mod plan;
mod policy;
mod problems;
mod state;
mod summary;
mod window;

pub use action::{Action, Decision, Outcome, WaitReason};
pub use decide::decide;
pub use health::{combine, HealthCheck, Verdict};
pub use manifest::{
    ManifestError, ManifestErrors, PatchClass, PinnedPackage, ReleaseManifest, MANIFEST_ID_HEX_LEN,
};
pub use observation::Observation;
pub use patchwave_core::duration::{DurationError, HumanDuration, MAX_SECONDS};
pub use plan::{
    plan, wave_ends, AntiPattern, Force, ForceRecord, MissingCanary, Plan, PlanError, PlanErrors,
    PlannedHost, PlannedStage, StageId, Target,
};
pub use policy::{FailureBudget, Policy, PolicyError, PolicyErrors, RollbackScope, WindowSpec};
pub use problems::Problems;
pub use state::{
    Counters, Event, EventKind, HaltScope, HostPhase, HostState, HostStep, RollbackPhase, Rollout,
    StagePhase, StageState, Status, WaitingFor, HISTORY_LIMIT,
};
pub use summary::{HostProblem, StageSummary, Summary};
pub use window::Window;

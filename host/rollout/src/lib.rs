//! Staged rollouts as a pure state machine: plan, windows, gates and `decide`.

//! Unit placeholder

//! Integration tests of `patchwave-advisory`: real Ubuntu notices, hand-written Debian, KEV
//! and EPSS fixtures, matching with dpkg's real ordering, classification and findings.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod classification;
mod common;
mod debian;
mod findings;
mod kev_epss;
mod matching;
mod usn;

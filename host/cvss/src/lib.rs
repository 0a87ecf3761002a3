//! CVSS base scores (v3.0, v3.1, v4.0), computed exactly by the FIRST specifications.
//!
//! [`parse`] checks a vector string strictly against its version's specification and
//! [`Vector::base_score`] computes the base score:
//!
//! - v3.0 and v3.1 by the base equations, in exact decimal arithmetic, then the version's own
//!   Roundup (v3.0: the smallest one-decimal number not below the value; v3.1: Appendix A,
//!   rounding to 1/100000 first);
//! - v4.0 by MacroVector lookup and interpolation (section 8.2), in exact rational
//!   arithmetic, rounded half up. This is CVSS-B: Threat and Environmental metrics in the
//!   vector are validated but not applied.
//!
//! Scores are whole tenths ([`Score`]), printed with one decimal, and map to the qualitative
//! [`Severity`] scale.
//!
//! ```
//! let (score, severity) = patchwave_cvss::base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")?;
//! assert_eq!(format!("{score} {severity}"), "9.8 Critical");
//!
//! let vector: patchwave_cvss::Vector =
//!     "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N".parse()?;
//! assert_eq!(vector.version(), patchwave_cvss::Version::V4_0);
//! assert_eq!(vector.base_score().tenths(), 93);
//!
//! let refused = patchwave_cvss::parse("CVSS:3.1/AV:Q/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H").unwrap_err();
//! assert_eq!(
//!     refused.to_string(),
//!     r#"unknown value "Q" for metric AV in "CVSS:3.1/AV:Q/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H""#
//! );
//! # Ok::<(), patchwave_cvss::CvssError>(())
//! ```

mod decimal;
mod error;
mod grammar;
mod score;
mod v3;
mod v4;
mod v4_lookup;
mod vector;

pub use error::CvssError;
pub use score::{Score, Severity};
pub use vector::{parse, Vector, Version};

/// Parses `vector` and returns its base score with the score's severity rating.
pub fn base_score(vector: &str) -> Result<(Score, Severity), CvssError> {
    let score = parse(vector)?.base_score();
    Ok((score, score.severity()))
}

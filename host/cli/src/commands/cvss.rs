//! `patchwave cvss VECTOR`: score one vector.

use crate::exit::{Failure, USAGE};
use crate::term::outln;

/// Print `<score> <Severity>`; a malformed vector is a usage error naming what is wrong.
pub fn run(vector: &str) -> Result<(), Failure> {
    let (score, severity) =
        patchwave_cvss::base_score(vector).map_err(|e| Failure::new(USAGE, e))?;
    outln!("{score} {severity}")?;
    Ok(())
}

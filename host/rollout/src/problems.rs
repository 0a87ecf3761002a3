//! Several problems reported at once.

use std::fmt;

/// Every problem found in one input, so the operator can fix them all in one go instead of
/// one per attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problems<E>(Vec<E>);

impl<E> Problems<E> {
    /// Wraps the problems found; `None` when there are none.
    pub fn from_vec(problems: Vec<E>) -> Option<Problems<E>> {
        if problems.is_empty() {
            None
        } else {
            Some(Problems(problems))
        }
    }

    /// A single problem.
    pub fn one(problem: E) -> Problems<E> {
        Problems(vec![problem])
    }

    /// The same problems, each turned into another type (e.g. wrapped in a wider error).
    pub fn map<F>(self, f: impl FnMut(E) -> F) -> Problems<F> {
        Problems(self.0.into_iter().map(f).collect())
    }

    /// Adds more problems after these.
    pub(crate) fn extend(&mut self, more: impl IntoIterator<Item = E>) {
        self.0.extend(more);
    }

    /// The problems, in the order they were found.
    pub fn as_slice(&self) -> &[E] {
        &self.0
    }

    /// How many problems there are (at least one).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a `Problems` holds at least one problem.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problems as a vector.
    pub fn into_vec(self) -> Vec<E> {
        self.0
    }
}

impl<E: fmt::Display> fmt::Display for Problems<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "1 problem: {one}"),
            many => {
                write!(f, "{} problems:", many.len())?;
                for problem in many {
                    write!(f, "\n  - {problem}")?;
                }
                Ok(())
            }
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for Problems<E> {}

/// Returns `Ok(value)` when `problems` is empty, else every problem.
pub(crate) fn ok_or_problems<T, E>(value: T, problems: Vec<E>) -> Result<T, Problems<E>> {
    match Problems::from_vec(problems) {
        None => Ok(value),
        Some(problems) => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_problem_reads_as_one_line() {
        let problems = Problems::from_vec(vec!["waves are empty"]);
        assert_eq!(
            problems.map(|p| p.to_string()),
            Some("1 problem: waves are empty".to_string())
        );
    }

    #[test]
    fn several_problems_are_listed_one_per_line() {
        let problems = Problems::from_vec(vec!["a", "b"]).map(|p| p.to_string());
        assert_eq!(problems, Some("2 problems:\n  - a\n  - b".to_string()));
    }

    #[test]
    fn no_problems_is_ok() {
        assert_eq!(ok_or_problems::<u8, &str>(7, vec![]), Ok(7));
        assert_eq!(Problems::<&str>::from_vec(vec![]), None);
    }
}

//! The metric tables of a CVSS version and the check of a vector's components against them.

use crate::{CvssError, Version};

/// One metric a vector string may carry: its abbreviation and the values it allows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Metric {
    /// The abbreviation, e.g. `AV`.
    pub(crate) name: &'static str,
    /// The allowed values, in the order the specification's vector table lists them.
    pub(crate) values: &'static [&'static str],
}

/// The metric `name` with its allowed `values`.
pub(crate) const fn metric(name: &'static str, values: &'static [&'static str]) -> Metric {
    Metric { name, values }
}

/// The vector-string rules of one CVSS version: its `N` mandatory base metrics and its optional ones.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grammar<const N: usize> {
    /// The base metrics, all mandatory, in specification order.
    pub(crate) base: [Metric; N],
    /// The optional metrics (temporal or threat, environmental, supplemental) in specification order.
    pub(crate) optional: &'static [Metric],
    /// Whether metrics must appear in specification order (v4.0) or may come in any order (v3.x).
    pub(crate) fixed_order: bool,
}

/// Where a metric sits in a grammar: its index among all metrics, base first.
#[derive(Debug, Clone, Copy)]
struct Position {
    index: usize,
    metric: Metric,
}

impl<const N: usize> Grammar<N> {
    /// Checks the components after the prefix (`AV:N/AC:L/...`, `None` when the vector is only
    /// a prefix) and returns the base metrics' values.
    ///
    /// Each returned entry is the index of the value in its metric's `values`, in the order of
    /// `base`. Optional metrics are validated and then left out: this crate scores base metrics only.
    pub(crate) fn base_values(
        &self,
        version: Version,
        components: Option<&str>,
        vector: &str,
    ) -> Result<[u8; N], CvssError> {
        let mut base: [Option<u8>; N] = [None; N];
        let mut optional_seen = vec![false; self.optional.len()];
        let mut previous: Option<Position> = None;
        for component in components
            .into_iter()
            .flat_map(|components| components.split('/'))
        {
            let (name, value) = split_component(component, vector)?;
            let position = self
                .position(name)
                .ok_or_else(|| CvssError::UnknownMetric {
                    metric: name.to_owned(),
                    version,
                    vector: vector.to_owned(),
                })?;
            let value_index = value_index(&position.metric, value, vector)?;
            let slot_taken = match position.index.checked_sub(N) {
                None => base
                    .get_mut(position.index)
                    .is_some_and(|slot| slot.replace(value_index).is_some()),
                Some(optional_index) => optional_seen
                    .get_mut(optional_index)
                    .is_some_and(|seen| std::mem::replace(seen, true)),
            };
            if slot_taken {
                return Err(CvssError::DuplicateMetric {
                    metric: position.metric.name,
                    vector: vector.to_owned(),
                });
            }
            self.check_order(previous, position, vector)?;
            previous = Some(position);
        }
        self.require_all(base, vector)
    }

    /// Finds a metric by its abbreviation, case-sensitively as the specifications require.
    fn position(&self, name: &str) -> Option<Position> {
        self.base
            .iter()
            .chain(self.optional)
            .enumerate()
            .find(|(_, metric)| metric.name == name)
            .map(|(index, metric)| Position {
                index,
                metric: *metric,
            })
    }

    /// Refuses a metric that comes after one the specification places after it, when the order is fixed.
    fn check_order(
        &self,
        previous: Option<Position>,
        current: Position,
        vector: &str,
    ) -> Result<(), CvssError> {
        match previous {
            Some(previous) if self.fixed_order && previous.index > current.index => {
                Err(CvssError::OutOfOrder {
                    metric: current.metric.name,
                    previous: previous.metric.name,
                    vector: vector.to_owned(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Turns the collected base values into an array, naming the first missing metric if any.
    fn require_all(&self, base: [Option<u8>; N], vector: &str) -> Result<[u8; N], CvssError> {
        let mut values = [0; N];
        for ((value, found), metric) in values.iter_mut().zip(base).zip(&self.base) {
            *value = found.ok_or_else(|| CvssError::MissingMetric {
                metric: metric.name,
                vector: vector.to_owned(),
            })?;
        }
        Ok(values)
    }
}

/// Splits `METRIC:VALUE`, refusing empty components and ones without exactly that shape.
fn split_component<'a>(component: &'a str, vector: &str) -> Result<(&'a str, &'a str), CvssError> {
    if component.is_empty() {
        return Err(CvssError::EmptyComponent {
            vector: vector.to_owned(),
        });
    }
    match component.split_once(':') {
        Some((name, value)) if !name.is_empty() && !value.is_empty() => Ok((name, value)),
        _ => Err(CvssError::MalformedComponent {
            component: component.to_owned(),
            vector: vector.to_owned(),
        }),
    }
}

/// The index of `value` among the metric's allowed values.
fn value_index(metric: &Metric, value: &str, vector: &str) -> Result<u8, CvssError> {
    metric
        .values
        .iter()
        .position(|allowed| *allowed == value)
        .and_then(|index| u8::try_from(index).ok())
        .ok_or_else(|| CvssError::UnknownValue {
            metric: metric.name,
            value: value.to_owned(),
            vector: vector.to_owned(),
        })
}

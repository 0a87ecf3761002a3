//! Why a vector string was refused.

use crate::Version;

/// A CVSS vector string that does not follow its specification.
///
/// Every variant names the offending part of the vector and carries the whole vector string,
/// so that the message alone says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CvssError {
    /// The input was the empty string.
    #[error("empty CVSS vector")]
    Empty,

    /// The vector does not start with a `CVSS:<version>` label.
    #[error("missing \"CVSS:<version>/\" prefix in \"{vector}\"")]
    MissingPrefix {
        /// The whole vector string.
        vector: String,
    },

    /// The vector names a CVSS version this crate does not score.
    #[error(
        "unsupported CVSS version \"{prefix}\" in \"{vector}\" \
         (supported: CVSS:3.0, CVSS:3.1, CVSS:4.0)"
    )]
    UnsupportedVersion {
        /// The label before the first `/`, e.g. `CVSS:2.0`.
        prefix: String,
        /// The whole vector string.
        vector: String,
    },

    /// Two consecutive slashes, or a trailing slash.
    #[error("empty component (\"//\" or a trailing \"/\") in \"{vector}\"")]
    EmptyComponent {
        /// The whole vector string.
        vector: String,
    },

    /// A component that is not of the form `METRIC:VALUE`.
    #[error("malformed component \"{component}\" in \"{vector}\": expected METRIC:VALUE")]
    MalformedComponent {
        /// The component as written.
        component: String,
        /// The whole vector string.
        vector: String,
    },

    /// A metric abbreviation that the version's specification does not define.
    #[error("unknown metric \"{metric}\" for CVSS v{version} in \"{vector}\"")]
    UnknownMetric {
        /// The metric abbreviation as written.
        metric: String,
        /// The version named by the vector's prefix.
        version: Version,
        /// The whole vector string.
        vector: String,
    },

    /// A value that the specification does not allow for this metric.
    #[error("unknown value \"{value}\" for metric {metric} in \"{vector}\"")]
    UnknownValue {
        /// The metric abbreviation.
        metric: &'static str,
        /// The value as written.
        value: String,
        /// The whole vector string.
        vector: String,
    },

    /// A metric given more than once.
    #[error("metric {metric} given twice in \"{vector}\"")]
    DuplicateMetric {
        /// The metric abbreviation.
        metric: &'static str,
        /// The whole vector string.
        vector: String,
    },

    /// A mandatory (base) metric is absent.
    #[error("missing mandatory metric {metric} in \"{vector}\"")]
    MissingMetric {
        /// The abbreviation of the first missing metric, in specification order.
        metric: &'static str,
        /// The whole vector string.
        vector: String,
    },

    /// A CVSS v4.0 metric out of the order that specification fixes (its Table 23).
    #[error(
        "metric {metric} must come before {previous} in \"{vector}\" \
         (CVSS v4.0 fixes the order of metrics)"
    )]
    OutOfOrder {
        /// The metric that came too late.
        metric: &'static str,
        /// The metric it followed, which the specification places after it.
        previous: &'static str,
        /// The whole vector string.
        vector: String,
    },
}

//! The `prometheus` source: runs its instant query through the Prometheus HTTP API
//! (`/api/v1/query`). Reading the answer and judging the value against its baseline are the
//! pure `patchwave_rollout::judge::{prometheus_answer_value, compare}`.

use patchwave_rollout::judge::prometheus_answer_value;
use url::Url;

use super::API_BODY_LIMIT;
use crate::http::HttpClient;

/// The value of `query` now, or why there is none.
pub(super) async fn prometheus_value(
    client: &HttpClient,
    base: &Url,
    query: &str,
) -> Result<f64, String> {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(["api", "v1", "query"]);
    }
    url.query_pairs_mut().clear().append_pair("query", query);
    let answer = client
        .get(&url, Some(API_BODY_LIMIT))
        .await
        .map_err(|e| format!("Prometheus API: {e}"))?;
    prometheus_answer_value(answer.status, &answer.body)
}

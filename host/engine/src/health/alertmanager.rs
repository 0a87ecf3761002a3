//! The `alertmanager` source: asks the Alertmanager API v2 (`/api/v2/alerts`) for the
//! active alerts matching its matchers. Reading the answer and finding the new alerts are
//! the pure `patchwave_rollout::judge::{alertmanager_answer_alerts, new_alerts}`.

use patchwave_rollout::judge::{alertmanager_answer_alerts, Alert};
use url::Url;

use super::template::Matcher;
use super::API_BODY_LIMIT;
use crate::http::HttpClient;

/// The alerts active now (not silenced or inhibited) that match all of `matchers`.
pub(super) async fn active_alerts(
    client: &HttpClient,
    base: &Url,
    matchers: &[Matcher],
) -> Result<Vec<Alert>, String> {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(["api", "v2", "alerts"]);
    }
    {
        let mut query = url.query_pairs_mut();
        query
            .clear()
            .append_pair("active", "true")
            .append_pair("unprocessed", "true")
            .append_pair("silenced", "false")
            .append_pair("inhibited", "false");
        for m in matchers {
            query.append_pair("filter", &m.to_filter());
        }
    }
    let answer = client
        .get(&url, Some(API_BODY_LIMIT))
        .await
        .map_err(|e| format!("Alertmanager API: {e}"))?;
    alertmanager_answer_alerts(answer.status, &answer.body)
}

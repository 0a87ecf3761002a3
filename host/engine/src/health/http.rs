//! The `http` source: asks its endpoint once for the service, or once per patched host
//! (at most [`PER_HOST_CONCURRENCY`] at a time), and hands each answer to the pure
//! judgements of `patchwave_rollout::judge`.

use std::sync::Arc;

use patchwave_core::HostId;
use patchwave_rollout::judge::{
    judge_hosts, judge_service, Expectation, HostOutcome, SourceResult,
};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use url::Url;

use super::template::UrlTemplate;
use crate::http::HttpClient;

/// How many hosts of a per-host `http` source are asked at the same time.
const PER_HOST_CONCURRENCY: usize = 16;
/// The most an `http` source reads of a body it must search.
const HTTP_BODY_LIMIT: usize = 1 << 20;

/// How much of a body to read: only one that must hold `expect.body` is read at all.
fn body_limit(expect: &Expectation) -> Option<usize> {
    expect.body.as_ref().map(|_| HTTP_BODY_LIMIT)
}

pub(super) async fn check_http_service(
    label: &str,
    client: &HttpClient,
    template: &UrlTemplate,
    expect: &Expectation,
) -> SourceResult {
    let url = template.render("", "");
    let problem = match Url::parse(&url) {
        Err(e) => Some(format!("`{url}` is not a valid URL: {e}")),
        Ok(url) => match client.get(&url, body_limit(expect)).await {
            Ok(answer) => expect.problem(answer.status, &answer.body),
            Err(e) => Some(e.to_string()),
        },
    };
    judge_service(label, expect.status, problem)
}

pub(super) async fn check_http_hosts(
    label: &str,
    client: &HttpClient,
    template: &UrlTemplate,
    expect: &Expectation,
    hosts: &[(HostId, String)],
) -> SourceResult {
    let permits = Arc::new(Semaphore::new(PER_HOST_CONCURRENCY));
    let mut tasks = JoinSet::new();
    for (i, (host, address)) in hosts.iter().enumerate() {
        let url = template.render(host.as_str(), address);
        let (client, expect, permits) = (client.clone(), expect.clone(), Arc::clone(&permits));
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (i, check_one_host(&client, &url, &expect).await)
        });
    }
    let mut outcomes: Vec<Option<HostOutcome>> = (0..hosts.len()).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((i, outcome)) = joined {
            outcomes[i] = Some(outcome);
        }
    }
    let outcomes: Vec<(&HostId, Option<HostOutcome>)> =
        hosts.iter().map(|(host, _)| host).zip(outcomes).collect();
    judge_hosts(label, expect.status, &outcomes)
}

async fn check_one_host(client: &HttpClient, url: &str, expect: &Expectation) -> HostOutcome {
    let url = match Url::parse(url) {
        Ok(u) => u,
        Err(e) => return HostOutcome::Unchecked(format!("`{url}` is not a valid URL: {e}")),
    };
    match client.get(&url, body_limit(expect)).await {
        Ok(answer) => match expect.problem(answer.status, &answer.body) {
            None => HostOutcome::Healthy,
            Some(p) => HostOutcome::Unhealthy(p),
        },
        Err(e) => HostOutcome::Unhealthy(e.to_string()),
    }
}

//! The threat-intelligence feeds on the plugin's timer: each worker loads a feed when
//! another version was stored (parsing it into its own structure), drops it when stale, and
//! fetches it when due (one worker per refresh, `crate::polled`'s rules); a failed fetch keeps
//! the last good list.

use super::list_poll::{Fetched, PollState, Refresh};
use super::metrics::Metrics;
use crate::host::{Host, LogLevel};
use crate::intel::config::{Feed, ThreatIntelConfig};
use crate::intel::{FeedList, parse_feed};
use crate::pipeline::Worker;
use crate::polled::PollError;
use crate::telemetry::metric;

fn parse(feed: &Feed, body: &[u8]) -> Result<FeedList, String> {
    parse_feed(feed.kind, feed.format, body, feed.max_entries).map_err(|e| e.to_string())
}

pub fn on_tick(
    host: &dyn Host,
    config: &ThreatIntelConfig,
    worker: &mut Worker,
    polls: &mut PollState,
    metrics: &Metrics,
    now: u64,
) {
    for (index, feed) in config.feeds.iter().enumerate() {
        let source = &feed.source;
        match polls.refresh(host, index, source, now) {
            Refresh::Load(body) => match parse(feed, &body) {
                Ok(list) => {
                    host.log(
                        LogLevel::Info,
                        &format!(
                            "obguard: loaded threat-intelligence feed {} ({} entries)",
                            feed.name,
                            list.len()
                        ),
                    );
                    metrics.gauge(&metric::intel_entries(&feed.name), list.len());
                    if let Some(slot) = worker.intel.get_mut(index) {
                        *slot = Some(list);
                    }
                }
                Err(why) => host.log(
                    LogLevel::Warn,
                    &format!("obguard: stored feed {} unusable: {why}", feed.name),
                ),
            },
            Refresh::BecameStale => {
                if let Some(slot) = worker.intel.get_mut(index) {
                    *slot = None;
                }
                metrics.gauge(&metric::intel_entries(&feed.name), 0);
                metrics.count(&metric::intel_feed(&feed.name, "stale"), 1);
                host.log(
                    LogLevel::Warn,
                    &format!(
                        "obguard: feed {} is older than max_stale_s ({} s); no longer applied",
                        feed.name, source.max_stale_s
                    ),
                );
            }
            Refresh::Unchanged => {}
        }
        if let Err(err) = polls.start_if_due(host, index, source, now) {
            fetch_failed(host, metrics, feed, err, None);
        }
    }
}

/// A feed fetch answered (or failed).
pub fn on_response(
    host: &dyn Host,
    config: &ThreatIntelConfig,
    polls: &mut PollState,
    metrics: &Metrics,
    token: u32,
    body_size: usize,
    now: u64,
) {
    let Some(feed) = polls.owns(token).and_then(|i| config.feeds.get(i)) else {
        return;
    };
    let validate = |body: &[u8]| parse(feed, body).map(|list| list.len());
    match polls.on_response(host, token, &feed.source, body_size, now, &validate) {
        Ok(Fetched::Stored { .. }) => metrics.count(&metric::intel_feed(&feed.name, "loaded"), 1),
        Ok(Fetched::NotModified) => {
            metrics.count(&metric::intel_feed(&feed.name, "not_modified"), 1);
        }
        Err((err, why)) => fetch_failed(host, metrics, feed, err, why),
    }
}

/// A failed fetch of a feed: counted by reason, one warn line.
fn fetch_failed(
    host: &dyn Host,
    metrics: &Metrics,
    feed: &Feed,
    err: PollError,
    why: Option<String>,
) {
    metrics.count(&metric::intel_fetch_failed(&feed.name, err.reason()), 1);
    host.log(
        LogLevel::Warn,
        &format!(
            "obguard: feed {} fetch from cluster {} failed ({}{}); keeping the last good list",
            feed.name,
            feed.source.cluster,
            err.reason(),
            why.map(|w| format!(": {w}")).unwrap_or_default()
        ),
    );
}

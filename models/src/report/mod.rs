//! One client's incident timeline (host only): read traffic records, the demo's Envoy access
//! log and obguard security events (CloudEvents), keep one client's requests, and render them
//! as one self-contained HTML page ([`html::render`], plots in [`svg`]).
//!
//! Reading and aggregating are pure ([`Collector`] is fed text and returns a [`Timeline`]), so
//! the page is a function of the input lines and a generation time, nothing else.
//!
//! The three shapes often describe the same requests (the demo writes the access log and the
//! traffic records from the same Envoy, and sends an event for each alert), so lines from
//! different shapes that describe one request are merged into one [`Entry`] rather than
//! counted twice ([`Collector::finish`] says how).

pub mod html;
pub mod svg;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Verdict;

/// How far apart (ms) an event's `at` and the access-log or record line of the same request
/// may be: the filter stamps the event when it decides, a little after Envoy's start time
/// (longer when the request waited for the rate-limit or consent service).
const EVENT_SKEW_MS: i64 = 2_000;

/// Distinct client ids remembered for the "no line matches" message: ids are minted by
/// attackers, so the tally must not grow with them.
const MAX_TRACKED_IDS: usize = 100_000;

/// Which of the three input shapes a line was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// docs/records.md (`ts`).
    Record,
    /// The demo's first Envoy access logger (`start_time`).
    AccessLog,
    /// An obguard security event (CloudEvents 1.0).
    Event,
}

/// The plot's and the counts' classes of a request: its verdict, or why it has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    Allow,
    StepUp,
    Throttle,
    Block,
    /// Refused by obguard before (or without) a model verdict: token, scope, consent, FAPI,
    /// rate limit.
    Refused,
    /// Neither scored nor refused (no model, an anonymous route, or a line without decision
    /// fields, as traffic records usually are).
    Unscored,
}

impl Category {
    /// Stacking and legend order.
    pub const ALL: [Category; 6] = [
        Category::Allow,
        Category::StepUp,
        Category::Throttle,
        Category::Block,
        Category::Refused,
        Category::Unscored,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Category::Allow => "allow",
            Category::StepUp => "step_up",
            Category::Throttle => "throttle",
            Category::Block => "block",
            Category::Refused => "refused without verdict",
            Category::Unscored => "unscored",
        }
    }

    /// CSS class suffix and colour: one per category, the same in plots, legend and table.
    pub fn css(self) -> &'static str {
        match self {
            Category::Allow => "allow",
            Category::StepUp => "step_up",
            Category::Throttle => "throttle",
            Category::Block => "block",
            Category::Refused => "refused",
            Category::Unscored => "unscored",
        }
    }

    pub fn colour(self) -> &'static str {
        match self {
            Category::Allow => "#43a047",
            Category::StepUp => "#fbc02d",
            Category::Throttle => "#fb8c00",
            Category::Block => "#d32f2f",
            Category::Refused => "#7b1fa2",
            Category::Unscored => "#9e9e9e",
        }
    }

    fn index(self) -> usize {
        match self {
            Category::Allow => 0,
            Category::StepUp => 1,
            Category::Throttle => 2,
            Category::Block => 3,
            Category::Refused => 4,
            Category::Unscored => 5,
        }
    }
}

/// Outcomes under which obguard let the request through; every other outcome is a refusal
/// (including ones added after this was written, which are refusals so far).
const NOT_REFUSED: [&str; 4] = ["allowed", "anonymous", "passthrough", "model_unavailable"];

/// One reason of a verdict or rule hit.
#[derive(Debug, Clone, PartialEq)]
pub struct ReasonText {
    pub text: String,
    /// Events name the feature; log lines only have the text.
    pub feature: Option<String>,
    pub strength: Option<f64>,
}

impl ReasonText {
    /// A first sighting of something for this client: a country, network, ASN, user agent or
    /// product (`new_country(RU)`, `new_network_prefix`, feature `new_product`, …).
    pub fn is_novelty(&self) -> bool {
        self.text.starts_with("new_")
            || self
                .feature
                .as_deref()
                .is_some_and(|f| f.starts_with("new_"))
    }

    /// The reason without its value: `new_country` of `new_country(RU)`, so that counts do
    /// not scatter over values (`hour_rare(03:10, …)`, `hour_rare(03:12, …)`).
    pub fn name(&self) -> &str {
        self.text.split('(').next().unwrap_or_default().trim()
    }
}

/// An `intel` match of an event.
#[derive(Debug, Clone, PartialEq)]
pub struct IntelMatch {
    pub feed: Option<String>,
    pub action: Option<String>,
    pub matched: Option<String>,
}

/// One of the client's earlier requests as the worker that emitted the event saw them.
#[derive(Debug, Clone, PartialEq)]
pub struct Recent {
    pub at: Option<String>,
    pub method: Option<String>,
    pub route: Option<String>,
    pub outcome: Option<String>,
    pub verdict: Option<String>,
    pub score: Option<f64>,
}

/// What an event adds to its request: the alert itself.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDetail {
    pub id: Option<String>,
    pub source: Option<String>,
    /// CloudEvents `type`, e.g. `io.obguard.security.verdict`.
    pub kind: Option<String>,
    pub risk_band: Option<String>,
    pub model_digest: Option<String>,
    pub subject: Option<String>,
    pub intel: Vec<IntelMatch>,
    pub recent: Vec<Recent>,
}

impl EventDetail {
    /// `verdict` of `io.obguard.security.verdict`.
    pub fn short_kind(&self) -> &str {
        match self.kind.as_deref() {
            Some(k) => k.rsplit('.').next().unwrap_or(k),
            None => "event",
        }
    }
}

/// A containment action (quarantine, revocation) an event reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Containment {
    pub ts_ms: i64,
    pub action: String,
    pub playbook: Option<String>,
    /// As written (RFC 3339).
    pub until: Option<String>,
    pub event_id: Option<String>,
}

/// One request of the timeline, from one line or several lines describing it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Entry {
    pub ts_ms: i64,
    pub client_id: String,
    pub method: Option<String>,
    pub path: Option<String>,
    pub route: Option<String>,
    pub status: Option<u16>,
    pub outcome: Option<String>,
    pub reason: Option<String>,
    pub verdict: Option<Verdict>,
    pub score: Option<f64>,
    pub reasons: Vec<ReasonText>,
    pub interaction_id: Option<String>,
    pub ip: Option<String>,
    pub country: Option<String>,
    pub asn: Option<String>,
    pub user_agent: Option<String>,
    pub duration_ms: Option<String>,
    /// The alerts about this request (a verdict event, and a containment event for the same
    /// request, say).
    pub events: Vec<EventDetail>,
    pub from_record: bool,
    pub from_access_log: bool,
}

impl Entry {
    pub fn is_event(&self) -> bool {
        !self.events.is_empty()
    }

    /// obguard refused it (its outcome says so); lines without an outcome are not refusals.
    pub fn is_refused(&self) -> bool {
        self.outcome
            .as_deref()
            .is_some_and(|o| !NOT_REFUSED.contains(&o))
    }

    pub fn category(&self) -> Category {
        match self.verdict {
            Some(Verdict::Allow) => Category::Allow,
            Some(Verdict::StepUp) => Category::StepUp,
            Some(Verdict::Throttle) => Category::Throttle,
            Some(Verdict::Block) => Category::Block,
            None if self.is_refused() => Category::Refused,
            None => Category::Unscored,
        }
    }

    pub fn has_novelty(&self) -> bool {
        self.reasons.iter().any(ReasonText::is_novelty)
    }

    /// A verdict other than allow on a request obguard let through: shadow mode.
    pub fn is_shadowed(&self) -> bool {
        self.verdict.is_some_and(|v| v != Verdict::Allow)
            && self.outcome.as_deref() == Some("allowed")
    }

    /// Fill what `self` lacks from `other` (the same request told by another line): the
    /// first line to say a thing wins, reasons are taken whole from one line.
    fn absorb(&mut self, other: Entry) {
        fn fill<T>(a: &mut Option<T>, b: Option<T>) {
            if a.is_none() {
                *a = b;
            }
        }
        fill(&mut self.method, other.method);
        fill(&mut self.path, other.path);
        fill(&mut self.route, other.route);
        fill(&mut self.status, other.status);
        fill(&mut self.outcome, other.outcome);
        fill(&mut self.reason, other.reason);
        fill(&mut self.verdict, other.verdict);
        fill(&mut self.score, other.score);
        fill(&mut self.interaction_id, other.interaction_id);
        fill(&mut self.ip, other.ip);
        fill(&mut self.country, other.country);
        fill(&mut self.asn, other.asn);
        fill(&mut self.user_agent, other.user_agent);
        fill(&mut self.duration_ms, other.duration_ms);
        // An event's reasons carry features and strengths: prefer them to the log's text.
        let other_richer = other.reasons.iter().any(|r| r.feature.is_some())
            && !self.reasons.iter().any(|r| r.feature.is_some());
        if self.reasons.is_empty() || other_richer {
            self.reasons = other.reasons;
        }
        self.events.extend(other.events);
        self.from_record |= other.from_record;
        self.from_access_log |= other.from_access_log;
    }
}

/// Which lines to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Matches a line's client id exactly, or its bare form before the last `@`.
    pub client: String,
    /// Inclusive, Unix ms.
    pub from_ms: Option<i64>,
    /// Inclusive, Unix ms.
    pub to_ms: Option<i64>,
}

impl Filter {
    pub fn matches_client(&self, id: &str) -> bool {
        id == self.client
            || id
                .rsplit_once('@')
                .is_some_and(|(bare, _)| bare == self.client)
    }

    fn in_window(&self, ts_ms: i64) -> bool {
        self.from_ms.is_none_or(|f| ts_ms >= f) && self.to_ms.is_none_or(|t| ts_ms <= t)
    }
}

/// What reading saw, for stderr and the page's header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadStats {
    /// Input files, names only.
    pub files: Vec<String>,
    /// Non-blank lines.
    pub lines: usize,
    /// Lines that are not a JSON object or array (Envoy's text log lines, say).
    pub not_json: usize,
    /// Requests or events without a usable time or client id.
    pub incomplete: usize,
    /// Requests of other clients.
    pub other_clients: usize,
    /// The client's requests outside `--from`/`--to`.
    pub outside_window: usize,
    /// Events delivered again (same `source` and `id`: a webhook retry).
    pub duplicate_events: usize,
    /// Lines folded into another line's request (the same request from another shape).
    pub merged: usize,
}

impl ReadStats {
    /// What was read but left out of the timeline, and why: one sentence for the command's
    /// summary and the page's header.
    pub fn passed_over(&self) -> String {
        format!(
            "{} line(s) not JSON, {} without a time or client id, {} of other clients, {} \
             outside the time window, {} repeated event deliveries, {} line(s) merged into the \
             same request told by another file",
            self.not_json,
            self.incomplete,
            self.other_clients,
            self.outside_window,
            self.duplicate_events,
            self.merged
        )
    }
}

/// One client's timeline: the pure result of reading, which [`html::render`] draws.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// As asked (`--client`).
    pub client: String,
    /// The exact client ids that matched, sorted.
    pub client_ids: Vec<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Oldest first (ties in input order).
    pub entries: Vec<Entry>,
    /// Oldest first.
    pub containments: Vec<Containment>,
    pub stats: ReadStats,
}

/// Nothing of the client was found: what was read instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoMatch {
    pub client: String,
    pub lines: usize,
    pub files: usize,
    /// Only when the client had lines, all outside `--from`/`--to`.
    pub outside_window: usize,
    /// The most frequent client ids seen (at most 10) with their line counts.
    pub seen: Vec<(String, usize)>,
    pub distinct_seen: usize,
}

impl std::fmt::Display for NoMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.outside_window > 0 {
            return write!(
                f,
                "all {} lines of client {:?} are outside --from/--to ({} lines read from {} file(s))",
                self.outside_window, self.client, self.lines, self.files
            );
        }
        write!(
            f,
            "no line matches client {:?} ({} lines read from {} file(s)); ",
            self.client, self.lines, self.files
        )?;
        if self.seen.is_empty() {
            return f.write_str("no client ids seen at all");
        }
        let ids: Vec<String> = self
            .seen
            .iter()
            .map(|(id, n)| format!("{id} ({n})"))
            .collect();
        write!(f, "client ids seen: {}", ids.join(", "))?;
        if self.distinct_seen > self.seen.len() {
            write!(f, " and {} more", self.distinct_seen - self.seen.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for NoMatch {}

/// One request or event as read from a line, before merging.
#[derive(Debug, Clone)]
struct Sighting {
    shape: Shape,
    entry: Entry,
    containment: Option<Containment>,
    /// Whether the event names a request (method, path, route or interaction id); a bare
    /// containment event only adds its marker.
    is_request: bool,
    /// `(source, id)` of an event, for dropping redeliveries.
    event_key: Option<(String, String)>,
}

/// What a line holds: nothing (blank), not JSON, or items (an event batch holds several),
/// each a sighting or `None` when it lacks a time or a client id.
#[derive(Debug)]
enum LineItems {
    Blank,
    NotJson,
    Items(Vec<Option<Sighting>>),
}

/// Reads lines and keeps one client's sightings; [`Collector::finish`] merges them into a
/// [`Timeline`].
#[derive(Debug)]
pub struct Collector {
    filter: Filter,
    stats: ReadStats,
    seen: HashMap<String, usize>,
    untracked_ids: bool,
    sightings: Vec<Sighting>,
}

impl Collector {
    pub fn new(filter: Filter) -> Self {
        Collector {
            filter,
            stats: ReadStats::default(),
            seen: HashMap::new(),
            untracked_ids: false,
            sightings: Vec::new(),
        }
    }

    /// Starts a new input file (its name is listed on the page).
    pub fn file(&mut self, name: &str) {
        self.stats.files.push(name.to_owned());
    }

    /// Feeds every line of `reader`. Bytes that are not UTF-8 are replaced, not fatal: a log
    /// line is attacker-shaped input and must not stop the report.
    pub fn read(&mut self, mut reader: impl BufRead) -> std::io::Result<()> {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf)? == 0 {
                return Ok(());
            }
            self.line(&String::from_utf8_lossy(&buf));
        }
    }

    /// Feeds one line.
    pub fn line(&mut self, text: &str) {
        let items = match parse_line(text) {
            LineItems::Blank => return,
            LineItems::NotJson => {
                self.stats.lines += 1;
                self.stats.not_json += 1;
                return;
            }
            LineItems::Items(items) => items,
        };
        self.stats.lines += 1;
        for item in items {
            let Some(s) = item else {
                self.stats.incomplete += 1;
                continue;
            };
            self.tally(&s.entry.client_id);
            if !self.filter.matches_client(&s.entry.client_id) {
                self.stats.other_clients += 1;
            } else if !self.filter.in_window(s.entry.ts_ms) {
                self.stats.outside_window += 1;
            } else {
                self.sightings.push(s);
            }
        }
    }

    fn tally(&mut self, id: &str) {
        if let Some(n) = self.seen.get_mut(id) {
            *n += 1;
        } else if self.seen.len() < MAX_TRACKED_IDS {
            self.seen.insert(id.to_owned(), 1);
        } else {
            self.untracked_ids = true;
        }
    }

    /// Merges the client's sightings into requests, oldest first, or says what was seen
    /// instead when none is the client's.
    ///
    /// Merging pairs lines one to one, so a request is never counted less often than the
    /// shape that saw it most often: an event joins the access-log line (or an earlier event
    /// of another type) with the same client, method and path, the same interaction id and
    /// status where both have one, at most 2 s apart, the nearest first; a
    /// traffic record joins the access-log line with the same client, method, path and
    /// status at the same millisecond (both are Envoy's start time), or else such an event.
    /// Events with the same `source` and `id` are one event delivered twice (CloudEvents).
    pub fn finish(self) -> Result<Timeline, NoMatch> {
        let Collector {
            filter,
            mut stats,
            seen,
            untracked_ids,
            sightings,
        } = self;
        if sightings.is_empty() {
            let distinct_seen = seen.len();
            let mut seen: Vec<(String, usize)> = seen.into_iter().collect();
            seen.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            seen.truncate(10);
            return Err(NoMatch {
                client: filter.client,
                lines: stats.lines,
                files: stats.files.len(),
                outside_window: stats.outside_window,
                seen,
                distinct_seen: distinct_seen + usize::from(untracked_ids),
            });
        }
        let mut client_ids: Vec<String> = sightings
            .iter()
            .map(|s| s.entry.client_id.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        client_ids.sort();

        let (entries, containments) = merge(sightings, &mut stats);
        Ok(Timeline {
            client: filter.client,
            client_ids,
            from_ms: filter.from_ms,
            to_ms: filter.to_ms,
            entries,
            containments,
            stats,
        })
    }
}

type MergeKey = (String, Option<String>, Option<String>);

fn merge_key(e: &Entry) -> MergeKey {
    (e.client_id.clone(), e.method.clone(), e.path.clone())
}

/// Both known and different.
fn differ<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a != b)
}

/// See [`Collector::finish`].
fn merge(sightings: Vec<Sighting>, stats: &mut ReadStats) -> (Vec<Entry>, Vec<Containment>) {
    let mut logs = Vec::new();
    let mut events = Vec::new();
    let mut records = Vec::new();
    for s in sightings {
        match s.shape {
            Shape::AccessLog => logs.push(s),
            Shape::Event => events.push(s),
            Shape::Record => records.push(s),
        }
    }
    let by_time = |a: &Sighting, b: &Sighting| a.entry.ts_ms.cmp(&b.entry.ts_ms);
    events.sort_by(by_time);
    records.sort_by(by_time);

    let mut spine: Vec<Entry> = Vec::new();
    let mut index: HashMap<MergeKey, Vec<usize>> = HashMap::new();
    fn push(spine: &mut Vec<Entry>, index: &mut HashMap<MergeKey, Vec<usize>>, e: Entry) {
        index.entry(merge_key(&e)).or_default().push(spine.len());
        spine.push(e);
    }
    for s in logs {
        push(&mut spine, &mut index, s.entry);
    }

    let mut containments = Vec::new();
    let mut delivered: HashSet<(String, String)> = HashSet::new();
    for s in events {
        if let Some(key) = s.event_key.clone()
            && !delivered.insert(key)
        {
            stats.duplicate_events += 1;
            continue;
        }
        containments.extend(s.containment.clone());
        if !s.is_request {
            continue;
        }
        let e = s.entry;
        let kind = e.events.first().and_then(|d| d.kind.clone());
        let best = index.get(&merge_key(&e)).and_then(|candidates| {
            candidates
                .iter()
                .copied()
                .filter_map(|i| spine.get(i).map(|c| (i, c)))
                .filter(|(_, c)| {
                    let same_kind = c.events.iter().any(|d| d.kind == kind);
                    // Two events join only on an interaction id they share.
                    let both_events = !c.from_access_log && !c.from_record;
                    !same_kind
                        && !differ(&c.interaction_id, &e.interaction_id)
                        && !(both_events
                            && (c.interaction_id.is_none() || e.interaction_id.is_none()))
                        && !differ(&c.status, &e.status)
                        && (c.ts_ms - e.ts_ms).abs() <= EVENT_SKEW_MS
                })
                .min_by_key(|(i, c)| ((c.ts_ms - e.ts_ms).abs(), *i))
                .map(|(i, _)| i)
        });
        match best.and_then(|i| spine.get_mut(i)) {
            Some(c) => {
                c.absorb(e);
                stats.merged += 1;
            }
            None => push(&mut spine, &mut index, e),
        }
    }

    for s in records {
        let e = s.entry;
        let best = index.get(&merge_key(&e)).and_then(|candidates| {
            candidates
                .iter()
                .copied()
                .filter_map(|i| spine.get(i).map(|c| (i, c)))
                .filter(|(_, c)| {
                    let skew = if c.from_access_log { 0 } else { EVENT_SKEW_MS };
                    !c.from_record
                        && !differ(&c.interaction_id, &e.interaction_id)
                        && !differ(&c.status, &e.status)
                        && (c.ts_ms - e.ts_ms).abs() <= skew
                })
                .min_by_key(|(i, c)| ((c.ts_ms - e.ts_ms).abs(), *i))
                .map(|(i, _)| i)
        });
        match best.and_then(|i| spine.get_mut(i)) {
            Some(c) => {
                c.absorb(e);
                stats.merged += 1;
            }
            None => push(&mut spine, &mut index, e),
        }
    }

    // Stable: same-millisecond requests keep their input order (access log, events, records).
    spine.sort_by_key(|e| e.ts_ms);
    containments.sort_by_key(|c| c.ts_ms);
    (spine, containments)
}

/// Envoy writes a value it lacks as `null` or `-`; both, and empty strings, mean absent.
fn present(s: &str) -> Option<&str> {
    let t = s.trim();
    (!t.is_empty() && t != "-").then_some(t)
}

/// A string field (numbers and booleans rendered as text, absent values as `None`).
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => present(s).map(str::to_owned),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A number, or a numeric string (Envoy renders filter state as text: `"0.913"`).
fn number(v: Option<&Value>) -> Option<f64> {
    let n = match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => present(s).and_then(|s| s.parse().ok()),
        _ => None,
    }?;
    n.is_finite().then_some(n)
}

fn status(v: Option<&Value>) -> Option<u16> {
    match v? {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => present(s).and_then(|s| s.parse().ok()),
        _ => None,
    }
}

/// RFC 3339 to Unix milliseconds.
pub fn parse_time(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(present(s)?, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

fn time_ms(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::String(s) => parse_time(s),
        _ => None,
    }
}

fn verdict(v: Option<&Value>) -> Option<Verdict> {
    match text(v)?.as_str() {
        "allow" => Some(Verdict::Allow),
        "step_up" | "challenge" => Some(Verdict::StepUp),
        "throttle" => Some(Verdict::Throttle),
        "block" => Some(Verdict::Block),
        _ => None,
    }
}

/// `"a; b"` (the access log's filter state), `["a", "b"]`, or events' `[{"text": …}]`.
fn reasons(v: Option<&Value>) -> Vec<ReasonText> {
    let plain = |t: &str| ReasonText {
        text: t.to_owned(),
        feature: None,
        strength: None,
    };
    match v {
        Some(Value::String(s)) => s.split("; ").filter_map(present).map(plain).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| match item {
                Value::String(s) => present(s).map(plain),
                Value::Object(o) => {
                    let feature = text(o.get("feature"));
                    let text = text(o.get("text")).or_else(|| feature.clone())?;
                    Some(ReasonText {
                        text,
                        feature,
                        strength: number(o.get("strength")),
                    })
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn parse_line(line: &str) -> LineItems {
    let line = line.trim();
    if line.is_empty() {
        return LineItems::Blank;
    }
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(o)) => LineItems::Items(vec![parse_object(&o)]),
        // A CloudEvents batch; anything in it that is not an object is incomplete.
        Ok(Value::Array(items)) => LineItems::Items(
            items
                .iter()
                .map(|v| match v {
                    Value::Object(o) => parse_object(o),
                    _ => None,
                })
                .collect(),
        ),
        _ => LineItems::NotJson,
    }
}

fn parse_object(o: &Map<String, Value>) -> Option<Sighting> {
    if o.contains_key("specversion") {
        return parse_event(o);
    }
    let (shape, ts_ms) = match time_ms(o.get("ts")) {
        Some(t) => (Shape::Record, t),
        None => (Shape::AccessLog, time_ms(o.get("start_time"))?),
    };
    let entry = Entry {
        ts_ms,
        client_id: text(o.get("client_id"))?,
        method: text(o.get("method")),
        path: text(o.get("path")),
        route: text(o.get("route")),
        status: status(o.get("status")),
        outcome: text(o.get("outcome")),
        reason: text(o.get("reason")),
        verdict: verdict(o.get("verdict")),
        score: number(o.get("score")),
        reasons: reasons(o.get("reasons")),
        interaction_id: text(o.get("interaction_id")),
        ip: text(o.get("ip")),
        country: text(o.get("country")),
        asn: text(o.get("asn")),
        user_agent: text(o.get("user_agent")),
        duration_ms: text(o.get("duration_ms")),
        events: Vec::new(),
        from_record: shape == Shape::Record,
        from_access_log: shape == Shape::AccessLog,
    };
    Some(Sighting {
        shape,
        entry,
        containment: None,
        is_request: true,
        event_key: None,
    })
}

fn parse_event(o: &Map<String, Value>) -> Option<Sighting> {
    let empty = Map::new();
    let data = match o.get("data") {
        Some(Value::Object(d)) => d,
        _ => &empty,
    };
    let ts_ms = time_ms(data.get("at")).or_else(|| time_ms(o.get("time")))?;
    let client_id = text(data.get("client_id")).or_else(|| text(o.get("subject")))?;
    let id = text(o.get("id"));
    let source = text(o.get("source"));
    let objects = |key: &str| -> Vec<&Map<String, Value>> {
        match data.get(key) {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_object).collect(),
            _ => Vec::new(),
        }
    };
    let detail = EventDetail {
        id: id.clone(),
        source: source.clone(),
        kind: text(o.get("type")),
        risk_band: text(data.get("risk_band")),
        model_digest: match data.get("model") {
            Some(Value::Object(m)) => text(m.get("digest")),
            other => text(other),
        },
        subject: text(data.get("subject")),
        intel: objects("intel")
            .into_iter()
            .map(|i| IntelMatch {
                feed: text(i.get("feed")),
                action: text(i.get("action")),
                matched: text(i.get("match")),
            })
            .collect(),
        recent: objects("recent")
            .into_iter()
            .map(|r| Recent {
                at: text(r.get("at")),
                method: text(r.get("method")),
                route: text(r.get("route")),
                outcome: text(r.get("outcome")),
                verdict: text(r.get("verdict")),
                score: number(r.get("score")),
            })
            .collect(),
    };
    let containment = match data.get("containment") {
        Some(Value::Object(c)) => text(c.get("action")).map(|action| Containment {
            ts_ms,
            action,
            playbook: text(c.get("playbook")),
            until: text(c.get("until")),
            event_id: id.clone(),
        }),
        _ => None,
    };
    let entry = Entry {
        ts_ms,
        client_id,
        method: text(data.get("method")),
        path: text(data.get("path")),
        route: text(data.get("route")),
        status: status(data.get("status")),
        outcome: text(data.get("outcome")),
        reason: text(data.get("reason")),
        verdict: verdict(data.get("verdict")),
        score: number(data.get("score")),
        reasons: reasons(data.get("reasons")),
        interaction_id: text(data.get("interaction_id")),
        ip: text(data.get("client_ip")),
        events: vec![detail],
        ..Entry::default()
    };
    let is_request = entry.method.is_some()
        || entry.path.is_some()
        || entry.route.is_some()
        || entry.interaction_id.is_some();
    Some(Sighting {
        shape: Shape::Event,
        entry,
        containment,
        is_request,
        event_key: source.zip(id),
    })
}

/// The counts of the page's header.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    pub requests: usize,
    /// Indexed like [`Category::ALL`].
    pub by_category: [usize; 6],
    /// Outcome (`-` when the line had none) and count, most frequent first.
    pub by_outcome: Vec<(String, usize)>,
    pub refusals: usize,
    /// Requests with at least one event.
    pub events: usize,
    pub novelties: usize,
    pub shadowed: usize,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    /// Model and rule reasons by name, with how many requests gave each and the most
    /// frequent full text; at most 10, most frequent first.
    pub top_reasons: Vec<(String, usize, String)>,
    /// Refusal reasons (the `reason` of refused requests); at most 10, most frequent first.
    pub refusal_reasons: Vec<(String, usize)>,
}

impl Summary {
    pub fn count(&self, c: Category) -> usize {
        self.by_category.get(c.index()).copied().unwrap_or(0)
    }
}

/// Most frequent first, ties by name, at most `n`.
fn top(counts: BTreeMap<String, usize>, n: usize) -> Vec<(String, usize)> {
    let mut v: Vec<(String, usize)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

impl Timeline {
    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            requests: self.entries.len(),
            first_ms: self.entries.first().map(|e| e.ts_ms),
            last_ms: self.entries.last().map(|e| e.ts_ms),
            ..Summary::default()
        };
        let mut outcomes = BTreeMap::new();
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        let mut texts: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        let mut refusal_reasons = BTreeMap::new();
        for e in &self.entries {
            if let Some(n) = s.by_category.get_mut(e.category().index()) {
                *n += 1;
            }
            *outcomes
                .entry(e.outcome.clone().unwrap_or_else(|| "-".into()))
                .or_insert(0) += 1;
            if e.is_refused() {
                s.refusals += 1;
                if let Some(r) = &e.reason {
                    *refusal_reasons.entry(r.clone()).or_insert(0) += 1;
                }
            }
            s.events += usize::from(e.is_event());
            s.novelties += usize::from(e.has_novelty());
            s.shadowed += usize::from(e.is_shadowed());
            // Once per request and name: "new_country: 12" means 12 requests.
            let mut seen_here = HashSet::new();
            for r in &e.reasons {
                let name = r.name().to_owned();
                *texts
                    .entry(name.clone())
                    .or_default()
                    .entry(r.text.clone())
                    .or_insert(0) += 1;
                if seen_here.insert(name.clone()) {
                    *names.entry(name).or_insert(0) += 1;
                }
            }
        }
        s.by_outcome = top(outcomes, usize::MAX);
        s.refusal_reasons = top(refusal_reasons, 10);
        s.top_reasons = top(names, 10)
            .into_iter()
            .map(|(name, n)| {
                let example = texts
                    .remove(&name)
                    .and_then(|t| top(t, 1).into_iter().next())
                    .map(|(text, _)| text)
                    .unwrap_or_default();
                (name, n, example)
            })
            .collect();
        s
    }
}

/// RFC 3339, UTC, milliseconds.
pub fn format_ms(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
            ))
            .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    fn filter(client: &str) -> Filter {
        Filter {
            client: client.into(),
            from_ms: None,
            to_ms: None,
        }
    }

    fn collect(client: &str, lines: &[&str]) -> Result<Timeline, NoMatch> {
        let mut c = Collector::new(filter(client));
        c.file("in.jsonl");
        for l in lines {
            c.line(l);
        }
        c.finish()
    }

    const LOG: &str = r#"{"client_id":"aggregator-tpp@demo","duration_ms":2,"interaction_id":"i-1","method":"GET","outcome":"challenged","path":"/accounts","reason":"risk","route":"accounts","start_time":"2026-11-25T17:04:20.065Z","status":"401","verdict":"step_up","score":"0.913","reasons":"new_country(RU); hour_rare(03:10, client p=0.002)"}"#;
    const RECORD: &str = r#"{"ts":"2026-11-25T17:04:20.065Z","client_id":"aggregator-tpp@demo","method":"GET","path":"/accounts","status":401,"resp_bytes":0,"ip":"203.0.113.9","country":"RU","asn":"AS64500","user_agent":"Acme/1.0","route":"accounts","customer_present":"-"}"#;
    const EVENT: &str = r#"{"specversion":"1.0","id":"ev-1","source":"obguard/demo","type":"io.obguard.security.verdict","subject":"aggregator-tpp@demo","time":"2026-11-25T17:04:20.070Z","data":{"at":"2026-11-25T17:04:20.066Z","interaction_id":"i-1","client_id":"aggregator-tpp@demo","subject":null,"route":"accounts","method":"GET","path":"/accounts","client_ip":"203.0.113.9","outcome":"challenged","reason":"risk","status":401,"verdict":"step_up","score":0.913,"risk_band":"high","reasons":[{"feature":"new_country","text":"new_country(RU)","strength":0.95}],"model":{"digest":"abc123"},"intel":[{"feed":"tor","action":"flag","match":"203.0.113.0/24"}],"containment":{"action":"quarantine","playbook":"new-country","until":"2026-11-25T18:04:20Z"},"recent":[{"at":"2026-11-25T17:04:19Z","method":"GET","route":"accounts","outcome":"allowed","verdict":"allow","score":0.1}],"future_field":1}}"#;

    #[test]
    fn access_log_fields_and_absent_values() {
        let t = collect(
            "aggregator-tpp",
            &[
                LOG,
                r#"{"client_id":"aggregator-tpp@demo","method":"GET","path":"/x","status":"200","start_time":"2026-11-25T17:05:00Z","outcome":"allowed","reason":null,"verdict":"-","score":"-","reasons":"-","route":""}"#,
            ],
        )
        .unwrap();
        assert_eq!(t.entries.len(), 2);
        let e = &t.entries[0];
        assert_eq!(e.status, Some(401));
        assert_eq!(e.verdict, Some(Verdict::StepUp));
        assert_eq!(e.score, Some(0.913));
        assert_eq!(e.reasons.len(), 2);
        assert_eq!(e.reasons[1].name(), "hour_rare");
        assert!(e.has_novelty());
        assert!(e.is_refused());
        assert_eq!(e.category(), Category::StepUp);
        let e = &t.entries[1];
        assert_eq!((e.reason.as_ref(), e.verdict, e.score), (None, None, None));
        assert_eq!(e.route, None);
        assert!(e.reasons.is_empty());
        assert_eq!(e.category(), Category::Unscored);
    }

    #[test]
    fn client_matches_exactly_or_before_the_last_at() {
        let f = filter("aggregator-tpp");
        assert!(f.matches_client("aggregator-tpp"));
        assert!(f.matches_client("aggregator-tpp@demo"));
        assert!(!f.matches_client("aggregator-tpp2@demo"));
        assert!(!f.matches_client("x@aggregator-tpp"));
        let f = filter("a@b");
        assert!(f.matches_client("a@b@c"));
        assert!(f.matches_client("a@b"));
        assert!(!f.matches_client("a"));
    }

    #[test]
    fn one_request_from_three_shapes_is_one_entry() {
        let t = collect("aggregator-tpp", &[LOG, RECORD, EVENT]).unwrap();
        assert_eq!(t.entries.len(), 1, "{:#?}", t.entries);
        assert_eq!(t.stats.merged, 2);
        let e = &t.entries[0];
        assert!(e.from_access_log && e.from_record && e.is_event());
        assert_eq!(e.country.as_deref(), Some("RU"));
        assert_eq!(e.user_agent.as_deref(), Some("Acme/1.0"));
        // The event's reasons (with features) win over the log's text.
        assert_eq!(e.reasons[0].feature.as_deref(), Some("new_country"));
        assert_eq!(e.events[0].recent.len(), 1);
        assert_eq!(
            e.events[0].intel[0].matched.as_deref(),
            Some("203.0.113.0/24")
        );
        assert_eq!(e.events[0].model_digest.as_deref(), Some("abc123"));
        assert_eq!(t.containments.len(), 1);
        assert_eq!(t.containments[0].action, "quarantine");
        assert_eq!(t.containments[0].playbook.as_deref(), Some("new-country"));
        assert_eq!(t.client_ids, vec!["aggregator-tpp@demo".to_owned()]);
    }

    #[test]
    fn merging_is_one_to_one() {
        // Two identical requests in the same millisecond, in both files: two entries.
        let t = collect("aggregator-tpp", &[LOG, LOG, RECORD, RECORD, RECORD]).unwrap();
        assert_eq!(t.entries.len(), 3);
        assert_eq!(t.stats.merged, 2);
        // A record a millisecond off, or with another status, is another request.
        let later = RECORD.replace("20.065Z", "20.066Z");
        let other = RECORD.replace(r#""status":401"#, r#""status":200"#);
        let t = collect("aggregator-tpp", &[LOG, &later, &other]).unwrap();
        assert_eq!(t.entries.len(), 3);
        // An event with another interaction id, or far away in time, stays apart.
        let other_id = EVENT.replace(r#""interaction_id":"i-1""#, r#""interaction_id":"i-2""#);
        let far = EVENT
            .replace("17:04:20.066Z", "17:09:20.066Z")
            .replace(r#""id":"ev-1""#, r#""id":"ev-2""#);
        let t = collect("aggregator-tpp", &[LOG, &other_id, &far]).unwrap();
        assert_eq!(t.entries.len(), 3);
        assert!(t.entries.iter().filter(|e| e.is_event()).count() == 2);
    }

    #[test]
    fn redelivered_events_count_once_and_batches_are_read() {
        let batch = format!(
            "[{EVENT},{}]",
            EVENT
                .replace("ev-1", "ev-9")
                .replace("security.verdict", "security.containment")
        );
        let t = collect("aggregator-tpp@demo", &[EVENT, EVENT, &batch]).unwrap();
        assert_eq!(t.stats.duplicate_events, 2);
        // ev-1 once, and ev-9 (a containment event of the same request) folded into it.
        assert_eq!(t.entries.len(), 1);
        assert_eq!(t.entries[0].events.len(), 2);
        assert_eq!(t.containments.len(), 2);
    }

    #[test]
    fn a_bare_containment_event_is_a_marker_not_a_request() {
        let bare = r#"{"specversion":"1.0","id":"c-1","source":"s","type":"io.obguard.security.containment","subject":"tpp-1@ns","time":"2026-11-25T18:00:00Z","data":{"containment":{"action":"revoke","playbook":"stuffing","until":null}}}"#;
        let t = collect(
            "tpp-1",
            &[bare, RECORD.replace("aggregator-tpp", "tpp-1").as_str()],
        )
        .unwrap();
        assert_eq!(t.entries.len(), 1);
        assert_eq!(t.containments.len(), 1);
        assert_eq!(t.containments[0].action, "revoke");
        assert_eq!(t.containments[0].until, None);
    }

    #[test]
    fn skipped_lines_are_counted() {
        let t = collect(
            "aggregator-tpp",
            &[
                "",
                "   ",
                "[2026-11-25T17:04:20.065Z] \"GET /accounts\" 200 2ms obguard=allowed/-",
                "42",
                r#""a string""#,
                r#"{"ts":"yesterday","client_id":"aggregator-tpp"}"#,
                r#"{"ts":"2026-11-25T17:04:20Z","client_id":"-"}"#,
                r#"{"start_time":"2026-11-25T17:04:20Z","client_id":null}"#,
                r#"{"start_time":"2026-11-25T17:04:20Z","client_id":"someone-else@demo"}"#,
                "[1, {\"specversion\":\"1.0\"}]",
                LOG,
            ],
        )
        .unwrap();
        let s = &t.stats;
        assert_eq!(s.lines, 9);
        assert_eq!(s.not_json, 3);
        assert_eq!(s.incomplete, 5);
        assert_eq!(s.other_clients, 1);
        assert_eq!(t.entries.len(), 1);
    }

    #[test]
    fn no_match_names_what_was_seen() {
        let lines: Vec<String> = (0..12)
            .flat_map(|i| {
                let line = LOG.replace("aggregator-tpp", &format!("tpp-{i:02}"));
                std::iter::repeat_n(line, 12 - i)
            })
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let err = collect("nobody", &refs).unwrap_err();
        assert_eq!(err.lines, lines.len());
        assert_eq!(err.seen.len(), 10);
        assert_eq!(err.seen[0], ("tpp-00@demo".to_owned(), 12));
        assert_eq!(err.distinct_seen, 12);
        let msg = err.to_string();
        assert!(msg.contains("no line matches client \"nobody\""), "{msg}");
        assert!(
            msg.contains("tpp-00@demo (12)") && msg.contains("and 2 more"),
            "{msg}"
        );

        let mut c = Collector::new(Filter {
            client: "aggregator-tpp".into(),
            from_ms: parse_time("2026-11-26T00:00:00Z"),
            to_ms: None,
        });
        c.line(LOG);
        let err = c.finish().unwrap_err();
        assert_eq!(err.outside_window, 1);
        assert!(err.to_string().contains("outside --from/--to"), "{err}");
    }

    #[test]
    fn window_is_inclusive() {
        let mut c = Collector::new(Filter {
            client: "aggregator-tpp".into(),
            from_ms: parse_time("2026-11-25T17:04:20.065Z"),
            to_ms: parse_time("2026-11-25T17:04:20.065Z"),
        });
        c.line(LOG);
        c.line(&LOG.replace("20.065Z", "20.066Z"));
        let t = c.finish().unwrap();
        assert_eq!(t.entries.len(), 1);
        assert_eq!(t.stats.outside_window, 1);
    }

    #[test]
    fn summary_counts() {
        let refused = r#"{"client_id":"aggregator-tpp@demo","method":"POST","outcome":"insufficient_scope","path":"/domestic-payments","reason":"missing_scope","route":"payments","start_time":"2026-11-25T17:04:20.148Z","status":"403"}"#;
        let shadow = LOG
            .replace(r#""outcome":"challenged""#, r#""outcome":"allowed""#)
            .replace(r#""interaction_id":"i-1""#, r#""interaction_id":"i-3""#)
            .replace("17:04:20.065Z", "17:04:21.000Z")
            .replace("new_country(RU); ", "");
        let t = collect("aggregator-tpp", &[LOG, refused, &shadow, RECORD, EVENT]).unwrap();
        let s = t.summary();
        assert_eq!(s.requests, 3);
        assert_eq!(s.count(Category::StepUp), 2);
        assert_eq!(s.count(Category::Refused), 1);
        assert_eq!(s.refusals, 2);
        assert_eq!(s.shadowed, 1);
        assert_eq!(s.events, 1);
        assert_eq!(s.novelties, 1);
        assert_eq!(
            s.refusal_reasons,
            vec![("missing_scope".into(), 1), ("risk".into(), 1)]
        );
        assert_eq!(s.top_reasons[0].0, "hour_rare");
        assert_eq!(s.top_reasons[0].1, 1);
        assert_eq!(
            s.top_reasons[1],
            ("new_country".into(), 1, "new_country(RU)".into())
        );
        assert_eq!(s.by_outcome.len(), 3);
        assert_eq!(s.first_ms, parse_time("2026-11-25T17:04:20.065Z"));
        assert_eq!(format_ms(s.last_ms.unwrap()), "2026-11-25T17:04:21.000Z");
    }

    #[test]
    fn non_utf8_bytes_do_not_stop_reading() {
        let mut input = LOG.as_bytes().to_vec();
        input.extend_from_slice(b"\n\xff\xfe not json\n");
        input.extend_from_slice(RECORD.replace("20.065Z", "21.000Z").as_bytes());
        let mut c = Collector::new(filter("aggregator-tpp"));
        c.read(input.as_slice()).unwrap();
        let t = c.finish().unwrap();
        assert_eq!(t.entries.len(), 2);
        assert_eq!(t.stats.not_json, 1);
    }
}

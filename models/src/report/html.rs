//! The report page: one HTML file with inline CSS and inline SVG, no script and nothing
//! fetched (a Content-Security-Policy of `default-src 'none'` says so to the browser too).
//!
//! Every string that comes from the input (client ids, paths, reasons, user agents, playbook
//! names: all attacker-shaped) goes through `html_escape` before it is written, in text and in
//! attributes alike (`encode_quoted_attribute` escapes `& < > " '`); only the page's own
//! markup and numbers are written as they are.

use std::fmt::{self, Write as _};

use html_escape::encode_quoted_attribute as esc;

use super::svg::{self, TimeAxis};
use super::{Category, Entry, EventDetail, Summary, Timeline, format_ms};

/// What the page needs besides the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// `--title`; default `Incident report: <client>`.
    pub title: Option<String>,
    /// When the page was made (Unix ms); `None` leaves it out.
    pub generated_at_ms: Option<i64>,
    /// Table rows at most, besides alert rows (which are always kept).
    pub max_rows: usize,
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#212121;line-height:1.4}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ddd;padding:2px 6px;vertical-align:top;text-align:left}
th{background:#f5f5f5}td.num{text-align:right}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:2px 12px;font-size:.9em}dl.meta dt{font-weight:600}dl.meta dd{margin:0}
.cards{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}
.timeline td{font-size:.95em;word-break:break-word}.timeline td.time{white-space:nowrap;word-break:normal}.timeline tr.event{background:#fff8e1}
.timeline tr td:first-child{border-left-width:5px}
.timeline tr.allow td:first-child{border-left-color:#43a047}.timeline tr.step_up td:first-child{border-left-color:#fbc02d}
.timeline tr.throttle td:first-child{border-left-color:#fb8c00}.timeline tr.block td:first-child{border-left-color:#d32f2f}
.timeline tr.refused td:first-child{border-left-color:#7b1fa2}.timeline tr.unscored td:first-child{border-left-color:#9e9e9e}
.small{font-size:.85em;color:#555}.badge{display:inline-block;border-radius:3px;padding:0 4px;margin:1px;background:#eee;font-size:.85em}
.badge.event{background:#ffb300;color:#000;font-weight:600}span.reason{display:block}span.reason.novelty{font-weight:600}
svg.plot{max-width:100%;height:auto;border:1px solid #eee}
details summary{cursor:pointer}
";

/// The whole page.
pub fn render(t: &Timeline, page: &Page) -> Result<String, fmt::Error> {
    let s = t.summary();
    let title = page
        .title
        .clone()
        .unwrap_or_else(|| format!("Incident report: {}", t.client));
    let mut out = String::with_capacity(64 * 1024 + t.entries.len().min(page.max_rows) * 600);
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    )?;
    header(&mut out, t, &s, page)?;
    counts(&mut out, &s)?;
    containments(&mut out, t)?;
    let axis = TimeAxis::of(t);
    let per = match axis.bucket_ms / 3_600_000 {
        1 => "hour".to_owned(),
        h => format!("{h} hours"),
    };
    writeln!(
        out,
        "<h2>Requests per {per}, by verdict</h2>\n{}",
        svg::requests_per_hour(t, &axis)?
    )?;
    let unscored = t.entries.iter().filter(|e| e.score.is_none()).count();
    writeln!(
        out,
        "<h2>Score over time</h2>\n{}\n<p class=\"small\">Each dot is a scored request, coloured by \
         its verdict; a diamond marks a request whose reasons name a novelty (<code>new_…</code>: \
         a country, network, ASN, user agent or product not seen before from this client); a \
         dashed line marks a containment action. {unscored} request(s) without a score are not \
         drawn.</p>",
        svg::score_over_time(t, &axis)?
    )?;
    meaning(&mut out, t, &s)?;
    table(&mut out, t, page.max_rows)?;
    out.push_str(
        "<p class=\"small\">Made by <code>obguard-models report</code> from the files listed \
         above. Times are UTC.</p>\n</body>\n</html>\n",
    );
    Ok(out)
}

fn range(from: Option<i64>, to: Option<i64>) -> String {
    let end = |v: Option<i64>, open: &str| v.map_or_else(|| open.to_owned(), format_ms);
    format!("{} – {}", end(from, "…"), end(to, "…"))
}

fn header(out: &mut String, t: &Timeline, s: &Summary, page: &Page) -> fmt::Result {
    out.push_str("<dl class=\"meta\">\n");
    write!(out, "<dt>Client</dt><dd><code>{}</code>", esc(&t.client))?;
    if t.client_ids.iter().any(|id| *id != t.client) {
        let ids: Vec<String> = t
            .client_ids
            .iter()
            .map(|id| format!("<code>{}</code>", esc(id)))
            .collect();
        write!(out, " (as {})", ids.join(", "))?;
    }
    out.push_str("</dd>\n");
    if t.from_ms.is_some() || t.to_ms.is_some() {
        writeln!(out, "<dt>Window</dt><dd>{}</dd>", range(t.from_ms, t.to_ms))?;
    }
    writeln!(
        out,
        "<dt>First seen</dt><dd>{}</dd>\n<dt>Last seen</dt><dd>{}</dd>",
        s.first_ms.map_or_else(|| "-".into(), format_ms),
        s.last_ms.map_or_else(|| "-".into(), format_ms)
    )?;
    if let Some(g) = page.generated_at_ms {
        writeln!(out, "<dt>Generated</dt><dd>{}</dd>", format_ms(g))?;
    }
    let files: Vec<String> = t
        .stats
        .files
        .iter()
        .map(|f| format!("<code>{}</code>", esc(f)))
        .collect();
    writeln!(out, "<dt>Input files</dt><dd>{}</dd>", files.join(", "))?;
    let st = &t.stats;
    writeln!(
        out,
        "<dt>Lines read</dt><dd>{} ({})</dd>\n</dl>",
        st.lines,
        st.passed_over()
    )
}

fn counts(out: &mut String, s: &Summary) -> fmt::Result {
    writeln!(
        out,
        "<h2>Summary</h2>\n<p><strong>{}</strong> requests, <strong>{}</strong> refused by \
         obguard, <strong>{}</strong> with a security event, <strong>{}</strong> with a \
         novelty{}.</p>\n<div class=\"cards\">",
        s.requests,
        s.refusals,
        s.events,
        s.novelties,
        if s.shadowed > 0 {
            format!(
                ", <strong>{}</strong> judged but let through (shadow mode)",
                s.shadowed
            )
        } else {
            String::new()
        }
    )?;
    out.push_str("<table class=\"by-verdict\"><tr><th>verdict</th><th>requests</th></tr>\n");
    for c in Category::ALL {
        writeln!(
            out,
            "<tr><td>{}</td><td class=\"num\">{}</td></tr>",
            c.label(),
            s.count(c)
        )?;
    }
    out.push_str(
        "</table>\n<table class=\"by-outcome\"><tr><th>outcome</th><th>requests</th></tr>\n",
    );
    for (o, n) in &s.by_outcome {
        writeln!(
            out,
            "<tr><td>{}</td><td class=\"num\">{n}</td></tr>",
            esc(o)
        )?;
    }
    out.push_str("</table>\n<table class=\"top-reasons\"><tr><th>reason (model, rules)</th><th>requests</th><th>most frequent</th></tr>\n");
    if s.top_reasons.is_empty() {
        out.push_str("<tr><td colspan=\"3\">none</td></tr>\n");
    }
    for (name, n, example) in &s.top_reasons {
        writeln!(
            out,
            "<tr><td>{}</td><td class=\"num\">{n}</td><td><code>{}</code></td></tr>",
            esc(name),
            esc(example)
        )?;
    }
    out.push_str("</table>\n<table class=\"refusal-reasons\"><tr><th>refusal reason</th><th>requests</th></tr>\n");
    if s.refusal_reasons.is_empty() {
        out.push_str("<tr><td colspan=\"2\">none</td></tr>\n");
    }
    for (r, n) in &s.refusal_reasons {
        writeln!(
            out,
            "<tr><td>{}</td><td class=\"num\">{n}</td></tr>",
            esc(r)
        )?;
    }
    out.push_str("</table>\n</div>\n");
    Ok(())
}

fn containments(out: &mut String, t: &Timeline) -> fmt::Result {
    out.push_str("<h2>Containment actions</h2>\n");
    if t.containments.is_empty() {
        out.push_str("<p>None reported.</p>\n");
        return Ok(());
    }
    out.push_str(
        "<table class=\"containments\"><tr><th>time</th><th>action</th><th>playbook</th><th>until</th><th>event</th></tr>\n",
    );
    for c in &t.containments {
        writeln!(
            out,
            "<tr><td>{}</td><td><strong>{}</strong></td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            format_ms(c.ts_ms),
            esc(&c.action),
            esc(c.playbook.as_deref().unwrap_or("-")),
            esc(c.until.as_deref().unwrap_or("-")),
            esc(c.event_id.as_deref().unwrap_or("-"))
        )?;
    }
    out.push_str("</table>\n");
    Ok(())
}

/// One paragraph per kind of decision present, in plain words for the TPP.
fn meaning(out: &mut String, t: &Timeline, s: &Summary) -> fmt::Result {
    out.push_str("<h2>What this means</h2>\n");
    let paragraphs: [(bool, &str); 9] = [
        (
            s.count(Category::Allow) > 0,
            "<strong>allow</strong>: the bank's behavioural model found the request in line \
             with this client's own history and did not stand in its way. Other checks (token, \
             scopes, consent) still apply; the outcome column says how each request ended.",
        ),
        (
            s.count(Category::StepUp) > 0,
            "<strong>step_up</strong>: the bank asked for fresh customer authentication. The \
             request was answered 401 with <code>insufficient_user_authentication</code> (RFC \
             9470) and the authentication context it requires, and was not served. A request \
             with an access token from a new authentication of the customer is judged again.",
        ),
        (
            s.count(Category::Throttle) > 0,
            "<strong>throttle</strong>: the bank slowed this client down. The request went to \
             the bank's rate-limit service with the verdict, or was answered 429 Too Many \
             Requests with a <code>Retry-After</code> header; it was not forwarded unchecked.",
        ),
        (
            s.count(Category::Block) > 0,
            "<strong>block</strong>: the request was refused with 403 and not forwarded: its \
             behaviour differed strongly from this client's usual traffic. The reasons column \
             says what stood out.",
        ),
        (
            s.count(Category::Refused) > 0,
            "<strong>refused without verdict</strong>: obguard refused the request before any \
             behavioural scoring, because of the request itself: a missing or invalid token, \
             missing scopes, a resource outside the consent, a malformed FAPI header, or the \
             rate limit. The outcome and reason columns say which.",
        ),
        (
            s.count(Category::Unscored) > 0,
            "<strong>unscored</strong>: no verdict was recorded for the request: it was not \
             scored (no model loaded, an anonymous or unmatched route, a client still in its \
             warm-up), or the line that told it carries no decision fields, as traffic records \
             usually do.",
        ),
        (
            s.shadowed > 0,
            "<strong>shadow mode</strong>: some requests have a verdict other than allow but \
             were let through (outcome <code>allowed</code>): the bank logs the model's verdict \
             without enforcing it.",
        ),
        (
            s.novelties > 0,
            "<strong>novelty</strong> (a diamond in the score plot, a bold reason in the table): \
             the request came from a country, network, ASN, user agent or software product this \
             client had not used before. A novelty raises the score; by itself it is not a \
             refusal.",
        ),
        (
            !t.containments.is_empty(),
            "<strong>containment</strong>: a containment playbook acted on this client id: \
             <code>quarantine</code> until the time shown, or <code>revoke</code>. The \
             containment table names the playbook and, for a quarantine, when it ends.",
        ),
    ];
    for (present, text) in paragraphs {
        if present {
            writeln!(out, "<p>{text}</p>")?;
        }
    }
    Ok(())
}

/// Indices of the entries the table shows, oldest first: every entry with an event, and
/// the newest others up to `max_rows` rows in all.
pub fn shown_rows(entries: &[Entry], max_rows: usize) -> Vec<usize> {
    let events = entries.iter().filter(|e| e.is_event()).count();
    let mut budget = max_rows.saturating_sub(events);
    let mut keep = vec![false; entries.len()];
    for (k, e) in keep.iter_mut().zip(entries).rev() {
        if e.is_event() {
            *k = true;
        } else if budget > 0 {
            *k = true;
            budget -= 1;
        }
    }
    keep.iter()
        .enumerate()
        .filter_map(|(i, k)| k.then_some(i))
        .collect()
}

fn opt(v: Option<&str>) -> String {
    esc(v.unwrap_or("-")).into_owned()
}

fn table(out: &mut String, t: &Timeline, max_rows: usize) -> fmt::Result {
    out.push_str("<h2>Timeline</h2>\n");
    let rows = shown_rows(&t.entries, max_rows);
    let left_out = t.entries.len() - rows.len();
    if left_out > 0 {
        writeln!(
            out,
            "<p class=\"left-out\">{left_out} older request(s) are left out of this table \
             (<code>--max-rows {max_rows}</code>; every request with a security event is \
             kept). The counts and plots above include them.</p>"
        )?;
    }
    out.push_str(
        "<table class=\"timeline\"><thead><tr><th>time (UTC)</th><th>method</th><th>route / path</th>\
         <th>status</th><th>outcome</th><th>reason</th><th>verdict</th><th>score</th>\
         <th>reasons</th><th>seen from</th><th>source</th></tr></thead>\n<tbody>\n",
    );
    for e in rows.iter().filter_map(|i| t.entries.get(*i)) {
        row(out, e)?;
    }
    out.push_str("</tbody></table>\n");
    Ok(())
}

fn row(out: &mut String, e: &Entry) -> fmt::Result {
    let c = e.category();
    write!(
        out,
        "<tr class=\"{}{}\"><td class=\"time\">{}</td><td>{}</td><td>",
        c.css(),
        if e.is_event() { " event" } else { "" },
        format_ms(e.ts_ms),
        opt(e.method.as_deref())
    )?;
    match (&e.route, &e.path) {
        (Some(r), Some(p)) if r != p => {
            write!(out, "{}<br><span class=\"small\">{}</span>", esc(r), esc(p))?
        }
        (Some(r), _) => out.push_str(&esc(r)),
        (None, p) => out.push_str(&opt(p.as_deref())),
    }
    write!(
        out,
        "</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>",
        e.status.map_or_else(|| "-".into(), |s| s.to_string()),
        opt(e.outcome.as_deref()),
        opt(e.reason.as_deref()),
        e.verdict.map_or("-", |v| v.as_str()),
        e.score.map_or_else(|| "-".into(), |s| format!("{s:.3}"))
    )?;
    for r in &e.reasons {
        if r.is_novelty() {
            write!(
                out,
                "<span class=\"reason novelty\">◆ {}</span>",
                esc(&r.text)
            )?;
        } else {
            write!(out, "<span class=\"reason\">{}</span>", esc(&r.text))?;
        }
    }
    out.push_str("</td><td>");
    let from: Vec<String> = [&e.ip, &e.country, &e.asn, &e.user_agent]
        .into_iter()
        .flatten()
        .map(|v| esc(v).into_owned())
        .collect();
    out.push_str(&from.join("<br>"));
    out.push_str("</td><td>");
    for d in &e.events {
        event_detail(out, d)?;
    }
    if e.from_access_log {
        out.push_str("<span class=\"badge\">access log</span>");
    }
    if e.from_record {
        out.push_str("<span class=\"badge\">record</span>");
    }
    out.push_str("</td></tr>\n");
    Ok(())
}

fn event_detail(out: &mut String, d: &EventDetail) -> fmt::Result {
    write!(
        out,
        "<details><summary><span class=\"badge event\">event: {}</span></summary><div class=\"small\">\
         id <code>{}</code><br>type <code>{}</code><br>source <code>{}</code><br>risk band {}<br>\
         model <code>{}</code><br>token subject {}",
        esc(d.short_kind()),
        opt(d.id.as_deref()),
        opt(d.kind.as_deref()),
        opt(d.source.as_deref()),
        opt(d.risk_band.as_deref()),
        opt(d.model_digest.as_deref()),
        opt(d.subject.as_deref())
    )?;
    for i in &d.intel {
        write!(
            out,
            "<br>intel {}: {} <code>{}</code>",
            opt(i.feed.as_deref()),
            opt(i.action.as_deref()),
            opt(i.matched.as_deref())
        )?;
    }
    if !d.recent.is_empty() {
        out.push_str(
            "<table class=\"recent\"><tr><th colspan=\"5\">the client's requests before, as the \
             emitting worker saw them</th></tr>",
        );
        for r in &d.recent {
            write!(
                out,
                "<tr><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                opt(r.at.as_deref()),
                opt(r.method.as_deref()),
                opt(r.route.as_deref()),
                opt(r.outcome.as_deref()),
                opt(r.verdict.as_deref()),
                r.score.map_or_else(|| "-".into(), |s| format!("{s:.3}"))
            )?;
        }
        out.push_str("</table>");
    }
    out.push_str("</div></details>");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::report::{Collector, Filter};

    const EVIL: &str = r#"<script>alert(1)</script>"onmouseover=alert(2) x='"#;

    fn page(max_rows: usize) -> Page {
        Page {
            title: None,
            generated_at_ms: Some(0),
            max_rows,
        }
    }

    fn timeline(lines: &[String], client: &str) -> Timeline {
        let mut c = Collector::new(Filter {
            client: client.into(),
            from_ms: None,
            to_ms: None,
        });
        c.file(&format!("{EVIL}.jsonl"));
        for l in lines {
            c.line(l);
        }
        c.finish().unwrap()
    }

    #[test]
    fn input_strings_are_escaped_everywhere() {
        let client = format!("tpp{EVIL}@ns");
        let line = serde_json::json!({
            "start_time": "2026-11-25T17:04:20.065Z",
            "client_id": client,
            "method": "GET",
            "path": format!("/accounts/{EVIL}"),
            "route": EVIL,
            "status": "403",
            "outcome": EVIL,
            "reason": EVIL,
            "verdict": "block",
            "score": "0.99",
            "reasons": format!("new_country({EVIL}); {EVIL}"),
        });
        let event = serde_json::json!({
            "specversion": "1.0", "id": EVIL, "source": EVIL, "type": EVIL,
            "subject": client, "time": "2026-11-25T17:05:00Z",
            "data": {"client_id": client, "method": "GET", "path": EVIL,
                     "risk_band": EVIL, "model": {"digest": EVIL},
                     "intel": [{"feed": EVIL, "action": EVIL, "match": EVIL}],
                     "containment": {"action": EVIL, "playbook": EVIL, "until": EVIL},
                     "recent": [{"at": EVIL, "method": EVIL, "route": EVIL, "outcome": EVIL}]}
        });
        let t = timeline(&[line.to_string(), event.to_string()], &client);
        let mut p = page(10);
        p.title = Some(EVIL.into());
        let html = render(&t, &p).unwrap();
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("\"onmouseover"), "{html}");
        assert!(
            html.contains(
                "&lt;script&gt;alert(1)&lt;/script&gt;&quot;onmouseover=alert(2) x=&#x27;"
            )
        );
        // The client id, a path, a reason, a playbook name: each escaped in place.
        assert!(html.contains("<code>tpp&lt;script&gt;alert(1)&lt;/script&gt;&quot;onmouseover="));
        assert!(html.contains("/accounts/&lt;script&gt;"));
        assert!(html.contains("◆ new_country(&lt;script&gt;"));
        assert!(html.contains("<td><strong>&lt;script&gt;alert(1)"));
    }

    #[test]
    fn no_script_and_nothing_remote() {
        let line = r#"{"ts":"2026-11-25T17:04:20Z","client_id":"c","method":"GET","path":"/x","status":200,"resp_bytes":1}"#;
        let html = render(&timeline(&[line.into()], "c"), &page(10)).unwrap();
        assert!(!html.contains("<script"));
        assert!(!html.contains("src="));
        assert!(!html.contains("href="));
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(html.contains("default-src 'none'"));
        assert_eq!(
            html,
            render(&timeline(&[line.into()], "c"), &page(10)).unwrap()
        );
    }

    #[test]
    fn a_client_with_only_a_containment_marker_still_renders() {
        let bare = r#"{"specversion":"1.0","id":"c-1","source":"s","type":"io.obguard.security.containment","subject":"c@ns","time":"2026-11-25T18:00:00Z","data":{"containment":{"action":"revoke","playbook":"stuffing"}}}"#;
        let html = render(&timeline(&[bare.into()], "c"), &page(10)).unwrap();
        assert!(html.contains("<strong>0</strong> requests"));
        assert!(html.contains(">no scored requests</text>"));
        assert!(html.contains("<line class=\"containment\""));
        assert!(html.contains("<dt>First seen</dt><dd>-</dd>"));
    }

    #[test]
    fn table_keeps_the_newest_rows_and_every_event() {
        let mut lines: Vec<String> = (0..10)
            .map(|i| {
                format!(
                    r#"{{"ts":"2026-11-25T17:{i:02}:00Z","client_id":"c","method":"GET","path":"/r{i}","status":200,"resp_bytes":1}}"#
                )
            })
            .collect();
        lines.push(r#"{"specversion":"1.0","id":"e","source":"s","type":"io.obguard.security.verdict","time":"2026-11-25T17:00:30Z","data":{"client_id":"c","method":"GET","path":"/old","verdict":"block","score":0.97}}"#.into());
        let t = timeline(&lines, "c");
        let rows = shown_rows(&t.entries, 3);
        let paths: Vec<&str> = rows
            .iter()
            .map(|i| t.entries[*i].path.as_deref().unwrap())
            .collect();
        assert_eq!(paths, ["/old", "/r8", "/r9"]);
        let html = render(&t, &page(3)).unwrap();
        assert!(html.contains("8 older request(s) are left out"), "{html}");
        assert_eq!(html.matches("<tr class=\"").count(), 3);
        assert_eq!(shown_rows(&t.entries, 0).len(), 1);
        assert_eq!(shown_rows(&t.entries, 100).len(), 11);
    }
}

//! A picture of the score distributions of a mining run: positives, kept
//! negatives and dropped candidates, as overlaid histograms in one self-contained
//! SVG (no script, no external resource), or an HTML page holding it with the
//! report's numbers.

use std::fmt::Write as _;

use crate::audit::Audit;
use crate::filter::Filter;
use crate::trace::QueryTrace;

const WIDTH: f64 = 820.0;
const HEIGHT: f64 = 440.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 200.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;
const BINS: usize = 60;
const COLOURS: [&str; 3] = ["#1b9e77", "#4c6ef5", "#e8590c"];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A tick step of 1, 2 or 5 times a power of ten giving about `n` ticks over `span`.
fn nice_step(span: f64, n: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / n;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let m = if norm < 1.5 {
        1.0
    } else if norm < 3.5 {
        2.0
    } else if norm < 7.5 {
        5.0
    } else {
        10.0
    };
    m * mag
}

fn median(sample: &[f32]) -> Option<f64> {
    if sample.is_empty() {
        return None;
    }
    let mut v = sample.to_vec();
    v.sort_unstable_by(f32::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid] as f64
    } else {
        (v[mid - 1] as f64 + v[mid] as f64) / 2.0
    })
}

/// The score distributions as an SVG document: one histogram per distribution,
/// each normalised to its own total (so a few thousand positives and a few hundred
/// thousand dropped candidates compare), with its median as a dashed line.
///
/// When a teacher rescored the candidates, these are its scores;
/// [`retriever_svg`] draws the candidate source's.
pub fn svg(audit: &Audit) -> String {
    let axis = match &audit.teacher {
        Some(t) => format!("{} ({} teacher)", t.name, t.kind),
        None => audit.retriever.clone(),
    };
    let counts = [
        audit.scores.positives.count,
        audit.scores.kept.count,
        audit.scores.dropped.count,
    ];
    draw(audit, audit.score_samples(), counts, &axis)
}

/// When a teacher rescored the candidates: the candidate source's scores of the
/// same positives, kept negatives and dropped candidates, drawn as [`svg`] does.
pub fn retriever_svg(audit: &Audit) -> Option<String> {
    let series = audit.retriever_score_samples()?;
    let r = audit.retriever_scores.as_ref()?;
    let counts = [r.positives.count, r.kept.count, r.dropped.count];
    Some(draw(
        audit,
        series,
        counts,
        &format!("{} (candidate source)", audit.retriever),
    ))
}

fn draw(
    audit: &Audit,
    series: [(&'static str, &[f32]); 3],
    counts: [u64; 3],
    axis: &str,
) -> String {
    let all = series
        .iter()
        .flat_map(|(_, s)| s.iter().copied())
        .filter(|x| x.is_finite());
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x as f64), hi.max(x as f64))
    });
    let (lo, hi) = if lo.is_finite() {
        if hi > lo {
            (lo, hi)
        } else {
            (lo - 0.5, hi + 0.5)
        }
    } else {
        (0.0, 1.0)
    };
    let width = (hi - lo) / BINS as f64;
    let bin_of = |x: f64| (((x - lo) / width) as usize).min(BINS - 1);
    let shares: Vec<Vec<f64>> = series
        .iter()
        .map(|(_, sample)| {
            let mut counts = vec![0f64; BINS];
            for &x in sample.iter().filter(|x| x.is_finite()) {
                counts[bin_of(x as f64)] += 1.0;
            }
            let total = sample.len().max(1) as f64;
            counts.iter().map(|c| c / total).collect()
        })
        .collect();
    let ymax = shares
        .iter()
        .flatten()
        .copied()
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.08;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x_px = |x: f64| LEFT + (x - lo) / (hi - lo) * plot_w;
    let y_px = |y: f64| TOP + plot_h - y / ymax * plot_h;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let title = format!(
        "Score distributions ({axis}): {} candidates, {} filter order, {} queries",
        audit.retriever, audit.filter_order, audit.queries.mined
    );
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="28" font-size="15" font-weight="bold">{}</text>"#,
        escape(&title)
    );
    // Axes and ticks.
    let _ = writeln!(
        s,
        r##"<path d="M{LEFT},{TOP} V{} H{}" fill="none" stroke="#333"/>"##,
        TOP + plot_h,
        LEFT + plot_w
    );
    let step = nice_step(hi - lo, 6.0);
    let mut t = (lo / step).ceil() * step;
    while t <= hi + step * 1e-9 {
        let x = x_px(t);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#333"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 5.0,
            TOP + plot_h + 19.0,
            trim_number(t, step)
        );
        t += step;
    }
    let ystep = nice_step(ymax, 5.0);
    let mut t = 0.0;
    while t <= ymax {
        let y = y_px(t);
        let _ = writeln!(
            s,
            r##"<line x1="{}" y1="{y:.1}" x2="{LEFT}" y2="{y:.1}" stroke="#333"/><line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{:.0}%</text>"##,
            LEFT - 5.0,
            LEFT + plot_w,
            LEFT - 8.0,
            y + 4.0,
            t * 100.0
        );
        t += ystep;
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">score ({})</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 18.0,
        escape(axis)
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(18,{}) rotate(-90)" text-anchor="middle">share of the distribution per bin</text>"#,
        TOP + plot_h / 2.0
    );
    // Histograms as filled steps, then medians.
    for (k, share) in shares.iter().enumerate() {
        if series[k].1.is_empty() {
            continue;
        }
        let mut d = format!("M{:.1},{:.1}", x_px(lo), y_px(0.0));
        for (b, &v) in share.iter().enumerate() {
            let x0 = x_px(lo + b as f64 * width);
            let x1 = x_px(lo + (b + 1) as f64 * width);
            let y = y_px(v);
            let _ = write!(d, " L{x0:.1},{y:.1} L{x1:.1},{y:.1}");
        }
        let _ = write!(d, " L{:.1},{:.1} Z", x_px(hi), y_px(0.0));
        let _ = writeln!(
            s,
            r#"<path d="{d}" fill="{c}" fill-opacity="0.25" stroke="{c}" stroke-width="1.5"/>"#,
            c = COLOURS[k]
        );
        if let Some(m) = median(series[k].1) {
            let x = x_px(m);
            let _ = writeln!(
                s,
                r#"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{}" stroke="{}" stroke-width="1.5" stroke-dasharray="5,4"/>"#,
                TOP + plot_h,
                COLOURS[k]
            );
        }
    }
    // Legend.
    let lx = LEFT + plot_w + 20.0;
    for (k, (name, _)) in series.iter().enumerate() {
        let y = TOP + 10.0 + k as f64 * 42.0;
        let _ = writeln!(
            s,
            r##"<rect x="{lx}" y="{y}" width="14" height="14" fill="{c}" fill-opacity="0.4" stroke="{c}"/><text x="{tx}" y="{y1}">{name}</text><text x="{tx}" y="{y2}" fill="#555">n = {n}</text>"##,
            c = COLOURS[k],
            tx = lx + 20.0,
            y1 = y + 11.0,
            y2 = y + 26.0,
            n = counts[k]
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="{lx}" y="{}" fill="#555">dashed: medians</text>"##,
        TOP + 10.0 + 3.0 * 42.0 + 4.0
    );
    s.push_str("</svg>\n");
    s
}

fn trim_number(x: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    let v = if x.abs() < step * 1e-6 { 0.0 } else { x };
    format!("{v:.decimals$}")
}

/// A self-contained HTML page (no network: styles and a few lines of script are
/// inline): the pictures (teacher and candidate source when rescored), the drop
/// counts and quantiles, the held-out positives, the queries traced in full (a
/// seeded sample and the worst by margin, each collapsible) and the JSON report.
/// Every text is escaped.
pub fn html(audit: &Audit) -> String {
    let mut s = String::new();
    s.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>dredge mine report</title>\n");
    s.push_str(
        "<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}\
         td,th{border:1px solid #ccc;padding:4px 10px;text-align:right;vertical-align:top}th{background:#f4f4f4}\
         td:first-child,th:first-child{text-align:left}pre{background:#f8f8f8;padding:1em;overflow:auto}\
         td.text{text-align:left;max-width:60em;white-space:pre-wrap}td.id{text-align:left}\
         details.query{border:1px solid #ddd;margin:.4em 0;padding:.3em .6em}details.query>summary{cursor:pointer}\
         .gap{color:#a33}.muted{color:#666}tr.dropped td{background:#fff6f0}tr.kept td{background:#f2fbf5}</style>\n</head><body>\n",
    );
    let teacher = audit
        .teacher
        .as_ref()
        .map(|t| {
            format!(
                " Candidates and positives rescored by the teacher <b>{}</b> ({}): the filters compared its scores; {} pairs scored in {:.1} s.",
                escape(&t.name),
                t.kind,
                t.pairs,
                t.seconds
            )
        })
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "<h1>dredge mine</h1>\n<p>{} queries mined with <b>{}</b> candidates (depth {}), <b>{}</b> filter order; {} negatives written for {} queries.{teacher}</p>",
        audit.queries.mined,
        escape(&audit.retriever),
        audit.config.depth,
        audit.filter_order,
        audit.negatives,
        audit.queries.written
    );
    s.push_str(&svg(audit));
    if let Some(picture) = retriever_svg(audit) {
        s.push_str(&picture);
    }
    s.push_str("<h2>Candidates dropped</h2>\n<table><tr><th>filter</th><th>dropped</th><th>share of candidates</th></tr>\n");
    let pct = |n: u64| {
        if audit.candidates == 0 {
            0.0
        } else {
            100.0 * n as f64 / audit.candidates as f64
        }
    };
    for f in Filter::ALL {
        let n = audit.drops.get(f);
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{n}</td><td>{:.2}%</td></tr>",
            f.as_str(),
            pct(n)
        );
    }
    let _ = writeln!(
        s,
        "<tr><td>not sampled</td><td>{}</td><td>{:.2}%</td></tr></table>",
        audit.not_sampled,
        pct(audit.not_sampled)
    );
    s.push_str("<h2>Scores</h2>\n<table><tr><th></th><th>n</th><th>min</th><th>p5</th><th>p25</th><th>median</th><th>p75</th><th>p95</th><th>max</th></tr>\n");
    let cell = |v: Option<f64>| v.map_or("".to_owned(), |v| format!("{v:.4}"));
    let mut reports = vec![(
        audit
            .teacher
            .as_ref()
            .map_or(String::new(), |t| format!(" ({})", escape(&t.name))),
        &audit.scores,
    )];
    if let Some(r) = &audit.retriever_scores {
        reports.push((format!(" ({})", escape(&audit.retriever)), r));
    }
    for (by, report) in reports {
        for (name, q) in [
            ("positives", &report.positives),
            ("kept negatives", &report.kept),
            ("dropped candidates", &report.dropped),
        ] {
            let _ = writeln!(
                s,
                "<tr><td>{name}{by}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                q.count,
                cell(q.min),
                cell(q.p05),
                cell(q.p25),
                cell(q.median),
                cell(q.p75),
                cell(q.p95),
                cell(q.max)
            );
        }
    }
    s.push_str("</table>\n");
    if let Some(h) = &audit.holdout {
        let rate = h
            .false_negative_rate
            .map_or("n/a".to_owned(), |r| format!("{:.4}%", 100.0 * r));
        let _ = writeln!(
            s,
            "<h2>Held-out positives</h2>\n<p>False-negative rate <b>{rate}</b>: {} of {} negatives written for {} queries with held-out positives are held-out positives. Of {} held-out positives, {} were retrieved and {} caught by filters.</p>",
            h.false_negatives,
            h.negatives,
            h.queries,
            h.positives,
            h.in_candidates,
            h.dropped.total()
        );
    }
    queries(&mut s, audit);
    // The JSON report without the traced queries (shown above; they are in the
    // `--report` file).
    let mut json = serde_json::to_value(audit).expect("the audit serialises");
    if let Some(map) = json.as_object_mut() {
        map.remove("query_audit");
    }
    let _ = writeln!(
        s,
        "<h2>Report</h2>\n<details><summary>JSON (without the queries above)</summary><pre>{}</pre></details>",
        escape(&serde_json::to_string_pretty(&json).expect("JSON serialises"))
    );
    s.push_str(QUERY_SCRIPT);
    s.push_str("</body></html>\n");
    s
}

/// Opens or closes every query at once, and marks the page as ready (the browser
/// test reads the mark).
const QUERY_SCRIPT: &str = "<script>\n(function () {\n  var all = document.querySelectorAll('details.query');\n  function set(open) { for (var i = 0; i < all.length; i++) { all[i].open = open; } }\n  var expand = document.getElementById('expand-all');\n  var collapse = document.getElementById('collapse-all');\n  if (expand) { expand.addEventListener('click', function () { set(true); }); }\n  if (collapse) { collapse.addEventListener('click', function () { set(false); }); }\n  document.body.setAttribute('data-queries-shown', String(all.length));\n})();\n</script>\n";

fn score_cell(v: Option<f32>) -> String {
    v.map_or_else(String::new, |v| format!("{v:.4}"))
}

/// The traced queries, each a collapsible block.
fn queries(s: &mut String, audit: &Audit) {
    let qa = &audit.query_audit;
    let rescored = audit.teacher.is_some();
    s.push_str("<h2>Queries</h2>\n");
    let _ = writeln!(
        s,
        "<p class=\"muted\">{}. Gap = positive score - hardest negative&#39;s score{}.</p>",
        escape(qa.definition),
        if rescored { " (teacher scores)" } else { "" }
    );
    s.push_str("<p><button type=\"button\" id=\"expand-all\">expand all</button> <button type=\"button\" id=\"collapse-all\">collapse all</button></p>\n");
    for (title, id, list) in [
        ("Sampled queries", "sampled", &qa.sampled),
        ("Worst queries by margin", "worst", &qa.worst),
    ] {
        let _ = writeln!(s, "<h3 id=\"{id}\">{title} ({})</h3>", list.len());
        if list.is_empty() {
            s.push_str("<p class=\"muted\">none</p>\n");
        }
        for t in list {
            query_block(s, t, id, rescored);
        }
    }
}

fn query_block(s: &mut String, t: &QueryTrace, list: &str, rescored: bool) {
    let gap = t.gap.map_or(String::new(), |g| {
        format!(" <span class=\"gap\">gap {g:.4}</span>")
    });
    let status = match (t.short, t.written) {
        (_, false) => " <span class=\"muted\">(short, left out)</span>",
        (true, true) => " <span class=\"muted\">(short)</span>",
        _ => "",
    };
    let _ = writeln!(
        s,
        "<details class=\"query\" data-list=\"{list}\" data-qid=\"{}\"><summary><b>{}</b>: <span class=\"qtext\">{}</span>{gap}{status}</summary>",
        escape(&t.qid),
        escape(&t.qid),
        escape(&t.query)
    );
    let _ = writeln!(
        s,
        "<p>positive score {} &middot; hardest negative {} &middot; {} negatives, {} dropped, {} passed the filters but not picked</p>",
        score_cell(t.positive_score),
        score_cell(t.hardest_negative),
        t.negatives.len(),
        t.dropped.len(),
        t.not_sampled
    );
    for (caption, class, docs) in [
        ("Positives", "positive", &t.positives),
        ("Negatives chosen", "kept", &t.negatives),
        ("Candidates dropped", "dropped", &t.dropped),
    ] {
        let _ = writeln!(s, "<h4>{caption} ({})</h4>", docs.len());
        if docs.is_empty() {
            continue;
        }
        s.push_str("<table><tr><th>rank</th>");
        if rescored {
            s.push_str("<th>retriever rank</th>");
        }
        s.push_str("<th>id</th><th>score</th>");
        if rescored {
            s.push_str("<th>retriever score</th>");
        }
        s.push_str("<th>filter</th><th>text</th></tr>\n");
        for d in docs {
            let rank = |r: Option<usize>| r.map_or(String::new(), |r| r.to_string());
            let _ = write!(s, "<tr class=\"{class}\"><td>{}</td>", rank(d.rank));
            if rescored {
                let _ = write!(s, "<td>{}</td>", rank(d.retriever_rank));
            }
            let _ = write!(
                s,
                "<td class=\"id\">{}</td><td>{}</td>",
                d.id.as_deref().map_or("(external)".to_owned(), escape),
                score_cell(d.score)
            );
            if rescored {
                let _ = write!(s, "<td>{}</td>", score_cell(d.retriever_score));
            }
            let filter = match (d.filter, d.padded) {
                (Some(f), _) => f,
                (None, true) => "(padding)",
                _ => "",
            };
            let _ = writeln!(
                s,
                "<td>{filter}</td><td class=\"text\">{}{}</td></tr>",
                escape(&d.text),
                if d.truncated { " &hellip;" } else { "" }
            );
        }
        s.push_str("</table>\n");
    }
    s.push_str("</details>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_step(10.0, 5.0), 2.0);
        assert_eq!(nice_step(0.3, 6.0), 0.05);
        assert_eq!(nice_step(0.0, 6.0), 1.0);
        assert_eq!(trim_number(0.30000000000000004, 0.05), "0.30");
        assert_eq!(trim_number(-1e-12, 0.5), "0.0");
        assert_eq!(
            escape("a<b & \"c\" 'd'"),
            "a&lt;b &amp; &quot;c&quot; &#39;d&#39;"
        );
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), Some(2.5));
    }
}

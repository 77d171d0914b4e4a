//! Self-contained HTML reports: a bar chart (inline SVG, no scripts, no network) and the full table.

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// One bar: label, value (for length), and the text printed next to it.
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub text: String,
}

fn svg_bars(bars: &[Bar]) -> String {
    let max = bars.iter().map(|b| b.value).fold(0.0f64, f64::max);
    let row_h = 22.0;
    let (label_w, bar_w) = (300.0, 520.0);
    let h = row_h * bars.len() as f64 + 10.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{h}\" role=\"img\" font-family=\"sans-serif\" font-size=\"12\">",
        label_w + bar_w + 140.0
    );
    for (i, b) in bars.iter().enumerate() {
        let y = 5.0 + i as f64 * row_h;
        let w = if max > 0.0 { b.value / max * bar_w } else { 0.0 };
        let label: String = b.label.chars().take(44).collect();
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><rect x=\"{}\" y=\"{}\" width=\"{w:.1}\" height=\"{}\" fill=\"#4f6bd8\"><title>{}: {}</title></rect><text x=\"{}\" y=\"{}\">{}</text>",
            label_w - 8.0,
            y + 15.0,
            esc(&label),
            label_w,
            y + 3.0,
            row_h - 6.0,
            esc(&b.label),
            esc(&b.text),
            label_w + w + 6.0,
            y + 15.0,
            esc(&b.text)
        ));
    }
    s.push_str("</svg>");
    s
}

/// A whole report page with a bar chart.
pub fn report(
    title: &str,
    summary: &[String],
    chart_title: &str,
    bars: &[Bar],
    header: &[&str],
    rows: &[Vec<String>],
) -> String {
    let body = format!("<h2>{}</h2>{}", esc(chart_title), svg_bars(bars));
    page(title, summary, &body, header, rows)
}

/// A whole report page around `body` (trusted HTML such as an SVG chart) and a table.
pub fn page(title: &str, summary: &[String], body: &str, header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::new();
    s.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    s.push_str(&format!("<title>{}</title>", esc(title)));
    s.push_str("<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#1c2230}h1{font-size:1.4rem}\
        table{border-collapse:collapse;font-size:.85rem}td,th{padding:.25rem .6rem;border-bottom:1px solid #dde}\
        td.n{text-align:right;font-variant-numeric:tabular-nums}code{font-size:.8rem}.sum{color:#445}</style></head><body>");
    s.push_str(&format!("<h1>{}</h1><div class=\"sum\">", esc(title)));
    for line in summary {
        s.push_str(&format!("<div>{}</div>", esc(line)));
    }
    s.push_str("</div>");
    s.push_str(body);
    if header.is_empty() {
        s.push_str("<p class=\"sum\">Made by allonet ");
        s.push_str(env!("CARGO_PKG_VERSION"));
        s.push_str(".</p></body></html>\n");
        return s;
    }
    s.push_str("<h2>All rows</h2><table><thead><tr>");
    for h in header {
        s.push_str(&format!("<th>{}</th>", esc(h)));
    }
    s.push_str("</tr></thead><tbody>");
    for r in rows {
        s.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            let numeric = i > 0 && c.chars().all(|ch| ch.is_ascii_digit() || ".,-+%".contains(ch));
            s.push_str(&format!("<td{}>{}</td>", if numeric { " class=\"n\"" } else { "" }, esc(c)));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table><p class=\"sum\">Made by allonet ");
    s.push_str(env!("CARGO_PKG_VERSION"));
    s.push_str(". Amounts are exact token units; digests are keccak-256 of canonical JSON.</p></body></html>\n");
    s
}

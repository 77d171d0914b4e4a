//! What allonet shows people: terminal tables, amounts printed exactly (or truncated, never rounded up), and
//! self-contained HTML reports (inline SVG, no scripts, no network). The CLI prints them; the HTTP service and
//! dashboard serve the same pages. It renders results the engine computed and decides nothing.

pub mod bench;
pub mod chain;
pub mod demo;
pub mod flow;
pub mod gov;
pub mod html;
pub mod model;
pub mod results;
pub mod treasury;

use allonet_core::Digest;
use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Table};

/// A terminal table in allonet's style.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
    t.set_header(header.iter().map(Cell::new).collect::<Vec<_>>());
    t
}

pub fn right(t: &mut Table, cols: &[usize]) {
    for &c in cols {
        if let Some(col) = t.column_mut(c) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// How many rows to show by default.
pub fn rows_to_show(top: Option<usize>, n: usize) -> usize {
    top.unwrap_or(if n <= 40 { n } else { 20 }).min(n)
}

pub fn digests_line(input: &Digest, output: &Digest) -> String {
    format!("input digest  {input}\noutput digest {output}")
}

/// Exact amount with thousands separators (payouts are never rounded for display).
pub fn exact(token: &allonet_core::Token, units: alloy_primitives::U256) -> String {
    group_thousands(&token.format(allonet_core::TokenAmount(units)))
}

/// A text cut to `n` characters with an ellipsis.
pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n.saturating_sub(1)).collect::<String>())
    }
}

/// A long hash or address shortened for tables: `0x12345678…abcd`.
pub fn short(h: &str) -> String {
    if h.len() > 14 {
        format!("{}…{}", &h[..10], &h[h.len() - 4..])
    } else {
        h.to_string()
    }
}

/// Thousands separators for a decimal string such as `1234567.891`.
pub fn group_thousands(s: &str) -> String {
    let (int, frac) = match s.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let mut out = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// A token amount rounded for display to `places` decimals, grouped.
pub fn show_amount(token: &allonet_core::Token, a: allonet_core::TokenAmount, places: usize) -> String {
    let s = token.format(a);
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    if places == 0 || frac.is_empty() {
        return group_thousands(int);
    }
    // truncate, not round, so the displayed total never exceeds the exact one
    let f: String = frac.chars().chain(std::iter::repeat('0')).take(places).collect();
    group_thousands(&format!("{int}.{f}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_grouped_exactly_and_truncated_never_rounded_up() {
        assert_eq!(group_thousands("1234567.891"), "1,234,567.891");
        let usdc = allonet_core::Token::new("USDC", 6);
        let a = usdc.parse("1999.999999").unwrap();
        assert_eq!(show_amount(&usdc, a, 2), "1,999.99");
        assert_eq!(exact(&usdc, a.units()), "1,999.999999");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(short("0x1234567890abcdef1234"), "0x12345678…1234");
    }
}

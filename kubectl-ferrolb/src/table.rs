//! Hand-aligned columns, as `kubectl get` prints them: each column as wide as its widest cell,
//! two spaces apart, no trailing blanks.

/// Renders `header` and `rows` (each as long as `header`) as aligned lines.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    std::iter::once(&header)
        .chain(rows)
        .map(|row| {
            let line: String = row
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}  "))
                .collect();
            format!("{}\n", line.trim_end())
        })
        .collect()
}

/// A cell for an optional value: the value, or `-`.
pub fn or_dash(v: Option<impl ToString>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let out = render(
            &["NAME", "STATE"],
            &[
                vec!["a-long-name".into(), "Established".into()],
                vec!["b".into(), "Active".into()],
            ],
        );
        assert_eq!(
            out,
            "NAME         STATE\na-long-name  Established\nb            Active\n"
        );
    }
}

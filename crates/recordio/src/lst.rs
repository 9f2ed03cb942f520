use std::fmt::Write as _;

/// One line of an image list: `INDEX\tLABEL_1\t…\tLABEL_N\tPATH`.
#[derive(Debug, Clone, PartialEq)]
pub struct LstEntry {
    pub index: u64,
    pub labels: Vec<f64>,
    pub path: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LstError {
    #[error("expected INDEX<TAB>LABEL…<TAB>PATH (at least 3 tab-separated fields), found {0}")]
    TooFewFields(usize),
    #[error("index {0:?} is not a non-negative integer")]
    BadIndex(String),
    #[error("label {0:?} is not a number")]
    BadLabel(String),
    #[error(
        "label {0:?} is not a finite number a 32-bit float holds (records store labels as float32)"
    )]
    LabelOutOfRange(String),
    #[error("empty path")]
    EmptyPath,
}

/// Formats a line as im2rec.py's `write_list` does (`%d`, `%f` labels, path).
pub fn format_lst_line(entry: &LstEntry) -> String {
    let mut line = format!("{}\t", entry.index);
    for l in &entry.labels {
        let _ = write!(line, "{}\t", format_label(*l));
    }
    line.push_str(&entry.path);
    line.push('\n');
    line
}

/// Python's `'%f' % x`.
fn format_label(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{x:.6}")
    }
}

/// Parses one line the way im2rec.py's `read_list` does: fields are split on
/// tabs and stripped; the first is the index, the last the path, the ones in
/// between float labels. Returns `Ok(None)` for a blank line.
pub fn parse_lst_line(line: &str) -> Result<Option<LstEntry>, LstError> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
    if fields.len() < 3 {
        return Err(LstError::TooFewFields(fields.len()));
    }
    let index = fields[0]
        .parse::<u64>()
        .map_err(|_| LstError::BadIndex(fields[0].to_string()))?;
    let labels = fields[1..fields.len() - 1]
        .iter()
        .map(|f| {
            let v = f
                .parse::<f64>()
                .map_err(|_| LstError::BadLabel(f.to_string()))?;
            // NaN, inf, or beyond float32 (stored as inf)
            match v.is_finite() && v.abs() <= f32::MAX as f64 {
                true => Ok(v),
                false => Err(LstError::LabelOutOfRange(f.to_string())),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let path = fields[fields.len() - 1];
    if path.is_empty() {
        return Err(LstError::EmptyPath);
    }
    Ok(Some(LstEntry {
        index,
        labels,
        path: path.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_im2rec() {
        let e = LstEntry {
            index: 12,
            labels: vec![5.0, 0.125, -1.0],
            path: "c5/img 1.jpg".into(),
        };
        let s = format_lst_line(&e);
        assert_eq!(s, "12\t5.000000\t0.125000\t-1.000000\tc5/img 1.jpg\n");
        assert_eq!(parse_lst_line(&s).unwrap(), Some(e));
    }

    #[test]
    fn parse_errors_and_blank_lines() {
        assert_eq!(parse_lst_line("  \n").unwrap(), None);
        assert_eq!(parse_lst_line("1\ta.jpg"), Err(LstError::TooFewFields(2)));
        assert_eq!(
            parse_lst_line("x\t1\ta.jpg"),
            Err(LstError::BadIndex("x".into()))
        );
        assert_eq!(
            parse_lst_line("-1\t1\ta.jpg"),
            Err(LstError::BadIndex("-1".into()))
        );
        assert_eq!(
            parse_lst_line("1\tcat\ta.jpg"),
            Err(LstError::BadLabel("cat".into()))
        );
        for bad in ["nan", "inf", "-inf", "1e40"] {
            assert_eq!(
                parse_lst_line(&format!("1\t{bad}\ta.jpg")),
                Err(LstError::LabelOutOfRange(bad.into()))
            );
        }
        // whitespace around fields is stripped, as Python's strip() does
        let e = parse_lst_line("3\t 2.5 \t sub/b.png \r\n")
            .unwrap()
            .unwrap();
        assert_eq!(e.labels, vec![2.5]);
        assert_eq!(e.path, "sub/b.png");
    }
}

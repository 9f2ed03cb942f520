use std::io::{self, Write};

/// One line of an `.idx` file: `KEY\tOFFSET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdxEntry {
    pub key: u64,
    pub offset: u64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("line {line}: {message}")]
pub struct IdxError {
    pub line: usize,
    pub message: String,
}

/// Writes one `.idx` line as MXNet's `MXIndexedRecordIO.write_idx` does.
pub fn write_idx_line<W: Write>(w: &mut W, key: u64, offset: u64) -> io::Result<()> {
    writeln!(w, "{key}\t{offset}")
}

/// Parses a whole `.idx` file. Blank lines are ignored.
pub fn parse_idx(text: &str) -> Result<Vec<IdxEntry>, IdxError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let err = |message: String| IdxError {
            line: i + 1,
            message,
        };
        let mut parts = line.split('\t');
        let (Some(k), Some(o), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(err(format!("expected KEY<TAB>OFFSET, found {line:?}")));
        };
        let key = k
            .trim()
            .parse()
            .map_err(|_| err(format!("key {k:?} is not a non-negative integer")))?;
        let offset = o
            .trim()
            .parse()
            .map_err(|_| err(format!("offset {o:?} is not a non-negative integer")))?;
        out.push(IdxEntry { key, offset });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_errors() {
        let mut buf = Vec::new();
        write_idx_line(&mut buf, 3, 0).unwrap();
        write_idx_line(&mut buf, 10, 4096).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(text, "3\t0\n10\t4096\n");
        assert_eq!(
            parse_idx(&text).unwrap(),
            vec![
                IdxEntry { key: 3, offset: 0 },
                IdxEntry {
                    key: 10,
                    offset: 4096
                }
            ]
        );
        assert_eq!(parse_idx("1\t2\n\nx\t3\n").unwrap_err().line, 3);
        assert_eq!(parse_idx("1 2\n").unwrap_err().line, 1);
    }
}

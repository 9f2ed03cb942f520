//! (reader to come)
use super::{ParseError, Parsed};
pub fn read(root: &std::path::Path) -> Result<Parsed, ParseError> {
    Err(ParseError::new(root.display().to_string(), "not yet"))
}

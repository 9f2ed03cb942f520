//! (reader to come)
use super::{ParseError, Parsed};
pub fn read(file: &std::path::Path, _images: &std::path::Path) -> Result<Parsed, ParseError> {
    Err(ParseError::new(file.display().to_string(), "not yet"))
}

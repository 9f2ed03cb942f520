//! (reader to come)
use super::{ParseError, Parsed};
pub struct VocOptions {
    pub one_based: bool,
}
pub fn read_layout(root: &std::path::Path, _o: &VocOptions) -> Result<Parsed, ParseError> {
    Err(ParseError::new(root.display().to_string(), "not yet"))
}

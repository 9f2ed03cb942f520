//! (reader to come)

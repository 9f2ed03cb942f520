//! A drop-in for MXNet's `tools/im2rec.py`: `--list` makes image lists,
//! otherwise every `PREFIX*.lst` is packed into `.rec` + `.idx`.

mod list;
mod pack;
mod remote;
mod run;

pub use list::{list_images, make_lists, ListOptions, ListSummary, Listing};
pub use pack::{
    find_lists, pack_list, validate_list, ListStats, LstReader, PackOptions, PackSummary,
};
pub use remote::RemotePrefix;
pub use run::{list_prefix, pack_prefix};

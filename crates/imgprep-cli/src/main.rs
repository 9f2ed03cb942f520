//! The `imgprep` binary: everything is in the library half of this crate,
//! shared with the Python module's `imgprep` command.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(imgprep_cli::run(std::env::args_os()))
}

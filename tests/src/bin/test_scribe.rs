//! Shim: the real `scribe` entry point.
fn main() -> std::process::ExitCode {
    scribe_client::cli::main()
}

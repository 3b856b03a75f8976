//! `scribe`: see the `scribe_client` library.
fn main() -> std::process::ExitCode {
    scribe_client::cli::main()
}

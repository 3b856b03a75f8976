//! `scribe`: see the `scribe_cli` library.
fn main() -> std::process::ExitCode {
    scribe_cli::main()
}

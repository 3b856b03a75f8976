//! Shim: the real `scribe` entry point.
fn main() -> std::process::ExitCode {
    scribe_cli::main()
}

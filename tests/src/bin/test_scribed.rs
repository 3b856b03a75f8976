//! Shim: the real `scribed` entry point.
fn main() -> std::process::ExitCode {
    scribe_arbiter::cli::main()
}

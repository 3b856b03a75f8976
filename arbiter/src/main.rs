//! `scribed`: see the `scribe_arbiter` library.
fn main() -> std::process::ExitCode {
    scribe_arbiter::cli::main()
}

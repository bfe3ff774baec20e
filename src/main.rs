//! The `hostler` binary: parse, run, map to an exit code. A closed stdout is not an error.

use std::process::ExitCode;

fn main() -> ExitCode {
    // A password in $HOSTLER_DB leaves this process's environment before anything else runs.
    hostler::environ::scrub();
    let argv: Vec<String> = std::env::args().collect();
    let cli = match hostler::cli::parse(&argv) {
        Ok(cli) => cli,
        Err(code) => return ExitCode::from(code),
    };
    match hostler::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) if hostler::cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hostler: {e:#}");
            ExitCode::FAILURE
        }
    }
}

//! The `hostler` binary: parse, run, map to an exit code. A closed stdout is not an error.

use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let cli = match hostler::cli::parse(&argv) {
        Ok(cli) => cli,
        Err(code) => return ExitCode::from(code),
    };
    // A password in $HOSTLER_DB leaves this process's environment before anything else runs
    // (parsing the command line reads no environment), and the daemon gets its allocator's
    // settings.
    hostler::environ::scrub(hostler::cli::is_daemon(&cli));
    match hostler::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) if hostler::cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hostler: {e:#}");
            ExitCode::FAILURE
        }
    }
}

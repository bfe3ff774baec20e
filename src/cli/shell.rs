//! `hostler shell`: the interactive script shell (see [`crate::shell`]).

use argh::FromArgs;

use super::App;

/// an interactive shell with the script API, tab completion and history; usable as a login
/// shell
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "shell")]
pub struct ShellCmd {
    /// run this code and exit with its status (a check result's Nagios code, 1 on error)
    #[argh(option, short = 'c', long = "command")]
    pub command: Option<String>,
}

pub fn run(app: &App, cmd: ShellCmd) -> anyhow::Result<u8> {
    crate::shell::run(app, cmd.command)
}

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
    let verbs = crate::shell::Verbs {
        schedule: schedule_verb,
    };
    crate::shell::run(app, verbs, cmd.command)
}

/// The shell's `:schedule ARGS`: `hostler schedule ARGS`, its errors on one line.
fn schedule_verb(app: &App, args: &[&str]) -> anyhow::Result<()> {
    match super::schedule::ScheduleCmd::from_args(&["schedule"], args) {
        Ok(cmd) => super::schedule::schedule(app, cmd).map(|_| ()),
        Err(e) => Err(anyhow::anyhow!("{}", e.output.trim())),
    }
}

//! The command line: argh subcommands, one file per group, all thin. Each parses, calls the
//! store or the script runner, and prints. `--json` on every listing.

mod apply;
mod depend;
mod downtime;
mod fanout;
mod heartbeat;
mod host;
mod host_edit;
mod init;
mod key;
mod notify;
mod output;
mod prune;
mod queue;
mod run;
mod schedule;
mod script;
mod serve;
mod shell;
mod sql;
mod status;
mod upgrade;
mod user;

pub use crate::app::App;

use std::path::PathBuf;

use argh::FromArgs;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// hostler monitors hosts and services, and corrects them: scripts stored in its database run
/// in a sandbox against hosts over one expect API.
///
/// Start with `hostler serve` (it seeds a demo on an empty database), or `hostler init` and
/// `hostler run check_disk --host localhost` for one check.
// The doc comments are argh's help text: `[database] url` is a config section, not a link.
#[allow(rustdoc::broken_intra_doc_links)]
#[derive(FromArgs, Debug)]
pub struct Cli {
    /// the database: a SQLite file path, postgres://USER:PASSWORD@HOST[:PORT]/DB,
    /// mssql://USER:PASSWORD@HOST/DATABASE (SQL Server 2005+) or
    /// sqlxml+http(s)://USER:PASSWORD@SERVER/VROOT (SQL Server 2000); default:
    /// $HOSTLER_DB, the config's [database] url, or ./hostler.db
    #[argh(option)]
    pub db: Option<String>,
    /// the TOML config file (default: $HOSTLER_CONFIG, or none)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// log more (debug level) to stderr; RUST_LOG overrides
    #[argh(switch, short = 'v')]
    pub verbose: bool,
    /// print what runs and hosts sent as it is, control characters and all (by default they
    /// are shown as visible escapes such as \x1b, so a host's output cannot drive the
    /// terminal)
    #[argh(switch)]
    pub raw: bool,
    #[argh(subcommand)]
    pub command: Command,
}

// Parsed once per process: boxing the larger commands' options would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Init(init::InitCmd),
    Host(host::HostCmd),
    Script(script::ScriptCmd),
    Run(run::RunCmd),
    Queue(queue::QueueCmd),
    Runs(queue::RunsCmd),
    ShowRun(queue::ShowRunCmd),
    Sql(sql::SqlCmd),
    Serve(serve::ServeCmd),
    Status(status::StatusCmd),
    Depend(depend::DependCmd),
    Heartbeat(heartbeat::HeartbeatCmd),
    Notify(notify::NotifyCmd),
    Apply(apply::ApplyCmd),
    Export(apply::ExportCmd),
    Exec(heartbeat::ExecCmd),
    Downtime(downtime::DowntimeCmd),
    Ack(downtime::AckCmd),
    Guard(downtime::GuardCmd),
    Schedule(schedule::ScheduleCmd),
    ScheduleEdit(schedule::EditCmd),
    Schedules(schedule::SchedulesCmd),
    Cancel(schedule::CancelCmd),
    Shell(shell::ShellCmd),
    User(user::UserCmd),
    Key(key::KeyCmd),
}

/// Parses argv; on `--help` or a usage error, prints and returns the exit code to use.
///
/// As a login shell: login(1) starts it with an `argv[0]` beginning with `-`, and `ssh host cmd`
/// or `su -c cmd` run `hostler -c cmd`; both mean the shell.
pub fn parse(argv: &[String]) -> Result<Cli, u8> {
    let login = argv.first().is_some_and(|a| a.starts_with('-'));
    // Global options may come before `-c`, as in `hostler --db x.db -c CODE`.
    let mut global = Cli {
        db: None,
        config: None,
        verbose: false,
        raw: false,
        command: Command::Shell(shell::ShellCmd { command: None }),
    };
    let mut i = 1;
    while i < argv.len() {
        match argv[i].as_str() {
            "--db" if i + 1 < argv.len() => global.db = Some(argv[i + 1].clone()),
            "--config" if i + 1 < argv.len() => global.config = Some(argv[i + 1].clone().into()),
            "-v" | "--verbose" => global.verbose = true,
            "--raw" => global.raw = true,
            "--version" | "-V" => {
                println!("hostler {}", env!("CARGO_PKG_VERSION"));
                return Err(0);
            }
            _ => break,
        }
        i += if matches!(argv[i].as_str(), "--db" | "--config") {
            2
        } else {
            1
        };
    }
    let dash_c = argv.get(i).is_some_and(|a| a == "-c");
    if login || dash_c {
        if dash_c {
            match argv.get(i + 1) {
                Some(c) => {
                    global.command = Command::Shell(shell::ShellCmd {
                        command: Some(c.clone()),
                    })
                }
                None => {
                    eprintln!("hostler: -c needs code to run");
                    return Err(2);
                }
            }
        }
        return Ok(global);
    }
    let name = argv
        .first()
        .map_or("hostler", |s| s.rsplit('/').next().unwrap_or("hostler"));
    // argh takes a lone `-` for an unknown option; as a FILE it means stdin.
    let mut rest: Vec<&str> = argv
        .iter()
        .skip(1)
        .map(|a| if a == "-" { "/dev/stdin" } else { a.as_str() })
        .collect();
    if let Some(verb) = verb_index(&rest)
        && let Some((_, now)) = ALIASES.iter().find(|(old, _)| *old == rest[verb])
    {
        rest[verb] = now;
    }
    // `hostler schedule edit ID` is `schedule-edit` (so a script named "edit" is scheduled
    // from the page or the API, not from this verb).
    if let Some(verb) = verb_index(&rest)
        && rest[verb] == "schedule"
        && rest.get(verb + 1) == Some(&"edit")
    {
        rest[verb] = "schedule-edit";
        rest.remove(verb + 1);
    }
    let rest = hoist_globals(name, rest);
    Cli::from_args(&[name], &rest).map_err(|e| match e.status {
        Ok(()) => {
            println!("{}", e.output);
            0
        }
        Err(()) => {
            let msg = e.output.trim_end();
            eprintln!("{msg}");
            let path = command_path(name, &rest);
            if let Some(bad) = msg.strip_prefix("Unrecognized argument: ")
                && let Some(good) = suggest(name, &path, bad)
            {
                eprintln!("Did you mean '{good}'?");
            }
            let mut help = vec![name];
            help.extend(&path);
            eprintln!("Run '{} --help' for usage.", help.join(" "));
            2
        }
    })
}

/// The usage line of a subcommand's help (`Usage: hostler runs [--host <host>] ...`).
fn usage(name: &str, path: &[&str]) -> String {
    let mut args: Vec<&str> = path.to_vec();
    args.push("--help");
    match Cli::from_args(&[name], &args) {
        Err(e) => e.output.lines().next().unwrap_or_default().to_string(),
        Ok(_) => String::new(),
    }
}

/// Global options given after the subcommand (`hostler runs --db x.db`, `hostler status -v`)
/// moved before it, unless the subcommand has an option of that name: then it is the
/// subcommand's. An option's value, and everything after `--`, stays where it is.
fn hoist_globals<'a>(name: &str, rest: Vec<&'a str>) -> Vec<&'a str> {
    let Some(verb) = verb_index(&rest) else {
        return rest;
    };
    let is_global = |a: &str| matches!(a, "--db" | "--config" | "--raw" | "--verbose" | "-v");
    if !rest[verb..].iter().any(|a| is_global(a)) {
        return rest;
    }
    let path = command_path(name, &rest);
    let usage = usage(name, &path);
    let own =
        |opt: &str| usage.contains(&format!("[{opt}]")) || usage.contains(&format!("[{opt} <"));
    let takes_value = |opt: &str| usage.contains(&format!("{opt} <"));
    let mut front: Vec<&str> = rest[..verb].to_vec();
    let mut back: Vec<&str> = Vec::new();
    let mut i = verb;
    while i < rest.len() {
        let a = rest[i];
        if a == "--" {
            back.extend(&rest[i..]);
            break;
        }
        if is_global(a) && !own(a) {
            let with_value = matches!(a, "--db" | "--config");
            if with_value && i + 1 >= rest.len() {
                back.push(a);
                break;
            }
            front.push(a);
            if with_value {
                front.push(rest[i + 1]);
                i += 1;
            }
            i += 1;
            continue;
        }
        back.push(a);
        if a.starts_with('-') && takes_value(a) && i + 1 < rest.len() {
            back.push(rest[i + 1]);
            i += 1;
        }
        i += 1;
    }
    front.extend(back);
    front
}

/// The subcommands named in `args` that argh knows (`host add` in `host add --hots x`).
fn command_path<'a>(name: &str, args: &[&'a str]) -> Vec<&'a str> {
    let mut path: Vec<&'a str> = Vec::new();
    let Some(start) = verb_index(args) else {
        return path;
    };
    for word in &args[start..] {
        if word.starts_with('-') {
            break;
        }
        if !help_words(name, &path).iter().any(|(w, _)| w == word) {
            break;
        }
        path.push(word);
    }
    path
}

/// The subcommands and options a command's help lists, each with whether it is an option.
fn help_words(name: &str, path: &[&str]) -> Vec<(String, bool)> {
    let mut args: Vec<&str> = path.to_vec();
    args.push("--help");
    let text = match Cli::from_args(&[name], &args) {
        Err(e) => e.output,
        Ok(_) => return Vec::new(),
    };
    let mut out = Vec::new();
    let mut section = "";
    for line in text.lines() {
        if !line.starts_with(' ') {
            section = line.trim_end_matches(':');
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or("");
        match section {
            "Commands" if !first.is_empty() => out.push((first.to_string(), false)),
            "Options" => {
                for w in line.split_whitespace().take(2) {
                    let w = w.trim_end_matches(',');
                    if w.starts_with("--") {
                        out.push((w.to_string(), true));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The closest subcommand or option to a mistyped one, if any is close enough.
fn suggest(name: &str, path: &[&str], bad: &str) -> Option<String> {
    let option = bad.starts_with('-');
    help_words(name, path)
        .into_iter()
        .filter(|(_, is_option)| *is_option == option)
        .map(|(w, _)| (strsim::damerau_levenshtein(bad, &w), w))
        .filter(|(d, w)| *d <= (w.len() / 3).max(1))
        .min()
        .map(|(_, w)| w)
}

/// Whether a command only reads the database, and so must not create one.
fn reads_only(c: &Command) -> bool {
    match c {
        Command::Queue(_)
        | Command::Runs(_)
        | Command::ShowRun(_)
        | Command::Schedules(_)
        | Command::Status(_) => true,
        Command::Host(h) => matches!(
            h.action,
            host::HostAction::List(_) | host::HostAction::Show(_)
        ),
        Command::Script(s) => matches!(
            s.action,
            script::ScriptAction::List(_)
                | script::ScriptAction::Show(_)
                | script::ScriptAction::Export(_)
        ),
        Command::Downtime(d) => matches!(d.action, downtime::DowntimeAction::List(_)),
        Command::Depend(d) => matches!(d.action, depend::DependAction::List(_)),
        Command::Export(_) => true,
        Command::Heartbeat(h) => matches!(h.action, heartbeat::HeartbeatAction::List(_)),
        Command::User(u) => matches!(u.action, user::UserAction::List(_)),
        _ => false,
    }
}

/// Old or other names of subcommands: one word per thing across the CLI, the page and the
/// API (`queue` is the page's `/queue`, `runs` its `/runs`), with the old words kept.
const ALIASES: &[(&str, &str)] = &[
    ("jobs", "queue"),
    ("history", "runs"),
    ("monitord", "serve"),
];

/// Where the subcommand is in the arguments: the first word that is not a top-level option
/// or an option's value.
fn verb_index(args: &[&str]) -> Option<usize> {
    let mut i = 0;
    while i < args.len() {
        match args[i] {
            "--db" | "--config" => i += 2,
            a if a.starts_with('-') => i += 1,
            _ => return Some(i),
        }
    }
    None
}

/// Whether an error is a closed stdout (`hostler runs | head`), which is not a failure.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Logs go to stderr: warnings for commands, what it does for the daemon; `-v` or RUST_LOG
/// for more.
fn init_logging(verbose: bool, daemon: bool) {
    let default = match (verbose, daemon) {
        (true, _) => "debug",
        (false, true) => "info",
        (false, false) => "warn",
    };
    // `Targets` ("info", "hostler::monitord=debug,warn") rather than EnvFilter: the same
    // syntax for what operators set, without a regex DFA compiler in the binary.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| {
            default
                .parse::<Targets>()
                .expect("a level parses")
                // tiberius logs each server error itself; hostler reports it once, with context.
                .with_target("tiberius", tracing::level_filters::LevelFilter::OFF)
        });
    let fmt = tracing_subscriber::fmt::layer()
        // Colour only on a terminal: journald and log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(filter)
        .try_init();
}

/// Whether the command is the daemon (`serve`).
pub fn is_daemon(cli: &Cli) -> bool {
    matches!(cli.command, Command::Serve(_))
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    let daemon = is_daemon(&cli);
    crate::script::memory::return_large_blocks();
    // Not dumpable: no other process of this user (nor a command a script starts, which also
    // loses CAP_SYS_PTRACE) can read this one's environment (a database URL with its
    // password) or memory through /proc, and no core file holds a secret.
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        tracing::debug!("cannot make the process non-dumpable: {e}");
    }
    init_logging(cli.verbose, daemon);
    // Any local user reads a command line (`ps`): a password never goes there.
    if cli.db.as_deref().is_some_and(crate::redact::has_password) {
        anyhow::bail!(
            "--db holds a password, which every user of this machine can read in ps: put the URL in $HOSTLER_DB or the config's [database] url instead (a PostgreSQL password may also come from ~/.pgpass)"
        );
    }
    output::set_raw(cli.raw);
    let app = App::new(cli.db.clone(), cli.config.clone())?;
    if reads_only(&cli.command) {
        app.require_database()?;
    }
    match cli.command {
        Command::Init(c) => init::run(&app, c),
        Command::Host(c) => host::run(&app, c),
        Command::Script(c) => script::run(&app, c),
        Command::Run(c) => run::run(&app, c),
        Command::Queue(c) => queue::queue(&app, c),
        Command::Runs(c) => queue::runs(&app, c),
        Command::ShowRun(c) => queue::show_run(&app, c),
        Command::Sql(c) => sql::run(&app, c),
        Command::Serve(c) => serve::run(&app, c),
        Command::User(c) => user::run(&app, c),
        Command::Key(c) => key::run(&app, c),
        Command::Status(c) => status::run(&app, c),
        Command::Depend(c) => depend::run(&app, c),
        Command::Heartbeat(c) => heartbeat::run(&app, c),
        Command::Notify(c) => notify::run(&app, c),
        Command::Apply(c) => apply::apply(&app, c),
        Command::Export(c) => apply::export(&app, c),
        Command::Exec(c) => heartbeat::exec(&app, c),
        Command::Downtime(c) => downtime::run(&app, c),
        Command::Ack(c) => downtime::ack(&app, c),
        Command::Guard(c) => downtime::guard(&app, c),
        Command::Schedule(c) => schedule::schedule(&app, c),
        Command::ScheduleEdit(c) => schedule::edit(&app, c),
        Command::Schedules(c) => schedule::schedules(&app, c),
        Command::Cancel(c) => schedule::cancel(&app, c),
        Command::Shell(c) => shell::run(&app, c),
    }
}

pub use crate::when::parse_duration;

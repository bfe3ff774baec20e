//! `hostler serve` (alias `monitord`): the daemon. Seeds the demo on an empty database, then
//! runs monitord until SIGTERM or SIGINT.

use std::sync::Arc;

use argh::FromArgs;
use tracing::{info, warn};

use super::{App, output};
use crate::monitord::{self, DaemonOptions, Reload, Shutdown};
use crate::store::{NewSchedule, Store};
use crate::web;

/// run monitord: claim and run due jobs, fire schedules, correct, notify (until SIGTERM/SIGINT;
/// also: monitord)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "serve")]
pub struct ServeCmd {
    /// run at most this many jobs at once (default: [monitord] max_concurrent, 256)
    #[argh(option)]
    pub max_concurrent: Option<usize>,
    /// this node's name in leases and runs (default: [monitord] node, or the host name)
    #[argh(option)]
    pub node: Option<String>,
    /// do not seed the demo on an empty database
    #[argh(switch)]
    pub no_demo: bool,
    /// serve the web page on this address (default: [web] listen, 127.0.0.1:8080; port 0
    /// picks a free port)
    #[argh(option)]
    pub listen: Option<String>,
    /// run without the web page
    #[argh(switch)]
    pub no_web: bool,
}

/// On a database with no hosts and no schedules: the bundled scripts, a `localhost` host and
/// recurring local checks, so the first start shows live results.
fn seed_demo(store: &Store) -> anyhow::Result<bool> {
    if !store.hosts()?.is_empty() || !store.schedules()?.is_empty() {
        return Ok(false);
    }
    super::init::seed(store)?;
    super::init::add_localhost(store)?;
    for script in ["check_disk", "check_load"] {
        store.add_schedule(&NewSchedule::every(script, Some("localhost"), 60_000))?;
    }
    Ok(true)
}

pub fn run(app: &App, cmd: ServeCmd) -> anyhow::Result<u8> {
    raise_fd_limit();
    let store = app.store()?;
    if !cmd.no_demo && seed_demo(&store)? {
        output::text(&format!(
            "{}: empty database, seeded the demo: host localhost, check_disk and check_load every 60 s",
            app.shown_db()
        ))?;
    }
    let mut opts = DaemonOptions::from_config(&app.config);
    // Channels and routes are checked before anything starts: a typo is told now, not at
    // the first problem.
    opts.channels.plan()?.check_files()?;
    if let Some(n) = cmd.max_concurrent {
        opts.max_concurrent = n.max(1);
    }
    if let Some(n) = cmd.node {
        opts.node = n;
    }
    let web = if cmd.no_web {
        None
    } else {
        Some(start_web(app, &store, cmd.listen.clone(), &opts.health)?)
    };
    // A node without the key file (another machine than the one that made it) says so once,
    // here, rather than in every check that logs in.
    if !store.vault.key_present() {
        match store.stored_secrets() {
            Ok(n) if n > 0 => tracing::error!(
                "key file {} is missing: the stored secrets of {n} hosts cannot be opened, so their logins fail; copy the key file from the node that made it (README: Scaling out), or set $HOSTLER_KEY_FILE",
                store
                    .vault
                    .key_path()
                    .map_or_else(String::new, |p| p.display().to_string())
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot count the stored secrets: {e}"),
        }
    }
    let mut env = app.env(store.clone())?;
    env.node = opts.node.clone();
    let shutdown = Shutdown::default();
    let reload = Reload::default();
    let signals = {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
        let handle = signals.handle();
        let stop = shutdown.clone();
        let (reload, db, path) = (reload.clone(), app.db.clone(), app.config_path.clone());
        let (max_concurrent, node) = (cmd.max_concurrent, opts.node.clone());
        std::thread::spawn(move || {
            for sig in signals.forever() {
                if sig == SIGHUP {
                    // A bad file keeps the running configuration, with the reason logged.
                    match reloaded(&db, path.clone(), &store, max_concurrent, &node) {
                        Ok((env, opts)) => {
                            info!(config = ?path, "SIGHUP: configuration reloaded ([web] and [database] take a restart)");
                            reload.offer(env, opts);
                        }
                        Err(e) => warn!(
                            "SIGHUP: the configuration was not reloaded, the running one stays: {e:#}"
                        ),
                    }
                    continue;
                }
                info!(signal = sig, "stopping");
                stop.request();
                // /sqlxml queries end now, not at their deadline.
                crate::store::sqlite::interrupt_read_only();
                break;
            }
        });
        handle
    };
    eprintln!(
        "hostler serve: node {}, database {}, up to {} jobs at once; results: hostler runs; SIGHUP reloads the config; Ctrl-C or SIGTERM stops",
        opts.node,
        app.shown_db(),
        opts.max_concurrent
    );
    let summary = monitord::run_with_reload(Arc::new(env), opts, shutdown, reload)?;
    signals.close();
    if let Some(w) = web {
        w.stop();
    }
    eprintln!(
        "hostler serve: stopped after {} jobs ({} handed back to the queue)",
        summary.jobs_run, summary.released
    );
    Ok(0)
}

/// The daemon's settings and script runner from the config file read again, with the command
/// line's overrides.
fn reloaded(
    db: &str,
    path: Option<std::path::PathBuf>,
    store: &Arc<Store>,
    max_concurrent: Option<usize>,
    node: &str,
) -> anyhow::Result<(crate::script::Runner, DaemonOptions)> {
    let app = App::new(Some(db.to_string()), path)?;
    let mut opts = DaemonOptions::from_config(&app.config);
    opts.channels.plan()?.check_files()?;
    if let Some(n) = max_concurrent {
        opts.max_concurrent = n.max(1);
    }
    opts.node = node.to_string();
    let env = app.env(store.clone())?;
    // Only once the whole file is good: a bad one keeps every running setting.
    store.set_policy(app.policy());
    Ok((env, opts))
}

/// Starts the web page; on a database without users, adds `admin` and prints its password
/// once (to the terminal, never to the log).
fn start_web(
    app: &App,
    store: &Arc<Store>,
    listen: Option<String>,
    health: &Arc<crate::health::Health>,
) -> anyhow::Result<web::Server> {
    let opts = web::WebOptions {
        listen: listen.unwrap_or_else(|| app.config.web.listen.clone()),
        public_metrics: app.config.web.public_metrics,
        allowed_hosts: app.config.web.allowed_hosts.clone(),
        max_connections: app.config.web.max_connections,
        max_connections_per_client: app.config.web.max_connections_per_client,
    };
    let mut state = web::Web::new(store.clone(), opts, app.config.sandbox.clone());
    state.health = health.clone();
    state.keep_points_ms =
        crate::store::history::Retention::from_config(&app.config.history).keep_points_ms;
    let state = Arc::new(state);
    let server = web::start(state)?;
    if store.user_count()? == 0 {
        // Where the password goes is settled before the user exists: a password nobody can
        // read is worse than no user.
        let mut sink = match AdminPassword::open(app) {
            Ok(sink) => sink,
            Err(e) => {
                // Another node started at the same moment in this folder may be making the
                // first admin (its file is there before its user): wait a little for it.
                let made = (0..50).any(|_| {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    store.user_count().is_ok_and(|n| n > 0)
                });
                if !made {
                    return Err(e);
                }
                return finish_web(server);
            }
        };
        match web::auth::first_admin(store) {
            Ok(Some(password)) => {
                // One-time: its first login must set a new password, which removes the file.
                store.set_setting(&web::account::required_key("admin"), "1")?;
                if let AdminPassword::File(_, path) = &sink {
                    let abs = std::fs::canonicalize(path)
                        .map_or_else(|_| path.clone(), |p| p.display().to_string());
                    store.set_setting(web::account::FIRST_ADMIN_FILE, &abs)?;
                }
                sink.show(&password)?
            }
            Ok(None) => sink.discard(),
            Err(e) => {
                sink.discard();
                return Err(e.into());
            }
        }
    }
    finish_web(server)
}

/// Says where the page listens.
fn finish_web(server: web::Server) -> anyhow::Result<web::Server> {
    let addr = server.addr;
    if !addr.ip().is_loopback() {
        warn!(%addr, "the web page listens beyond loopback: put TLS in front of it");
    }
    eprintln!("hostler serve: web page on http://{addr}/");
    info!(%addr, "web page listening");
    Ok(server)
}

/// Where the first admin's password goes: the terminal when there is one; otherwise
/// (systemd, a log file) a new file only this user can read, so it never lands in a log.
enum AdminPassword {
    Terminal,
    File(std::fs::File, String),
}

impl AdminPassword {
    /// The file is made new (`O_EXCL | O_NOFOLLOW`, mode 0600): an existing file or a
    /// symlink planted there is refused, never written through.
    fn open(app: &App) -> anyhow::Result<AdminPassword> {
        use std::io::IsTerminal;
        use std::os::unix::fs::OpenOptionsExt;
        if std::io::stderr().is_terminal() {
            return Ok(AdminPassword::Terminal);
        }
        // Beside a database file; for a database URL (SQL Server), in the working folder: a
        // URL is no path, and it may hold a password.
        let path = if app.db.contains("://") {
            "hostler.admin-password".to_string()
        } else {
            format!("{}.admin-password", app.db)
        };
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o600)
            .open(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => anyhow::anyhow!(
                    "{path} already exists: it is where the first admin's one-time password goes; remove it (or set a password first with: hostler user add admin) and start again"
                ),
                _ => anyhow::anyhow!("cannot create {path} for the first admin's password: {e}"),
            })?;
        Ok(AdminPassword::File(f, path))
    }

    fn show(&mut self, password: &str) -> anyhow::Result<()> {
        use std::io::Write;
        match self {
            AdminPassword::Terminal => eprintln!(
                "hostler serve: no web users yet, so one was made. Log in as admin with the one-time password\n\n    {password}\n\nit must be replaced at the first login (or with: hostler user add admin --replace)"
            ),
            AdminPassword::File(f, path) => {
                writeln!(f, "{password}")?;
                f.sync_all()?;
                eprintln!(
                    "hostler serve: no web users yet, so one was made: admin, with the one-time password in {path} (mode 0600; the first login must set a new password, which removes the file)"
                );
            }
        }
        Ok(())
    }

    /// No password was made after all: the empty file goes.
    fn discard(&self) {
        if let AdminPassword::File(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Raises the soft limit on open descriptors to the hard one: web clients, scripts' sessions
/// and the database share them, and systemd's default soft limit (1024) is easy to reach.
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => info!(from = soft, to = hard, "raised the open-files limit"),
            Err(e) => warn!("cannot raise the open-files limit from {soft}: {e}"),
        },
        Ok(_) => {}
        Err(e) => warn!("cannot read the open-files limit: {e}"),
    }
}

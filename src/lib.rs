//! hostler: monitors network hosts and services, and corrects them.
//!
//! # Parts
//!
//! - [`cli`]: argh subcommands, thin; each parses, calls the store or the script runner, prints.
//! - [`script`]: the hardened Rhai engine, the database-backed `import`, and the script API.
//! - [`session`]: the expect engine over the `Transport` trait (local processes, telnet, ssh,
//!   http), with transcripts that mask secrets, and the pool of logged-in sessions.
//! - [`store`]: the only module that speaks to the database: a domain API over a driver trait
//!   (SQLite embedded; PostgreSQL in `store::postgres`; SQL Server 2005+ over TDS in
//!   `store::tds`; SQL Server 2000 over SQLXML in `store::mssql2000`, a client of [`sqlxml`]),
//!   with perfdata series, housekeeping and sizes; its connections in `store::pool`.
//! - [`sql`]: the sectioned SQL abstraction; every statement is assembled from sections and
//!   rendered per dialect. The DDL of every dialect derives from `schema.sql`.
//! - [`queue`]: the one way work enters the queue (a request, its target, its timing).
//! - [`monitord`]: the daemon (`hostler serve`): fires schedules, claims with leases, the
//!   correction loop, the delivery of notifications.
//! - [`site`]: configuration as code: the site file (hosts, checks and rules by tag,
//!   dependencies, heartbeats, scripts), the plan of what an apply changes, and the export.
//! - [`notify`]: where notifications go: channels of each kind (webhook, command, SMTP, Slack,
//!   Teams, Discord, Mattermost, ntfy, Gotify, Telegram, PagerDuty, Opsgenie), routes with
//!   escalation, reminders and hours, and each service's message shape.
//! - [`shell`]: the interactive script shell (rustyline), also a login shell.
//! - [`web`]: the web page, JSON API, `/metrics` and `/sqlxml` that `serve` answers (its own
//!   HTTP/1.1 connection handling in `web::server`, maud), with logins, sessions and CSRF
//!   tokens.
//! - [`sqlxml`]: SQL Server 2000's XML-over-HTTP interface: the client `hostler sql` uses, the
//!   streaming FOR XML parser, and the writer behind `/sqlxml`. [`urlencode`]: percent-encoding
//!   and form parsing for both.
//! - [`app`]: the process context (config, database) every command, the daemon and the shell
//!   start from. [`config`]: the TOML configuration, plain data. [`bundled`]: the script
//!   library compiled in. [`health`]: monitord's heartbeat, which `/healthz` reads.
//! - Leaves that several parts share: [`redact`] (the one mask, URLs safe to show), [`when`]
//!   (times and durations as people write and read them), [`password`] (argon2id hashes),
//!   [`environ`] (a password in `$HOSTLER_DB` taken out of the process's environment),
//!   [`perfdata`] (Nagios performance data), [`timed`] (a future bounded in time).
//!
//! # Dependency direction
//!
//! Each part uses only the parts before it in this list (`tests/it/shape.rs` keeps it so):
//!
//! ```text
//! leaves     redact  when  password  perfdata  urlencode  health  config  sql  timed
//! environ  → redact
//! session  → config redact
//! sqlxml   → redact session sql urlencode
//! store    → config perfdata redact sql sqlxml timed urlencode when
//! bundled  → store
//! notify   → config redact session store urlencode when
//! script   → bundled config redact session store
//! app      → config environ redact script session store
//! queue    → bundled redact store when
//! site     → bundled queue store when
//! monitord → config health notify queue script session store when
//! web      → bundled config health password queue redact script sql sqlxml store timed urlencode when
//! shell    → app bundled script session store   (`:schedule` is the CLI's verb, handed in)
//! cli      → everything above
//! ```
//!
//! The store knows nothing of scripts; a session knows nothing of the store (its transcript
//! sink and guard are handed in). The page, the API and the shell schedule through the same [`queue::submit`] as
//! `hostler schedule`, and reads only through the store (`/sqlxml` through
//! [`store::Store::read_only_query`]).
//!
//! # Invariants
//!
//! 1. A job is claimed in one transaction that sets its lease; a job row is deleted only in the
//!    transaction that writes its run ([`store::Store::record_run`]).
//! 2. Every run ends in the runs table, including errors, timeouts and cancellations
//!    ([`script::Runner::execute`] never fails; failures are the record).
//! 3. Secrets never leave the store except into a session's login; they are masked in output
//!    and transcripts, never shown by the web page or API, and read as NULL through `/sqlxml`.
//! 4. No database connection or lock is held across a script's execution or a network wait.
//! 5. Scripts touch no files and run only the commands `[sandbox] allowed_commands` allows.
//! 6. No secret is sent to an SSH server before its host key matched the pinned one (or was
//!    pinned by `[ssh] trust_new = "accept"` as the host's first).

pub mod app;
pub mod bundled;
pub mod cli;
pub mod config;
pub mod environ;
pub mod health;
pub mod monitord;
pub mod notify;
pub mod password;
pub mod perfdata;
pub mod queue;
pub mod redact;
pub mod script;
pub mod session;
pub mod shell;
pub mod site;
pub mod sql;
pub mod sqlxml;
pub mod store;
pub mod timed;
pub mod urlencode;
pub mod web;
pub mod when;

pub use cli::run;

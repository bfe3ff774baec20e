//! `hostler runs prune` (also `hostler history prune`): one history pass by hand, as monitord
//! runs it every `[history] prune_every`, saying what it removed (or, dry, would remove).

use argh::FromArgs;

use super::{App, output};
use crate::store::history::Retention;

/// remove what [history] no longer keeps (runs, transcripts, notifications, hours of raw
/// perfdata points, hourly trends); monitord does this every [history] prune_every seconds.
/// Example: hostler history prune --dry-run
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "prune")]
pub struct PruneCmd {
    /// only count what would go; change nothing
    #[argh(switch)]
    pub dry_run: bool,
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

pub fn prune(app: &App, cmd: PruneCmd) -> anyhow::Result<u8> {
    let store = app.store()?;
    let r = Retention::from_config(&app.config.history);
    let before = store.database_bytes();
    let done = store.prune(&r, crate::store::now_ms(), cmd.dry_run, &|| {})?;
    if cmd.json {
        output::json(&done)?;
        return Ok(0);
    }
    let verb = if cmd.dry_run {
        "would remove"
    } else {
        "removed"
    };
    output::text(&format!(
        "{verb}: {} runs, {} transcripts, {} notifications, {} hours of raw perfdata points, {} days of hourly trends",
        done.runs, done.transcripts, done.notifications, done.points, done.trends
    ))?;
    if !cmd.dry_run {
        output::text(&format!(
            "{} transactions, the longest {} ms; {} pages given back{}",
            done.batches,
            done.longest_batch_ms,
            done.pages_freed,
            match (before, store.database_bytes()) {
                (Some(a), Some(b)) => format!("; the database is {b} bytes (was {a})"),
                _ => String::new(),
            }
        ))?;
    }
    Ok(0)
}

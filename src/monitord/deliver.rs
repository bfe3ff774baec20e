//! Delivering notifications through the configured channels: a webhook (a JSON POST) and a
//! command (the message on its stdin, as sendmail takes it). Each attempt is recorded on the
//! notification's row; a failed delivery is retried with backoff, then given up.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use tracing::{info, warn};

use crate::config::Notify;
use crate::store::{Notification, Store, now_ms};

/// Attempts before a notification is given up.
pub const MAX_TRIES: i64 = 8;
/// How long a notify command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

fn webhook(url: &str, n: &Notification) -> Result<(), String> {
    let body = serde_json::json!({
        "id": n.id,
        "subject": n.subject,
        "body": n.body,
        "host": n.host,
        "run_id": n.run_id,
        "created_at": n.created_at,
    });
    let agent = crate::session::http::agent(Duration::from_secs(10));
    let resp = agent
        .post(url)
        .header("content-type", "application/json")
        .send(body.to_string().as_bytes())
        // The URL often carries a token: it goes into no error message or log.
        .map_err(|e| format!("webhook: {}", e.to_string().replace(url, "(webhook URL)")))?;
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("webhook: HTTP {status}"))
    }
}

fn command(cmdline: &str, n: &Notification) -> Result<(), String> {
    let mut words = cmdline.split_whitespace();
    let prog = words.next().ok_or("notify command is empty")?;
    let mut child = Command::new(prog)
        .args(words)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("notify command {prog}: {e}"))?;
    // The subject again as one line: a header is never built from script text with a line
    // end in it (a `Bcc:` smuggled into `sendmail -t`), whatever an older record holds.
    let subject = crate::script::api::one_line(&n.subject);
    let message = format!("Subject: {subject}\n\n{}\n", n.body);
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(message.as_bytes());
    }
    // A hung mailer must not hang delivery, or the daemon's shutdown.
    let deadline = std::time::Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        match child
            .try_wait()
            .map_err(|e| format!("notify command {prog}: {e}"))?
        {
            Some(st) => break st,
            None if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "notify command {prog}: no exit after {COMMAND_TIMEOUT:?}; killed"
                ));
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    Err(format!("notify command {prog}: {status} {}", err.trim()))
}

/// Delivers every due notification once; returns how many were delivered.
pub fn deliver_pending(store: &Store, cfg: &Notify) -> usize {
    let pending = match store.pending_notifications(100) {
        Ok(p) => p,
        Err(e) => {
            warn!("cannot read pending notifications: {e}");
            return 0;
        }
    };
    let mut delivered = 0;
    for n in pending {
        // Several daemons share the table: only the one that takes it delivers it.
        if !store.claim_notification(&n, 60_000).unwrap_or(false) {
            continue;
        }
        let mut channels = Vec::new();
        let mut errors = Vec::new();
        if let Some(url) = &cfg.webhook {
            channels.push("webhook");
            if let Err(e) = webhook(url, &n) {
                errors.push(e);
            }
        }
        if let Some(cmd) = &cfg.command {
            channels.push("command");
            if let Err(e) = command(cmd, &n) {
                errors.push(e);
            }
        }
        if channels.is_empty() {
            // Nowhere to send it: the row and the log are the record.
            channels.push("log");
            info!(subject = %n.subject, "notification (no channel configured)");
        }
        let result = if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        };
        let next =
            (n.tries + 1 < MAX_TRIES).then(|| now_ms() + 10_000 * (1 << n.tries.clamp(0, 12)));
        if let Err(e) = &result {
            warn!(
                id = n.id,
                tries = n.tries + 1,
                "notification not delivered: {e}"
            );
        } else {
            delivered += 1;
        }
        if let Err(e) = store.notification_attempt(n.id, &channels.join(","), result, next) {
            warn!("cannot record a delivery attempt: {e}");
        }
    }
    delivered
}

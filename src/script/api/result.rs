//! Check results: `ok`, `warning`, `critical`, `unknown`, the Nagios states, with optional
//! perfdata given as a string (`"load=0.5;1;2"`) or a map (`#{load: 0.5}`).
//!
//! Each ends the script at once with its result, as a plugin's `exit` does: it raises Rhai's
//! `Exit`, which no `try`/`catch` can catch and which passes straight through functions and
//! imported modules. So `try { ...; ok("up") } catch { critical("down") }` says what the
//! script meant, and `return ok(..)` or a result as the last expression work as before.

use rhai::{Dynamic, Engine, EvalAltResult, Position};

use crate::store::Status;

/// What a check script returns.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub status: Status,
    pub message: String,
    pub perfdata: Option<String>,
}

/// Perfdata from a string or a map, in Nagios form (`label=value` separated by spaces).
fn perfdata(p: &Dynamic) -> Result<Option<String>, Box<EvalAltResult>> {
    if p.is_unit() {
        return Ok(None);
    }
    if let Some(m) = p.read_lock::<rhai::Map>() {
        let mut parts: Vec<String> = m
            .iter()
            .map(|(k, v)| {
                let label = if k.contains(' ') || k.contains('=') {
                    format!("'{k}'")
                } else {
                    k.to_string()
                };
                format!("{label}={v}")
            })
            .collect();
        parts.sort();
        return Ok(Some(parts.join(" ")));
    }
    if p.is_string() {
        return Ok(Some(p.to_string()));
    }
    Err(super::rt(format!(
        "perfdata must be a string or a map, not {}",
        p.type_name()
    )))
}

/// Ends the script with this result.
fn make(status: Status, msg: &str, perf: &Dynamic) -> Result<(), Box<EvalAltResult>> {
    let result = CheckResult {
        status,
        message: msg.to_string(),
        perfdata: perfdata(perf)?,
    };
    Err(EvalAltResult::Exit(Dynamic::from(result), Position::NONE).into())
}

pub fn register(engine: &mut Engine) {
    engine
        .register_type_with_name::<CheckResult>("CheckResult")
        .register_get("status", |r: &mut CheckResult| {
            r.status.as_str().to_string()
        })
        .register_get("message", |r: &mut CheckResult| r.message.clone())
        .register_get("perfdata", |r: &mut CheckResult| {
            r.perfdata.clone().map_or(Dynamic::UNIT, Dynamic::from)
        })
        .register_fn("to_string", |r: &mut CheckResult| {
            format!("{}: {}", r.status.as_str().to_uppercase(), r.message)
        });
    macro_rules! state {
        ($name:literal, $status:expr) => {
            engine.register_fn($name, || make($status, "", &Dynamic::UNIT));
            engine.register_fn($name, |msg: &str| make($status, msg, &Dynamic::UNIT));
            engine.register_fn($name, |msg: &str, perf: Dynamic| make($status, msg, &perf));
        };
    }
    state!("ok", Status::Ok);
    state!("warning", Status::Warning);
    state!("critical", Status::Critical);
    state!("unknown", Status::Unknown);
}

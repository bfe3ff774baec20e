//! Small helpers: `sleep`, `now`, `log`, and regex `matches` / `captures`.

use rhai::{Array, Dynamic, Engine, EvalAltResult};

use super::{current, rt, secs, session_err};

/// A script's pattern may be this long, and compile to this much.
const MAX_PATTERN: usize = 4 * 1024;
const MAX_COMPILED: usize = 256 * 1024;
/// The text one `matches` or `captures` looks at: a search is one native call that the run's
/// deadline cannot interrupt, so its size (with the pattern's) bounds its time.
const MAX_TEXT: usize = 1 << 20;

pub(super) fn regex(pattern: &str) -> Result<regex::Regex, Box<EvalAltResult>> {
    if pattern.len() > MAX_PATTERN {
        return Err(rt(format!(
            "regex of {} bytes: patterns are limited to {MAX_PATTERN}",
            pattern.len()
        )));
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(MAX_COMPILED)
        .dfa_size_limit(2 * MAX_COMPILED)
        .build()
        .map_err(|e| rt(format!("bad regex {pattern:?}: {e}")))
}

fn haystack(text: &str) -> Result<&str, Box<EvalAltResult>> {
    if text.len() > MAX_TEXT {
        return Err(rt(format!(
            "regex over {} bytes of text: at most {} MiB at once (take a part with sub_string)",
            text.len(),
            MAX_TEXT >> 20
        )));
    }
    Ok(text)
}

pub fn register(engine: &mut Engine) {
    // Rhai's time package has its own sleep(INT) and sleep(FLOAT), which ignore the deadline;
    // registering the exact signatures overrides both.
    engine.register_fn("sleep", |s: i64| -> Result<(), Box<EvalAltResult>> {
        let d = secs(&Dynamic::from(s))?;
        current()?.guard.sleep(d).map_err(session_err)
    });
    engine.register_fn("sleep", |s: f64| -> Result<(), Box<EvalAltResult>> {
        let d = secs(&Dynamic::from(s))?;
        current()?.guard.sleep(d).map_err(session_err)
    });
    engine.register_fn("now", crate::store::now_ms);
    // Debug builds only (the tests): a panic inside an API call, to check that a run survives
    // one as an error record. Release builds have no such function.
    #[cfg(debug_assertions)]
    engine.register_fn("__hostler_test_panic", || -> bool {
        panic!("deliberate test panic")
    });
    engine.register_fn("log", |msg: &str| -> Result<(), Box<EvalAltResult>> {
        let c = current()?;
        let msg = c.mask(msg);
        tracing::info!(target: "script", "{msg}");
        c.out(&msg);
        Ok(())
    });
    engine.register_fn(
        "log",
        |level: &str, msg: &str| -> Result<(), Box<EvalAltResult>> {
            let c = current()?;
            let msg = c.mask(msg);
            let msg = msg.as_str();
            match level {
                "error" => tracing::error!(target: "script", "{msg}"),
                "warn" | "warning" => tracing::warn!(target: "script", "{msg}"),
                "debug" => tracing::debug!(target: "script", "{msg}"),
                _ => tracing::info!(target: "script", "{msg}"),
            }
            c.out(&format!("{level}: {msg}"));
            Ok(())
        },
    );
    engine.register_fn(
        "matches",
        |text: &str, pattern: &str| -> Result<bool, Box<EvalAltResult>> {
            Ok(regex(pattern)?.is_match(haystack(text)?))
        },
    );
    engine.register_fn(
        "captures",
        |text: &str, pattern: &str| -> Result<Dynamic, Box<EvalAltResult>> {
            Ok(match regex(pattern)?.captures(haystack(text)?) {
                None => Dynamic::UNIT,
                Some(caps) => {
                    let groups: Array = caps
                        .iter()
                        .map(|m| m.map_or(Dynamic::UNIT, |m| Dynamic::from(m.as_str().to_string())))
                        .collect();
                    Dynamic::from_array(groups)
                }
            })
        },
    );
}

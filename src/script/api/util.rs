//! Small helpers: `sleep`, `now`, `log`, and regex `matches` / `captures`.

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult};

use super::{Ctx, rt, secs, session_err};

fn regex(pattern: &str) -> Result<regex::Regex, Box<EvalAltResult>> {
    regex::Regex::new(pattern).map_err(|e| rt(format!("bad regex {pattern:?}: {e}")))
}

pub fn register(engine: &mut Engine, ctx: &Arc<Ctx>) {
    // Rhai's time package has its own sleep(INT) and sleep(FLOAT), which ignore the deadline;
    // registering the exact signatures overrides both.
    let c = ctx.clone();
    engine.register_fn("sleep", move |s: i64| -> Result<(), Box<EvalAltResult>> {
        c.guard.sleep(secs(&Dynamic::from(s))?).map_err(session_err)
    });
    let c = ctx.clone();
    engine.register_fn("sleep", move |s: f64| -> Result<(), Box<EvalAltResult>> {
        c.guard.sleep(secs(&Dynamic::from(s))?).map_err(session_err)
    });
    engine.register_fn("now", crate::store::now_ms);
    // Debug builds only (the tests): a panic inside an API call, to check that a run survives
    // one as an error record. Release builds have no such function.
    #[cfg(debug_assertions)]
    engine.register_fn("__hostler_test_panic", || -> bool {
        panic!("deliberate test panic")
    });
    let c = ctx.clone();
    engine.register_fn("log", move |msg: &str| {
        let msg = c.mask(msg);
        tracing::info!(target: "script", "{msg}");
        c.out(&msg);
    });
    let c = ctx.clone();
    engine.register_fn("log", move |level: &str, msg: &str| {
        let msg = c.mask(msg);
        let msg = msg.as_str();
        match level {
            "error" => tracing::error!(target: "script", "{msg}"),
            "warn" | "warning" => tracing::warn!(target: "script", "{msg}"),
            "debug" => tracing::debug!(target: "script", "{msg}"),
            _ => tracing::info!(target: "script", "{msg}"),
        }
        c.out(&format!("{level}: {msg}"));
    });
    engine.register_fn(
        "matches",
        |text: &str, pattern: &str| -> Result<bool, Box<EvalAltResult>> {
            Ok(regex(pattern)?.is_match(text))
        },
    );
    engine.register_fn(
        "captures",
        |text: &str, pattern: &str| -> Result<Dynamic, Box<EvalAltResult>> {
            Ok(match regex(pattern)?.captures(text) {
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

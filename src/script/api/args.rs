//! `arg(name)` and `arg(name, default)`: a run's arguments (a schedule's `--arg`, a run's
//! `--arg`), falling back on the host's vars, then on the default, whose type the value takes.

use rhai::{Dynamic, Engine, EvalAltResult};
use serde_json::Value;

use super::{RunContext, current, json_to_dynamic, rt};

/// The argument's value: the run's own, else the host's var of that name.
fn lookup<'a>(ctx: &'a RunContext, name: &str) -> Option<&'a Value> {
    ctx.args
        .get(name)
        .or_else(|| ctx.host.as_ref().and_then(|h| h.vars.get(name)))
        .filter(|v| !v.is_null())
}

/// `value` as the type of `default`: a number or a yes/no from text (`--arg warn=80` is text).
fn convert(name: &str, value: &Value, default: &Dynamic) -> Result<Dynamic, Box<EvalAltResult>> {
    let text = match value {
        Value::String(s) => s.trim().to_string(),
        other => other.to_string(),
    };
    let bad = |what: &str| rt(format!("argument {name}: expected {what}, got {text:?}"));
    if default.is_int() {
        return match value {
            Value::Number(n) if n.as_i64().is_some() => Ok(Dynamic::from(n.as_i64().unwrap_or(0))),
            _ => text
                .parse::<i64>()
                .map(Dynamic::from)
                .map_err(|_| bad("a whole number")),
        };
    }
    if default.is_float() {
        return match value {
            Value::Number(n) => Ok(Dynamic::from(n.as_f64().unwrap_or(0.0))),
            _ => text
                .parse::<f64>()
                .map(Dynamic::from)
                .map_err(|_| bad("a number")),
        };
    }
    if default.is_bool() {
        return match value {
            Value::Bool(b) => Ok(Dynamic::from(*b)),
            _ => match text.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Ok(Dynamic::from(true)),
                "false" | "no" | "off" | "0" => Ok(Dynamic::from(false)),
                _ => Err(bad("true or false")),
            },
        };
    }
    if default.is_string() {
        return Ok(Dynamic::from(text));
    }
    Ok(json_to_dynamic(value))
}

pub fn register(engine: &mut Engine) {
    engine.register_fn("arg", |name: &str| -> Result<Dynamic, Box<EvalAltResult>> {
        Ok(lookup(&*current()?, name).map_or(Dynamic::UNIT, json_to_dynamic))
    });
    engine.register_fn(
        "arg",
        |name: &str, default: Dynamic| -> Result<Dynamic, Box<EvalAltResult>> {
            match lookup(&*current()?, name) {
                Some(v) => convert(name, v, &default),
                None => Ok(default),
            }
        },
    );
}

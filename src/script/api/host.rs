//! `host`, the run's target, and `hosts()` / `get_host(name)`. A host value carries no secret.

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult};

use super::{RunContext, current, json_to_dynamic, rt};
use crate::store::Host;

/// A host as scripts see it.
#[derive(Debug, Clone)]
pub struct HostRef(pub Arc<Host>);

impl HostRef {
    pub fn new(h: Host) -> HostRef {
        HostRef(Arc::new(h))
    }
}

fn all(ctx: &RunContext) -> Result<Vec<Host>, Box<EvalAltResult>> {
    ctx.store.hosts().map_err(|e| rt(e.to_string()))
}

pub fn register(engine: &mut Engine) {
    engine
        .register_type_with_name::<HostRef>("Host")
        .register_get("name", |h: &mut HostRef| h.0.name.clone())
        .register_get("address", |h: &mut HostRef| h.0.address.clone())
        .register_get("method", |h: &mut HostRef| h.0.method.as_str().to_string())
        .register_get("port", |h: &mut HostRef| {
            h.0.port
                .or(h.0.method.default_port())
                .map_or(Dynamic::UNIT, |p| Dynamic::from(i64::from(p)))
        })
        .register_get("user", |h: &mut HostRef| {
            h.0.username.clone().map_or(Dynamic::UNIT, Dynamic::from)
        })
        .register_get("site", |h: &mut HostRef| {
            h.0.site.clone().map_or(Dynamic::UNIT, Dynamic::from)
        })
        .register_get("prompt", |h: &mut HostRef| {
            h.0.prompt.clone().map_or(Dynamic::UNIT, Dynamic::from)
        })
        .register_get("tags", |h: &mut HostRef| -> Array {
            h.0.tags.iter().map(|t| Dynamic::from(t.clone())).collect()
        })
        .register_get("vars", |h: &mut HostRef| {
            json_to_dynamic(&serde_json::Value::Object(h.0.vars.clone()))
        })
        .register_fn("to_string", |h: &mut HostRef| h.0.name.clone())
        .register_fn("has_tag", |h: &mut HostRef, t: &str| {
            h.0.tags.iter().any(|x| x == t)
        });

    engine.register_fn("hosts", || -> Result<Array, Box<EvalAltResult>> {
        Ok(all(&*current()?)?
            .into_iter()
            .map(|h| Dynamic::from(HostRef::new(h)))
            .collect())
    });
    engine.register_fn("hosts", |tag: &str| -> Result<Array, Box<EvalAltResult>> {
        Ok(all(&*current()?)?
            .into_iter()
            .filter(|h| h.tags.iter().any(|t| t == tag))
            .map(|h| Dynamic::from(HostRef::new(h)))
            .collect())
    });
    engine.register_fn(
        "get_host",
        |name: &str| -> Result<HostRef, Box<EvalAltResult>> {
            current()?
                .store
                .host(name)
                .map(HostRef::new)
                .map_err(|e| rt(e.to_string()))
        },
    );
}

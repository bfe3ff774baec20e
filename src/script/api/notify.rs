//! `notify(subject, body)`, recorded with the run (delivery is monitord's), and
//! `schedule(script, host, priority, delay)`, which queues a job.

use rhai::{Dynamic, Engine, EvalAltResult};

use super::{HostRef, RunContext, current, rt, secs};
use crate::store::{NewJob, now_ms};

fn host_name(h: &Dynamic) -> Result<Option<String>, Box<EvalAltResult>> {
    if h.is_unit() {
        Ok(None)
    } else if let Some(r) = h.read_lock::<HostRef>() {
        Ok(Some(r.0.name.clone()))
    } else if h.is_string() {
        Ok(Some(h.to_string()))
    } else {
        Err(rt(format!(
            "schedule: host must be a host, a name or (), not {}",
            h.type_name()
        )))
    }
}

fn schedule(
    ctx: &RunContext,
    script: &str,
    host: &Dynamic,
    priority: i64,
    delay: &Dynamic,
) -> Result<i64, Box<EvalAltResult>> {
    let due_at = now_ms() + secs(delay)?.as_millis() as i64;
    let job = NewJob {
        script: script.to_string(),
        host: host_name(host)?,
        priority,
        due_at,
        max_attempts: 3,
        timeout_ms: None,
        schedule_id: None,
        args: None,
        name: None,
    };
    // An identical queued job is not duplicated: its id is returned instead.
    ctx.store
        .enqueue(&job)
        .map(|(id, _)| id)
        .map_err(|e| rt(format!("schedule: {e}")))
}

pub fn register(engine: &mut Engine) {
    engine.register_fn(
        "notify",
        |subject: &str, body: &str| -> Result<(), Box<EvalAltResult>> {
            current()?.notify(subject.to_string(), body.to_string());
            Ok(())
        },
    );
    engine.register_fn(
        "notify",
        |subject: &str| -> Result<(), Box<EvalAltResult>> {
            current()?.notify(subject.to_string(), String::new());
            Ok(())
        },
    );
    engine.register_fn("schedule", |script: &str, host: Dynamic| {
        schedule(&*current()?, script, &host, 0, &Dynamic::from(0_i64))
    });
    engine.register_fn("schedule", |script: &str, host: Dynamic, priority: i64| {
        schedule(&*current()?, script, &host, priority, &Dynamic::from(0_i64))
    });
    engine.register_fn(
        "schedule",
        |script: &str, host: Dynamic, priority: i64, delay: Dynamic| {
            schedule(&*current()?, script, &host, priority, &delay)
        },
    );
}

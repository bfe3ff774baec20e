//! Times and durations as people write and read them: what the CLI, the page and the API
//! take (`30s`, `5m`, `2026-12-01 04:00`, cron expressions), and how they show a time. A
//! leaf: it depends on nothing in the crate.

use std::time::Duration;

/// A time or duration that does not parse, with what was wrong and what would do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WhenError(String);

/// A duration: plain seconds (`30`, `1.5`) or with a unit (`500ms`, `30s`, `5m`, `2h`, `1d`).
pub fn parse_duration(s: &str) -> Result<Duration, WhenError> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| {
        WhenError(format!(
            "bad duration {s:?}: expected e.g. 30, 30s, 500ms, 5m or 2h"
        ))
    })?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        u => {
            return Err(WhenError(format!(
                "bad duration {s:?}: unknown unit {u:?} (use ms, s, m, h or d)"
            )));
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|_| WhenError(format!("bad duration {s:?}")))
}

/// A time as epoch milliseconds: RFC 3339 (`2026-12-01T04:00:00Z`) or local civil time
/// (`2026-12-01 04:00`).
pub fn parse_time(s: &str) -> Result<i64, WhenError> {
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Ok(ts.as_millisecond());
    }
    let bad = || {
        WhenError(format!(
            "bad time {s:?}: use 2026-12-01T04:00:00Z or local 2026-12-01 04:00"
        ))
    };
    let civil: jiff::civil::DateTime = s.replace(' ', "T").parse().map_err(|_| bad())?;
    let zoned = civil
        .to_zoned(jiff::tz::TimeZone::system())
        .map_err(|e| WhenError(format!("bad time {s:?}: {e}")))?;
    Ok(zoned.timestamp().as_millisecond())
}

/// Epoch milliseconds as local `YYYY-MM-DD HH:MM:SS`.
pub fn local(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| {
            t.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| ms.to_string())
}

/// Epoch milliseconds in RFC 3339, in UTC: `2026-11-27T17:04:51.123Z`.
pub fn rfc3339(ms: i64) -> Option<String> {
    jiff::Timestamp::from_millisecond(ms)
        .ok()
        .map(|t| format!("{t:.3}"))
}

/// Whether a JSON key names a time hostler keeps as epoch milliseconds.
fn is_time_key(key: &str) -> bool {
    key.ends_with("_at")
        || matches!(
            key,
            "since" | "until" | "t" | "next_due" | "lease_until" | "at_time"
        )
}

/// Times in a JSON value as machines read them: each epoch-millisecond time (`started_at`,
/// `since`, `next_due`...) becomes RFC 3339 in UTC, and the number stays beside it under the
/// same name with `_ms` (`started_at_ms`).
pub fn json_times(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            let times: Vec<(String, i64)> = map
                .iter()
                .filter(|(k, _)| is_time_key(k))
                .filter_map(|(k, v)| v.as_i64().map(|ms| (k.clone(), ms)))
                .collect();
            for (k, ms) in times {
                if let Some(text) = rfc3339(ms) {
                    map.insert(format!("{k}_ms"), ms.into());
                    map.insert(k, text.into());
                }
            }
            map.values_mut().for_each(json_times);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(json_times),
        _ => {}
    }
}

/// A duration the way `parse_duration` takes it, largest units first: `1h`, `1h30m`, `45s`,
/// `250ms`.
pub fn span(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// The first time after `after_ms` that a cron expression matches, in the system time zone.
pub fn cron_next(expr: &str, after_ms: i64) -> Result<i64, String> {
    use std::str::FromStr;
    let cron =
        croner::Cron::from_str(expr).map_err(|e| format!("bad cron expression {expr:?}: {e}"))?;
    let ts = jiff::Timestamp::from_millisecond(after_ms).map_err(|e| e.to_string())?;
    let zoned = ts.to_zoned(jiff::tz::TimeZone::system());
    let next = cron
        .find_next_occurrence(&zoned, false)
        .map_err(|e| format!("cron expression {expr:?} never matches: {e}"))?;
    Ok(next.timestamp().as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::{Duration, parse_duration, span};

    #[test]
    fn a_span_is_written_largest_units_first() {
        for (secs, text) in [
            (3600, "1h"),
            (5400, "1h30m"),
            (45, "45s"),
            (90_061, "1d1h1m1s"),
        ] {
            assert_eq!(span(Duration::from_secs(secs)), text);
        }
        assert_eq!(span(Duration::from_millis(250)), "250ms");
        // A single unit reads back as itself.
        assert_eq!(parse_duration("1h").ok(), Some(Duration::from_secs(3600)));
    }
}

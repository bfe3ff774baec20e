//! Statements on hosts.

use super::*;

pub fn host_list() -> Select {
    Select::from("hosts")
        .columns(HOST_COLUMNS)
        .with(Section::Columns(vec![(
            col("secret").is_not_null(),
            Some("has_secret"),
        )]))
        .with(Section::OrderBy(vec![(col("name"), Order::Asc)]))
}

pub fn host_by_name(name: &str) -> Statement {
    host_list().filter(col("name").eq(param(name))).into()
}

/// The hosts of the jobs `ids`.
pub fn hosts_of_jobs(ids: &[i64]) -> Statement {
    let jobs = Select::from("jobs")
        .columns(&["host_id"])
        .filter(col("id").in_list(ids.iter().map(|i| param(*i)).collect()));
    host_list().filter(col("id").in_select(jobs)).into()
}

/// A host's id by its name: the name's index answers it alone (a firing asks once a host).
pub fn host_id_by_name(name: &str) -> Statement {
    Select::from("hosts")
        .columns(&["id"])
        .filter(col("name").eq(param(name)))
        .into()
}

/// Every host's id and name: a firing of many hosts looks them up once, not once a host.
pub fn host_ids() -> Statement {
    Select::from("hosts").columns(&["id", "name"]).into()
}

pub fn host_secret(name: &str) -> Statement {
    Select::from("hosts")
        .columns(&["secret"])
        .filter(col("name").eq(param(name)))
        .into()
}

/// Every host that has a secret, with it (for sealing and key rotation only).
pub fn host_secrets() -> Statement {
    Select::from("hosts")
        .columns(&["name", "secret"])
        .filter(col("secret").is_not_null())
        .into()
}

pub fn host_insert(values: Vec<(&'static str, Expr)>) -> Statement {
    Insert {
        table: "hosts",
        values,
        returning_id: Some("id"),
    }
    .into()
}

pub fn host_update(name: &str, set: Vec<(&'static str, Expr)>) -> Statement {
    Update {
        table: "hosts",
        set,
        conditions: vec![col("name").eq(param(name))],
        returning: vec![],
    }
    .into()
}

/// A secret sealed again under a new key, only if it still holds the value that was re-sealed
/// (a secret changed meanwhile, by another process, is left as that process wrote it).
///
/// `LIKE`, not `=`: SQL Server 2000 keeps the secret as NTEXT, which `=` cannot compare. A
/// sealed value (`hostler-aead-v1:ID:BASE64`) holds no LIKE wildcard, so for one the pattern
/// is the value itself; anything else is matched by name alone.
pub fn host_reseal(name: &str, old: &str, new: &str) -> Statement {
    let mut conditions = vec![col("name").eq(param(name))];
    if !old.contains(['%', '_', '[', ']', '\\']) {
        conditions.push(col("secret").like(param(old)));
    }
    Update {
        table: "hosts",
        set: vec![("secret", param(new))],
        conditions,
        returning: vec![],
    }
    .into()
}

pub fn host_delete(name: &str) -> Statement {
    Delete {
        table: "hosts",
        conditions: vec![col("name").eq(param(name))],
    }
    .into()
}

/// ... whose host is not busy: fewer than `per_host` jobs of that host run under a live lease.
/// Jobs without a host are never held back by this rule.
pub fn host_not_busy(j: &'static str, per_host: i64) -> Section {
    Section::Where(vec![Expr::Or(vec![
        qcol(j, "host_id").is_null(),
        Expr::Sub(Box::new(host_busy(j))).lt(param(per_host)),
    ])])
}

/// How many jobs `j`'s host runs now, on any node (a count, one row).
pub fn host_busy(j: &'static str) -> Select {
    Select::from_as("jobs", "busy")
        .with(Section::Columns(vec![(Expr::count_star(), None)]))
        .filter(qcol("busy", "host_id").eq(qcol(j, "host_id")))
        // A job asked to cancel still runs until its node stops it: its host is busy too.
        .filter(Expr::Or(vec![
            qcol("busy", "state").eq(lit(crate::store::JobState::Running.as_str())),
            qcol("busy", "state").eq(lit(crate::store::JobState::Cancelling.as_str())),
        ]))
        .filter(qcol("busy", "lease_until").ge(now()))
}

/// The keys pinned for a host, by its name.
pub fn host_keys(name: &str) -> Statement {
    Select::from_as("host_keys", "k")
        .columns(&["key_type", "key_data", "fingerprint", "first_seen"])
        .with(Section::Join(Join {
            kind: JoinKind::Inner,
            table: "hosts",
            alias: "h",
            on: qcol("h", "id").eq(qcol("k", "host_id")),
        }))
        .filter(qcol("h", "name").eq(param(name)))
        .with(Section::OrderBy(vec![(qcol("k", "key_type"), Order::Asc)]))
        .into()
}

pub fn host_key_insert(
    host_id: i64,
    key_type: &str,
    key_data: &str,
    fingerprint: &str,
    now: i64,
) -> Statement {
    Insert {
        table: "host_keys",
        values: vec![
            ("host_id", param(host_id)),
            ("key_type", param(key_type)),
            ("key_data", param(key_data)),
            ("fingerprint", param(fingerprint)),
            ("first_seen", param(now)),
        ],
        returning_id: None,
    }
    .into()
}

pub fn host_keys_delete(host_id: i64) -> Statement {
    Delete {
        table: "host_keys",
        conditions: vec![col("host_id").eq(param(host_id))],
    }
    .into()
}

//! Statements on scripts.

use super::*;

pub fn script_list() -> Select {
    Select::from("scripts")
        .columns(SCRIPT_COLUMNS)
        .with(Section::OrderBy(vec![(col("name"), Order::Asc)]))
}

pub fn script_by_name(name: &str) -> Statement {
    script_list().filter(col("name").eq(param(name))).into()
}

/// Name and version only: what the module cache needs to decide whether to recompile.
pub fn script_version(name: &str) -> Statement {
    Select::from("scripts")
        .columns(&["id", "version"])
        .filter(col("name").eq(param(name)))
        .into()
}

/// The versions of the stored scripts among `names` (one query for a run's script and its
/// imports).
pub fn scripts_versions(names: &[String]) -> Statement {
    Select::from("scripts")
        .columns(&["name", "version"])
        .filter(col("name").in_list(names.iter().map(|n| param(n.as_str())).collect()))
        .into()
}

pub fn script_insert(
    name: &str,
    source: &str,
    description: Option<&str>,
    kind: &str,
    at: i64,
) -> Statement {
    Insert {
        table: "scripts",
        values: vec![
            ("name", param(name)),
            ("source", param(source)),
            ("description", param(description)),
            ("kind", param(kind)),
            ("version", lit(1)),
            ("updated_at", param(at)),
        ],
        returning_id: Some("id"),
    }
    .into()
}

/// Replaces a script's source and bumps its version, which invalidates cached compilations.
pub fn script_update(
    name: &str,
    source: &str,
    description: Option<&str>,
    kind: &str,
    at: i64,
) -> Statement {
    Update {
        table: "scripts",
        set: vec![
            ("source", param(source)),
            ("description", param(description)),
            ("kind", param(kind)),
            ("version", col("version") + lit(1)),
            ("updated_at", param(at)),
        ],
        conditions: vec![col("name").eq(param(name))],
        returning: vec![],
    }
    .into()
}

pub fn script_delete(name: &str) -> Statement {
    Delete {
        table: "scripts",
        conditions: vec![col("name").eq(param(name))],
    }
    .into()
}

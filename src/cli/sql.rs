//! `hostler sql "STATEMENT"`: run one statement on the database and print its rows.
//!
//! `--json` prints an array of row objects: each column maps to a string or null, and a
//! `table` key names the row's table (when all its columns come from one table, else "row").
//! Drivers whose results nest rows (SQLXML's FOR XML AUTO) put them under `children`.

use argh::FromArgs;

use super::{App, output};
use crate::store::RawResult;

/// run one SQL statement on the database and print its rows
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "sql")]
pub struct SqlCmd {
    /// the statement
    #[argh(positional)]
    pub statement: String,
    /// print JSON: an array of row objects
    #[argh(switch)]
    pub json: bool,
}

/// The JSON form of a raw result.
pub fn to_json(r: &RawResult) -> serde_json::Value {
    let table = {
        let mut names = r.tables.iter().flatten();
        match names.next() {
            Some(first)
                if r.tables
                    .iter()
                    .all(|t| t.as_deref() == Some(first.as_str())) =>
            {
                first.clone()
            }
            _ => "row".to_string(),
        }
    };
    let rows: Vec<serde_json::Value> = r
        .rows
        .iter()
        .map(|row| {
            let mut obj = serde_json::Map::new();
            obj.insert("table".into(), serde_json::Value::String(table.clone()));
            for (c, v) in r.columns.iter().zip(row) {
                obj.insert(
                    c.clone(),
                    v.to_text()
                        .map_or(serde_json::Value::Null, serde_json::Value::String),
                );
            }
            serde_json::Value::Object(obj)
        })
        .collect();
    serde_json::Value::Array(rows)
}

pub fn run(app: &App, cmd: SqlCmd) -> anyhow::Result<u8> {
    let store = app.store()?;
    let r = store.raw(&cmd.statement)?;
    if cmd.json {
        output::json(&to_json(&r))?;
    } else if r.columns.is_empty() {
        output::text(&format!("{} rows changed", r.changed.unwrap_or(0)))?;
    } else {
        let rows: Vec<Vec<String>> = r
            .rows
            .iter()
            .map(|row| {
                row.iter()
                    .map(|v| v.to_text().unwrap_or_else(|| "NULL".into()))
                    .collect()
            })
            .collect();
        let header: Vec<&str> = r.columns.iter().map(String::as_str).collect();
        output::table(&header, &rows)?;
    }
    Ok(0)
}

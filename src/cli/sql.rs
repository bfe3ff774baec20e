//! `hostler sql "STATEMENT"`: run one statement on the database and print its rows.
//!
//! `--json` prints an array of row objects, each column's value typed as the driver gives it:
//! a number, a boolean, a string, or null (a blob as base64). FOR XML answers (SQLXML, or FOR
//! XML over TDS) are XML, all text: each row names its element as `table`, with nested rows
//! (FOR XML AUTO) under `children`.

use argh::FromArgs;

use super::{App, output};
use crate::store::RawResult;

/// run one SQL statement on the database and print its rows; with --db sqlxml+http://SERVER/VROOT
/// it goes to SQL Server 2000's XML interface (or hostler's /sqlxml) as a URL query, with
/// --db mssql://USER:PASSWORD@HOST/DATABASE to SQL Server 2005+ over TDS (FOR XML answers
/// print as rows)
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "sql")]
pub struct SqlCmd {
    /// the statement (over SQLXML: SELECT ... FOR XML RAW or AUTO)
    #[argh(positional)]
    pub statement: Option<String>,
    /// over SQLXML: post this template file instead of a statement
    #[argh(option)]
    pub template: Option<String>,
    /// over SQLXML: a template parameter as NAME=VALUE, or, with a statement, the value of its
    /// next `?` (repeatable, in order)
    #[argh(option)]
    pub param: Vec<String>,
    /// over SQLXML: send the template as a raw XML body instead of the form field `template`
    #[argh(switch)]
    pub raw_body: bool,
    /// print JSON: an array of row objects
    #[argh(switch)]
    pub json: bool,
    /// show the secret columns (hosts.secret, password and token hashes) instead of NULL;
    /// only for a SQLite file owned by the user running this
    #[argh(switch)]
    pub show_secrets: bool,
}

/// SQLXML records as the JSON rows of the core shape: `table`, the columns, and nested rows
/// under `children`.
fn record_json(r: &crate::sqlxml::Record) -> serde_json::Value {
    let mut obj = serde_json::Map::new();
    obj.insert(
        "table".into(),
        serde_json::Value::String(r.table.to_string()),
    );
    for (c, v) in r.columns() {
        obj.insert(c.to_string(), serde_json::Value::String(v.to_string()));
    }
    if !r.children.is_empty() {
        obj.insert(
            "children".into(),
            serde_json::Value::Array(r.children.iter().map(record_json).collect()),
        );
    }
    serde_json::Value::Object(obj)
}

/// `hostler sql` over SQLXML: a URL query or a template.
fn over_sqlxml(url: &str, cmd: &SqlCmd) -> anyhow::Result<u8> {
    use crate::sqlxml::client::{Client, TemplateBody};
    let client = Client::new(url)?;
    let response = match (&cmd.template, &cmd.statement) {
        (Some(_), Some(_)) => anyhow::bail!("give a statement or --template, not both"),
        (None, None) => anyhow::bail!("give a statement, or --template FILE"),
        (Some(file), None) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| anyhow::anyhow!("cannot read template {file}: {e}"))?;
            let params = cmd
                .param
                .iter()
                .map(|p| {
                    p.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .ok_or_else(|| anyhow::anyhow!("--param {p:?}: use NAME=VALUE"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let how = if cmd.raw_body {
                TemplateBody::Raw
            } else {
                TemplateBody::Form
            };
            client.template(&text, &params, how)
        }
        (None, Some(sql)) => {
            // Values for `?`, in order, taken whole (a value may hold '=').
            let values: Vec<String> = cmd.param.clone();
            client.query(sql, &values, Some("ROOT"))
        }
    };
    print_records(cmd, response)
}

/// Prints a FOR XML answer's rows (SQLXML, or the XML column over TDS); an error the server
/// reported after some rows fails the command once those rows are printed.
fn print_records(
    cmd: &SqlCmd,
    response: Result<crate::sqlxml::Response, crate::sqlxml::SqlxmlError>,
) -> anyhow::Result<u8> {
    let (response, error) = match response {
        Ok(r) => (r, None),
        Err(crate::sqlxml::SqlxmlError::Server {
            error,
            more,
            partial,
        }) => (
            *partial,
            Some(format!(
                "SQL Server: {error}{}",
                if more > 0 {
                    format!(" (and {more} more)")
                } else {
                    String::new()
                }
            )),
        ),
        Err(e) => return Err(e.into()),
    };
    if cmd.json {
        let rows: Vec<_> = response.records.iter().map(record_json).collect();
        output::json_as_is(&rows)?;
    } else {
        let (columns, rows) = crate::sqlxml::table(&response.records);
        let rows: Vec<Vec<String>> = rows
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|v| v.unwrap_or_else(|| "NULL".into()))
                    .collect()
            })
            .collect();
        let header: Vec<&str> = columns.iter().map(String::as_str).collect();
        output::table(&header, &rows)?;
    }
    match error {
        // The rows before the error were printed; the error is the command's failure.
        Some(e) => anyhow::bail!(e),
        None => Ok(0),
    }
}

/// A value as JSON, in its type: numbers as numbers, NULL as null, a blob as base64.
fn value_json(v: &crate::sql::Value) -> serde_json::Value {
    use crate::sql::Value as V;
    use base64::Engine as _;
    match v {
        V::Null => serde_json::Value::Null,
        V::Bool(b) => (*b).into(),
        V::Int(i) => (*i).into(),
        V::Real(f) => serde_json::Number::from_f64(*f)
            .map_or_else(|| f.to_string().into(), serde_json::Value::Number),
        V::Text(t) => t.clone().into(),
        V::Blob(b) => base64::engine::general_purpose::STANDARD.encode(b).into(),
    }
}

/// The JSON form of a raw result: one object per row, its columns in order.
pub fn to_json(r: &RawResult) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = r
        .rows
        .iter()
        .map(|row| {
            let obj: serde_json::Map<String, serde_json::Value> = r
                .columns
                .iter()
                .zip(row)
                .map(|(c, v)| (c.clone(), value_json(v)))
                .collect();
            serde_json::Value::Object(obj)
        })
        .collect();
    serde_json::Value::Array(rows)
}

pub fn run(app: &App, cmd: SqlCmd) -> anyhow::Result<u8> {
    if app.db.starts_with("sqlxml+") {
        return over_sqlxml(&app.db, &cmd);
    }
    if cmd.template.is_some() || !cmd.param.is_empty() || cmd.raw_body {
        anyhow::bail!(
            "--template, --param and --raw-body work over SQLXML: --db sqlxml+http://SERVER/VROOT"
        );
    }
    let Some(statement) = &cmd.statement else {
        anyhow::bail!("give the statement to run");
    };
    if cmd.show_secrets {
        owner_only(&app.db)?;
    }
    let store = app.store()?;
    let r = store.raw(statement, cmd.show_secrets)?;
    // SQL Server 2005+ sends FOR XML as one text column split over rows: join and parse it.
    if let Some(xml) = crate::store::tds::for_xml_text(&r) {
        return print_records(&cmd, crate::sqlxml::parse::parse(xml.as_bytes(), None));
    }
    if cmd.json {
        // The database's own values: no time conversion, no added keys.
        output::json_as_is(&to_json(&r))?;
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

/// `--show-secrets` is for the database's owner, who can read the file anyway.
fn owner_only(db: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    if db.contains("://") {
        anyhow::bail!(
            "--show-secrets works on a SQLite file of your own, not on {:?}",
            crate::redact::database_url(db)
        );
    }
    let meta = std::fs::metadata(db).map_err(|e| anyhow::anyhow!("{db}: {e}"))?;
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        anyhow::bail!(
            "--show-secrets: {db} belongs to another user (uid {})",
            meta.uid()
        );
    }
    Ok(())
}

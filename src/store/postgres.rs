//! PostgreSQL: the database many hostler nodes share (`--db postgres://USER:PASSWORD@HOST
//! [:PORT]/DB[?sslmode=...]`), through the `postgres` crate (rust-postgres, blocking, on a
//! small runtime of its own) with TLS through native-tls on the OpenSSL already linked:
//! certificates are checked whenever TLS is used (`sslmode=require` insists on it).
//!
//! Statements come rendered by [`crate::sql`] for the PostgreSQL dialect; parameters are
//! bound by the types the server gives the prepared statement (an `INTEGER` column takes an
//! i32), and values read back by their column types. Writes run at the default isolation
//! (READ COMMITTED): the claim's `FOR UPDATE SKIP LOCKED` and conditional updates carry the
//! queue's rules, as the dialect's sections write them. A queued job is announced with
//! `NOTIFY hostler_queue`; a node's listener ([`listen`]) wakes its daemon at once.

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{ToSql, Type};
use postgres::{Client, Config, NoTls};

use super::StoreError;
use super::driver::{Conn, Driver, RawResult, Row, Work};
use crate::sql::{Dialect, Rendered, Value};

/// The channel queued jobs are announced on.
const CHANNEL: &str = "hostler_queue";

/// Listens on its own connection for other nodes' enqueues and calls `hooks` for each (the
/// daemon's wake-up), until the store is gone. A lost connection is logged, retried after a
/// growing pause (up to 30 s), and in the meantime polling finds the jobs.
pub fn listen(url: String, hooks: std::sync::Weak<std::sync::Mutex<Vec<super::EnqueueHook>>>) {
    let shown = crate::redact::database_url(&url);
    let spawned = std::thread::Builder::new()
        .name("pg-listen".into())
        .spawn(move || {
            let mut pause = std::time::Duration::from_secs(1);
            loop {
                if hooks.strong_count() == 0 {
                    return;
                }
                match Postgres::open(&url).and_then(|mut p| {
                    p.client
                        .batch_execute(&format!("LISTEN {CHANNEL}"))
                        .map(|()| p)
                        .map_err(|e| err(&shown, &e))
                }) {
                    Ok(mut p) => {
                        tracing::debug!("listening for queued jobs on {shown}");
                        pause = std::time::Duration::from_secs(1);
                        loop {
                            let Some(hooks) = hooks.upgrade() else { return };
                            let mut woke = false;
                            let mut notes = p.client.notifications();
                            let mut it = notes.timeout_iter(std::time::Duration::from_secs(1));
                            let next = it.next();
                            drop(it);
                            drop(notes);
                            match next {
                                Ok(Some(_)) => woke = true,
                                Ok(None) => {}
                                Err(e) => {
                                    tracing::warn!(
                                        "{shown}: the listener lost its connection: {e}"
                                    );
                                    break;
                                }
                            }
                            if woke {
                                for h in hooks.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                                    h();
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!("cannot listen for queued jobs: {e}"),
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_secs(30));
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the listener for queued jobs: {e}");
    }
}

pub struct Postgres {
    client: Client,
    /// The URL with its password masked, for messages.
    shown: String,
}

/// Whether a URL names a PostgreSQL database.
pub fn is_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn err(shown: &str, e: &postgres::Error) -> StoreError {
    // The server's own message when there is one (a refused login, an unknown database),
    // else the client's; never the URL's password (only `shown` is used).
    let msg = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string(),
    };
    StoreError::Db(format!("{shown}: {msg}"))
}

impl Postgres {
    pub fn open(url: &str) -> Result<Postgres, StoreError> {
        let shown = crate::redact::database_url(url);
        let config: Config = url
            .parse()
            .map_err(|e: postgres::Error| StoreError::Url(format!("{shown}: {e}")))?;
        let client = if url.contains("sslmode=disable") {
            config.connect(NoTls)
        } else {
            let tls = native_tls::TlsConnector::new()
                .map_err(|e| StoreError::Db(format!("{shown}: TLS: {e}")))?;
            config.connect(postgres_native_tls::MakeTlsConnector::new(tls))
        }
        .map_err(|e| err(&shown, &e))?;
        Ok(Postgres { client, shown })
    }
}

/// A value bound as the type the server expects for its parameter.
fn bind(v: &Value, ty: &Type) -> Box<dyn ToSql + Sync> {
    match (v, ty) {
        (Value::Null, _) => match *ty {
            Type::INT2 => Box::new(None::<i16>),
            Type::INT4 => Box::new(None::<i32>),
            Type::INT8 => Box::new(None::<i64>),
            Type::BOOL => Box::new(None::<bool>),
            Type::FLOAT4 => Box::new(None::<f32>),
            Type::FLOAT8 => Box::new(None::<f64>),
            Type::BYTEA => Box::new(None::<Vec<u8>>),
            _ => Box::new(None::<String>),
        },
        (Value::Int(i), &Type::INT2) => Box::new(*i as i16),
        (Value::Int(i), &Type::INT4) => Box::new(*i as i32),
        (Value::Int(i), &Type::FLOAT8) => Box::new(*i as f64),
        (Value::Int(i), &Type::BOOL) => Box::new(*i != 0),
        (Value::Int(i), &Type::TEXT | &Type::VARCHAR) => Box::new(i.to_string()),
        (Value::Int(i), _) => Box::new(*i),
        (Value::Bool(b), &Type::INT2 | &Type::INT4 | &Type::INT8) => Box::new(i64::from(*b)),
        (Value::Bool(b), _) => Box::new(*b),
        (Value::Real(r), &Type::FLOAT4) => Box::new(*r as f32),
        (Value::Real(r), _) => Box::new(*r),
        (Value::Text(t), &Type::INT8) => Box::new(t.parse::<i64>().unwrap_or_default()),
        (Value::Text(t), _) => Box::new(t.clone()),
        (Value::Blob(b), _) => Box::new(b.clone()),
    }
}

/// One column of a row as a [`Value`], by its type.
fn value(row: &postgres::Row, i: usize) -> Value {
    let ty = row.columns()[i].type_();
    let got = match *ty {
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)
            .map(|v| v.map(|v| Value::Int(v.into()))),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)
            .map(|v| v.map(|v| Value::Int(v.into()))),
        Type::INT8 => row.try_get::<_, Option<i64>>(i).map(|v| v.map(Value::Int)),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)
            .map(|v| v.map(Value::Bool)),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(i)
            .map(|v| v.map(|v| Value::Real(v.into()))),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i).map(|v| v.map(Value::Real)),
        Type::BYTEA => row
            .try_get::<_, Option<Vec<u8>>>(i)
            .map(|v| v.map(Value::Blob)),
        _ => row
            .try_get::<_, Option<String>>(i)
            .map(|v| v.map(Value::Text)),
    };
    got.ok().flatten().unwrap_or(Value::Null)
}

struct Tx<'a, 'b> {
    tx: &'a mut postgres::Transaction<'b>,
    shown: &'a str,
}

impl Tx<'_, '_> {
    /// The statement prepared, and its parameters bound as the server's types want them.
    fn prepare(
        &mut self,
        q: &Rendered,
    ) -> Result<(postgres::Statement, Vec<Box<dyn ToSql + Sync>>), StoreError> {
        let stmt = self.tx.prepare(&q.sql).map_err(|e| err(self.shown, &e))?;
        let params = q
            .params
            .iter()
            .zip(stmt.params())
            .map(|(v, ty)| bind(v, ty))
            .collect();
        Ok((stmt, params))
    }
}

fn rows_of(rows: Vec<postgres::Row>) -> Vec<Row> {
    let Some(first) = rows.first() else {
        return Vec::new();
    };
    let columns: std::sync::Arc<[String]> = first
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    rows.iter()
        .map(|r| Row {
            columns: columns.clone(),
            values: (0..r.len()).map(|i| value(r, i)).collect(),
        })
        .collect()
}

impl Conn for Tx<'_, '_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn rows(&mut self, q: &Rendered) -> Result<Vec<Row>, StoreError> {
        let (stmt, params) = self.prepare(q)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|b| b.as_ref()).collect();
        self.tx
            .query(&stmt, &refs)
            .map(rows_of)
            .map_err(|e| err(self.shown, &e))
    }

    fn count(&mut self, q: &Rendered) -> Result<u64, StoreError> {
        let (stmt, params) = self.prepare(q)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|b| b.as_ref()).collect();
        self.tx
            .execute(&stmt, &refs)
            .map_err(|e| err(self.shown, &e))
    }

    fn last_insert_id(&mut self) -> Result<i64, StoreError> {
        Err(StoreError::Db(
            "PostgreSQL returns ids with RETURNING, not from the connection".into(),
        ))
    }

    fn ddl(&mut self, sql: &str) -> Result<(), StoreError> {
        self.tx.batch_execute(sql).map_err(|e| err(self.shown, &e))
    }
}

impl Driver for Postgres {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn read(&mut self, work: Work<'_>) -> Result<(), StoreError> {
        let shown = self.shown.clone();
        let mut tx = self
            .client
            .build_transaction()
            .read_only(true)
            .start()
            .map_err(|e| err(&shown, &e))?;
        work(&mut Tx {
            tx: &mut tx,
            shown: &shown,
        })?;
        tx.commit().map_err(|e| err(&shown, &e))
    }

    fn write(&mut self, work: Work<'_>) -> Result<(), StoreError> {
        let shown = self.shown.clone();
        let mut tx = self.client.transaction().map_err(|e| err(&shown, &e))?;
        // On error the transaction is dropped, which rolls it back.
        work(&mut Tx {
            tx: &mut tx,
            shown: &shown,
        })?;
        tx.commit().map_err(|e| err(&shown, &e))
    }

    fn announce_enqueue(&mut self) -> Result<(), StoreError> {
        let shown = self.shown.clone();
        self.client
            .batch_execute(&format!("NOTIFY {CHANNEL}"))
            .map_err(|e| err(&shown, &e))
    }

    fn raw(&mut self, sql: &str, _show_secrets: bool) -> Result<RawResult, StoreError> {
        // The simple protocol: any statement, values as text. The store masks the secret
        // columns by name.
        let shown = self.shown.clone();
        let messages = self.client.simple_query(sql).map_err(|e| err(&shown, &e))?;
        let mut out = RawResult::default();
        for m in messages {
            match m {
                postgres::SimpleQueryMessage::RowDescription(cols) => {
                    out.columns = cols.iter().map(|c| c.name().to_string()).collect();
                }
                postgres::SimpleQueryMessage::Row(r) => {
                    if out.columns.is_empty() {
                        out.columns = r.columns().iter().map(|c| c.name().to_string()).collect();
                    }
                    out.rows.push(
                        (0..r.len())
                            .map(|i| r.get(i).map_or(Value::Null, |v| Value::Text(v.into())))
                            .collect(),
                    );
                }
                postgres::SimpleQueryMessage::CommandComplete(n) => out.changed = Some(n),
                _ => {}
            }
        }
        out.tables = vec![None; out.columns.len()];
        out.origins = vec![None; out.columns.len()];
        out.decl_types = vec![None; out.columns.len()];
        Ok(out)
    }
}

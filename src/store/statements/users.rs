//! Statements on web users and their API tokens.

use super::*;

pub const USER_COLUMNS: &[&str] = &["id", "name", "password_hash", "role", "created_at"];

pub fn user_list() -> Statement {
    Select::from("users")
        .columns(USER_COLUMNS)
        .with(Section::OrderBy(vec![(col("name"), Order::Asc)]))
        .into()
}

pub fn user_by_name(name: &str) -> Statement {
    Select::from("users")
        .columns(USER_COLUMNS)
        .filter(col("name").eq(param(name)))
        .into()
}

pub fn user_count() -> Statement {
    Select::from("users")
        .with(Section::Columns(vec![(Expr::count_star(), Some("n"))]))
        .into()
}

pub fn user_insert(name: &str, password_hash: &str, role: &str, at: i64) -> Statement {
    Insert {
        table: "users",
        values: vec![
            ("name", param(name)),
            ("password_hash", param(password_hash)),
            ("role", param(role)),
            ("created_at", param(at)),
        ],
        returning_id: Some("id"),
    }
    .into()
}

pub fn user_set_password(name: &str, password_hash: &str) -> Statement {
    Update {
        table: "users",
        set: vec![("password_hash", param(password_hash))],
        conditions: vec![col("name").eq(param(name))],
        returning: vec![],
    }
    .into()
}

pub fn user_delete(name: &str) -> Statement {
    Delete {
        table: "users",
        conditions: vec![col("name").eq(param(name))],
    }
    .into()
}

pub fn token_insert(user_id: i64, name: &str, token_hash: &str, at: i64) -> Statement {
    Insert {
        table: "api_tokens",
        values: vec![
            ("user_id", param(user_id)),
            ("name", param(name)),
            ("token_hash", param(token_hash)),
            ("created_at", param(at)),
        ],
        returning_id: Some("id"),
    }
    .into()
}

/// `api_tokens AS t` joined to the user it acts as, `users AS u` (section shared by the
/// lookup and the listing).
fn token_owner() -> Section {
    Section::Join(Join {
        kind: JoinKind::Inner,
        table: "users",
        alias: "u",
        on: qcol("u", "id").eq(qcol("t", "user_id")),
    })
}

/// The user a token belongs to, with the token's last use.
pub fn token_user(token_hash: &str) -> Statement {
    Select::from_as("api_tokens", "t")
        .with(Section::Columns(vec![
            (qcol("u", "id"), Some("id")),
            (qcol("u", "name"), Some("name")),
            (qcol("u", "password_hash"), Some("password_hash")),
            (qcol("u", "role"), Some("role")),
            (qcol("u", "created_at"), Some("created_at")),
            (qcol("t", "id"), Some("token_id")),
            (qcol("t", "last_used_at"), Some("last_used_at")),
        ]))
        .with(token_owner())
        .filter(qcol("t", "token_hash").eq(param(token_hash)))
        .into()
}

pub fn token_touch(token_id: i64, at: i64) -> Statement {
    Update {
        table: "api_tokens",
        set: vec![("last_used_at", param(at))],
        conditions: vec![col("id").eq(param(token_id))],
        returning: vec![],
    }
    .into()
}

/// Tokens with their user's name, newest first; of one user when given.
pub fn token_list(user: Option<&str>) -> Statement {
    let mut s = Select::from_as("api_tokens", "t")
        .with(Section::Columns(vec![
            (qcol("t", "id"), Some("id")),
            (qcol("u", "name"), Some("user")),
            (qcol("t", "name"), Some("label")),
            (qcol("t", "created_at"), Some("created_at")),
            (qcol("t", "last_used_at"), Some("last_used_at")),
        ]))
        .with(token_owner())
        .with(Section::OrderBy(vec![(qcol("t", "id"), Order::Desc)]));
    if let Some(u) = user {
        s = s.filter(qcol("u", "name").eq(param(u)));
    }
    s.into()
}

pub fn token_delete(id: i64) -> Statement {
    Delete {
        table: "api_tokens",
        conditions: vec![col("id").eq(param(id))],
    }
    .into()
}

/// Every token of a user (a new password ends them).
pub fn token_delete_for_user(user_id: i64) -> Statement {
    Delete {
        table: "api_tokens",
        conditions: vec![col("user_id").eq(param(user_id))],
    }
    .into()
}

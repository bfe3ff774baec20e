//! The one error type of the page and API handlers, and the one place where a failure gets its
//! HTTP status. A page shows it as an error page, the API as `{"error": "..."}`.

use crate::queue::SubmitError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Bad input: 400.
    #[error("{0}")]
    Bad(String),
    /// Not for this user's role: 403.
    #[error("{0}")]
    Forbidden(String),
    /// At odds with the current state (re-prioritising a job that already runs): 409.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Submit(#[from] SubmitError),
}

impl WebError {
    /// The status of the answer: not found is 404, a refused change 400, the rest 500.
    pub fn status(&self) -> u16 {
        match self {
            WebError::Bad(_) => 400,
            WebError::Forbidden(_) => 403,
            WebError::Conflict(_) => 409,
            WebError::Store(e) => store_status(e),
            WebError::Submit(SubmitError::Invalid(_)) => 400,
            WebError::Submit(SubmitError::Forbidden(_)) => 403,
            // A named host or script that does not exist is bad input here, not a bad URL.
            WebError::Submit(SubmitError::Store(e)) => match store_status(e) {
                404 => 400,
                n => n,
            },
        }
    }
}

fn store_status(e: &StoreError) -> u16 {
    match e {
        StoreError::NotFound { .. } => 404,
        StoreError::Exists { .. } | StoreError::Invalid(_) | StoreError::Constraint(_) => 400,
        _ => 500,
    }
}

/// What a handler answers.
pub type WebResult = Result<super::http::Resp, WebError>;

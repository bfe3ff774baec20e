//! `Secret`: a password as scripts hold it (from `credentials(host)`). It prints, interpolates
//! and debugs as `********`, has no string functions (`chars`, `sub_string`, `len`, ... are
//! not defined for it), compares equal to nothing, and only grows by `+`, which gives another
//! `Secret`. It can be handed only to what logs in: a session's `write_secret`, and `http`'s
//! `basic_auth` option, to its own host's address only. Spaced out, reversed or halved, it
//! cannot be turned into text.

use std::sync::Arc;

use rhai::{Engine, ImmutableString};

use crate::redact::MASK;

/// The opaque value, and the address of the host it belongs to (`http`'s `basic_auth` sends
/// it there only); its `Debug` is the mask too.
#[derive(Clone)]
pub struct ScriptSecret(Arc<str>, Arc<str>);

impl std::fmt::Debug for ScriptSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(MASK)
    }
}

impl ScriptSecret {
    /// A secret of the host at `address`.
    pub fn new(s: &str, address: &str) -> ScriptSecret {
        ScriptSecret(Arc::from(s), Arc::from(address))
    }

    /// The text, for the functions that log in.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The address of the host it belongs to.
    pub fn address(&self) -> &str {
        &self.1
    }
}

pub fn register(engine: &mut Engine) {
    engine
        .register_type_with_name::<ScriptSecret>("Secret")
        .register_fn("to_string", |_: &mut ScriptSecret| MASK.to_string())
        .register_fn("to_debug", |_: &mut ScriptSecret| MASK.to_string())
        .register_fn("+", |a: ScriptSecret, b: ImmutableString| {
            ScriptSecret::new(&format!("{}{b}", a.0), &a.1)
        })
        .register_fn("+", |a: ImmutableString, b: ScriptSecret| {
            ScriptSecret::new(&format!("{a}{}", b.0), &b.1)
        })
        // Two hosts' secrets together belong to neither: basic_auth refuses the result.
        .register_fn("+", |a: ScriptSecret, b: ScriptSecret| {
            let host = if a.1 == b.1 {
                a.1.to_string()
            } else {
                String::new()
            };
            ScriptSecret::new(&format!("{}{}", a.0, b.0), &host)
        })
        // No oracle: a secret equals nothing, not even itself.
        .register_fn("==", |_: ScriptSecret, _: ImmutableString| false)
        .register_fn("==", |_: ImmutableString, _: ScriptSecret| false)
        .register_fn("!=", |_: ScriptSecret, _: ImmutableString| true)
        .register_fn("!=", |_: ImmutableString, _: ScriptSecret| true);
}

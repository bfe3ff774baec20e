//! Secrets out of text: the one mask every part prints instead of a secret, URLs made safe
//! to show, and text made one line (nothing outside can add a mail header). A leaf: it
//! depends on nothing in the crate.

/// What is shown in place of a secret.
pub const MASK: &str = "********";

/// A database URL with its password masked and its user kept, so a message still says who
/// logged in: `mssql://sa:********@db/hostler`. A password given as a query option
/// (`?password=...`, `sslpassword=`) is masked too, and an `@` in the query is not taken for
/// the end of the user info.
pub fn database_url(url: &str) -> String {
    let Some(s) = url.find("://") else {
        return url.to_string();
    };
    // The user info ends at the last `@` before the query; if there is none there but one
    // after (a `?` in an unencoded password), at the last `@` of all.
    let query = url[s..].find('?').map(|q| s + q);
    let at = url[..query.unwrap_or(url.len())]
        .rfind('@')
        .filter(|&at| at > s)
        .or_else(|| url.rfind('@').filter(|&at| at > s));
    let (head, rest) = match at {
        Some(at) => {
            let user = url[s + 3..at].split(':').next().unwrap_or("");
            (format!("{}{user}:{MASK}@", &url[..s + 3]), &url[at + 1..])
        }
        None => (String::new(), url),
    };
    let Some((base, query)) = rest.split_once('?') else {
        return format!("{head}{rest}");
    };
    let query: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.to_ascii_lowercase().contains("password") => format!("{k}={MASK}"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{head}{base}?{}", query.join("&"))
}

/// Whether a database URL carries a password: in its user info (`user:password@`) or as a
/// query option whose name holds "password".
pub fn has_password(url: &str) -> bool {
    let Some(s) = url.find("://") else {
        return false;
    };
    let rest = &url[s + 3..];
    let (authority, query) = match rest.split_once('?') {
        Some((a, q)) => (a, q),
        None => (rest, ""),
    };
    let in_user_info = authority
        .rfind('@')
        .is_some_and(|at| authority[..at].contains(':'));
    in_user_info
        || query.split('&').any(|kv| {
            kv.split('=')
                .next()
                .is_some_and(|k| k.to_ascii_lowercase().contains("password"))
        })
}

/// A URL a script asked for, for messages about the request: without user info, query or
/// fragment (a query often carries a token).
pub fn request_url(url: &str) -> String {
    let cut = url.find(['?', '#']).map_or(url, |i| &url[..i]);
    let Some(s) = cut.find("://") else {
        return cut.to_string();
    };
    let rest = &cut[s + 3..];
    // User info is only in the authority, before the first `/` of the path.
    let authority = rest.find('/').map_or(rest, |i| &rest[..i]);
    match authority.rfind('@') {
        Some(at) => format!("{}{}", &cut[..s + 3], &rest[at + 1..]),
        None => cut.to_string(),
    }
}

/// Whether an argument's (or a host var's) name says its value is a secret.
pub fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["password", "passwd", "secret", "token", "key"]
        .iter()
        .any(|w| n.contains(w))
}

/// A script argument's value as it may be shown: masked when its name says it is a secret
/// (password, secret, token, key), a URL's password masked.
pub fn argument(name: &str, value: &str) -> String {
    if secret_name(name) {
        return MASK.to_string();
    }
    if value.contains("://") {
        return database_url(value);
    }
    value.to_string()
}

/// A subject as one line of at most 200 characters: control characters (line ends among
/// them) become spaces, so script text can never add a header to a mail.
pub fn one_line(s: &str) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    flat.trim().to_string()
}

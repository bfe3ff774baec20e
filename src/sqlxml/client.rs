//! The SQLXML client: URL queries (`vroot?sql=...&root=...`, with `?` parameters as
//! name=value pairs in order) and templates (POSTed as the form field `template`, or as a raw
//! XML body, with template parameters), over ureq. A non-2xx status, an HTML page or a body
//! that is not XML is a transport error that shows the body.

use std::io::Read;
use std::time::Duration;

use base64::Engine as _;

use super::{Response, SqlxmlError, decode_stream, parse};
use crate::urlencode::encode;

/// How long a request may take, body included.
const TIMEOUT: Duration = Duration::from_secs(300);

/// A virtual root, such as `http://server/nwind`.
pub struct Client {
    /// The virtual root without credentials.
    pub base: String,
    basic: Option<String>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sqlxml::Client({})", self.base)
    }
}

/// How a template goes to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateBody {
    /// A form POST with the template in the field `template` (what an HTML form sends).
    Form,
    /// The template itself as the body (`text/xml`).
    Raw,
}

impl Client {
    /// `sqlxml+http://user:pass@server/vroot`, `sqlxml+https://...`, or plain `http(s)://`.
    /// User and password, if given, go as HTTP basic authentication.
    pub fn new(url: &str) -> Result<Client, SqlxmlError> {
        let bad = |why: &str| {
            SqlxmlError::Request(format!(
                "bad SQLXML URL {}: {why}",
                crate::redact::database_url(url)
            ))
        };
        let plain = url.strip_prefix("sqlxml+").unwrap_or(url);
        let (scheme, rest) = plain
            .split_once("://")
            .filter(|(s, _)| *s == "http" || *s == "https")
            .ok_or_else(|| bad("use sqlxml+http://SERVER/VROOT or sqlxml+https://"))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err(bad("no server"));
        }
        let basic = match userinfo {
            Some(u) => {
                let (user, pass) = u.split_once(':').unwrap_or((u, ""));
                let user = crate::urlencode::decode_part(user)
                    .map_err(|e| bad(&format!("the user name: {e}")))?;
                // The error would quote part of the password.
                let pass = crate::urlencode::decode_part(pass)
                    .map_err(|_| bad("the password is not valid percent-encoding"))?;
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
                ))
            }
            None => None,
        };
        Ok(Client {
            base: format!("{scheme}://{host}/{}", path.trim_end_matches('/')),
            basic,
            agent: crate::session::http::agent(TIMEOUT),
        })
    }

    /// The URL of a query: every value percent-encoded, `?` placeholders filled in order by
    /// the pairs after the keywords (their names do not matter to the server, only the order).
    pub fn query_url(&self, sql: &str, params: &[String], root: Option<&str>) -> String {
        let mut url = format!("{}?sql={}", self.base, encode(sql));
        if let Some(r) = root {
            url.push_str(&format!("&root={}", encode(r)));
        }
        for (i, p) in params.iter().enumerate() {
            url.push_str(&format!("&p{}={}", i + 1, encode(p)));
        }
        url
    }

    /// Runs a URL query (GET). `root` wraps the rows in one element; without it the answer
    /// is a fragment.
    pub fn query(
        &self,
        sql: &str,
        params: &[String],
        root: Option<&str>,
    ) -> Result<Response, SqlxmlError> {
        let url = self.query_url(sql, params, root);
        let mut rq = self.agent.get(&url);
        if let Some(b) = &self.basic {
            rq = rq.header("authorization", b);
        }
        self.answer(rq.call(), root)
    }

    /// Posts a template with its parameters; the rows come back under the template's root.
    pub fn template(
        &self,
        template: &str,
        params: &[(String, String)],
        how: TemplateBody,
    ) -> Result<Response, SqlxmlError> {
        let root = template_root(template)?;
        let result = match how {
            TemplateBody::Form => {
                let mut body = format!("template={}", encode(template));
                for (k, v) in params {
                    body.push_str(&format!("&{}={}", encode(k), encode(v)));
                }
                let mut rq = self
                    .agent
                    .post(&self.base)
                    .header("content-type", "application/x-www-form-urlencoded");
                if let Some(b) = &self.basic {
                    rq = rq.header("authorization", b);
                }
                rq.send(body)
            }
            TemplateBody::Raw => {
                let mut url = self.base.clone();
                for (i, (k, v)) in params.iter().enumerate() {
                    url.push(if i == 0 { '?' } else { '&' });
                    url.push_str(&format!("{}={}", encode(k), encode(v)));
                }
                let mut rq = self
                    .agent
                    .post(&url)
                    .header("content-type", "text/xml; charset=utf-8");
                if let Some(b) = &self.basic {
                    rq = rq.header("authorization", b);
                }
                rq.send(template.to_string())
            }
        };
        self.answer(result, Some(&root))
    }

    fn answer(
        &self,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        root: Option<&str>,
    ) -> Result<Response, SqlxmlError> {
        let resp = result.map_err(|e| SqlxmlError::Transport(format!("{}: {e}", self.base)))?;
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let mut body = resp.into_body().into_reader();
        if !(200..300).contains(&status) || ct.starts_with("text/html") {
            let mut text = Vec::new();
            let _ = body.by_ref().take(2000).read_to_end(&mut text);
            let what = if (200..300).contains(&status) {
                "an HTML page, not XML".to_string()
            } else {
                format!("HTTP {status}")
            };
            return Err(SqlxmlError::Transport(format!(
                "{} answered {what}: {}",
                self.base,
                String::from_utf8_lossy(&text).trim()
            )));
        }
        let input = decode_stream(body).map_err(|e| SqlxmlError::Transport(e.to_string()))?;
        parse(input, root)
    }
}

/// The root element's name of a template.
pub fn template_root(template: &str) -> Result<String, SqlxmlError> {
    let mut r = quick_xml::Reader::from_str(template);
    loop {
        match r.read_event() {
            Ok(quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)) => {
                return Ok(String::from_utf8_lossy(e.name().as_ref()).into_owned());
            }
            Ok(quick_xml::events::Event::Eof) => {
                return Err(SqlxmlError::Request(
                    "the template has no root element".into(),
                ));
            }
            Err(e) => {
                return Err(SqlxmlError::Request(format!(
                    "the template is not XML: {e}"
                )));
            }
            Ok(_) => {}
        }
    }
}

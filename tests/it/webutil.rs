//! A web server started in-process on a free loopback port, and a small cookie-keeping HTTP
//! client (ureq, no redirects followed, 4xx/5xx returned rather than raised).

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use hostler::store::{Role, Store};
use hostler::web::{self, Server, Web, WebOptions, auth};

pub const ADMIN_PW: &str = "Admin-test-pw-42";

/// A running server over a store, stopped on drop.
pub struct Site {
    pub base: String,
    pub web: Arc<Web>,
    server: Option<Server>,
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
    }
}

impl Site {
    /// Serves `store` on a free port, with users admin, oper (operator) and view (viewer),
    /// all with [`ADMIN_PW`].
    pub fn start(store: Arc<Store>, public_metrics: bool) -> Site {
        let hash = auth::hash_password(ADMIN_PW).expect("hash");
        for (name, role) in [
            ("admin", Role::Admin),
            ("oper", Role::Operator),
            ("view", Role::Viewer),
        ] {
            store.add_user(name, &hash, role, true).expect("user");
        }
        let w = Arc::new(Web::new(
            store,
            WebOptions {
                listen: "127.0.0.1:0".into(),
                public_metrics,
                allowed_hosts: vec!["hostler.example".into()],
                max_connections: 512,
                max_connections_per_client: 64,
            },
            Default::default(),
        ));
        let server = web::start(w.clone()).expect("start web");
        Site {
            base: format!("http://{}", server.addr),
            web: w,
            server: Some(server),
        }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base)
    }

    pub fn login(&self, user: &str) -> Client {
        let mut c = self.client();
        let r = c.login(user, ADMIN_PW);
        assert_eq!(r.status, 303, "login as {user}: {}", r.body);
        c
    }
}

/// A response, read in full.
#[derive(Debug)]
pub struct Got {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Got {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

pub struct Client {
    pub base: String,
    agent: ureq::Agent,
    pub cookies: BTreeMap<String, String>,
    /// The CSRF token of the last page that had one.
    pub csrf: Option<String>,
}

impl Client {
    /// A client of the server at `base` (`http://127.0.0.1:PORT`), no cookies yet.
    pub fn new(base: &str) -> Client {
        Client {
            base: base.to_string(),
            agent: ureq::Agent::config_builder()
                .max_redirects(0)
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(30)))
                .build()
                .into(),
            cookies: BTreeMap::new(),
            csrf: None,
        }
    }
}

/// The value of `<input ... name="NAME" value="...">` in a page.
pub fn field(page: &str, name: &str) -> Option<String> {
    let at = page.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &page[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_string())
}

impl Client {
    fn keep(&mut self, headers: &[(String, String)]) {
        for (n, v) in headers {
            if !n.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let first = v.split(';').next().unwrap_or("");
            if let Some((k, val)) = first.split_once('=') {
                if v.contains("Max-Age=0") || val.is_empty() {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.into(), val.into());
                }
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn finish(&mut self, r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Got {
        let mut r = r.expect("request");
        let headers: Vec<(String, String)> = r
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let mut body = String::new();
        let _ = r.body_mut().as_reader().read_to_string(&mut body);
        self.keep(&headers);
        if let Some(t) = field(&body, "csrf_token") {
            self.csrf = Some(t);
        }
        Got {
            status: r.status().as_u16(),
            headers,
            body,
        }
    }

    pub fn get(&mut self, path: &str) -> Got {
        let r = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .call();
        self.finish(r)
    }

    pub fn get_with(&mut self, path: &str, name: &str, value: &str) -> Got {
        let r = self
            .agent
            .get(format!("{}{path}", self.base))
            .header(name, value)
            .call();
        self.finish(r)
    }

    /// Posts a form as is (add `csrf_token` yourself, or use [`Client::submit`]).
    pub fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Got {
        self.post_with(path, fields, &[])
    }

    pub fn post_with(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Got {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}={}", web::http::encode(k), web::http::encode(v)))
            .collect();
        let mut rq = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded");
        for (n, v) in headers {
            rq = rq.header(*n, *v);
        }
        let r = rq.send(body.join("&"));
        self.finish(r)
    }

    /// Posts a body as a form, unencoded.
    pub fn post_raw(&mut self, path: &str, body: &str) -> Got {
        let r = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .send(body.to_string());
        self.finish(r)
    }

    /// Posts a form with the session's CSRF token.
    pub fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Got {
        if self.csrf.is_none() {
            self.get("/");
        }
        let token = self.csrf.clone().expect("a csrf token");
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.post(path, &all)
    }

    pub fn login(&mut self, user: &str, password: &str) -> Got {
        let page = self.get("/login");
        assert_eq!(page.status, 200);
        let token = field(&page.body, "csrf_token").expect("login csrf");
        let r = self.post(
            "/login",
            &[
                ("csrf_token", &token),
                ("username", user),
                ("password", password),
            ],
        );
        // That token was the login form's; the session has its own.
        self.csrf = None;
        r
    }

    /// Sends a JSON body with a bearer token.
    pub fn api_post(&mut self, path: &str, token: &str, body: &str) -> Got {
        let r = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .send(body.to_string());
        self.finish(r)
    }

    pub fn api_get(&mut self, path: &str, token: &str) -> Got {
        self.get_with(path, "authorization", &format!("Bearer {token}"))
    }
}

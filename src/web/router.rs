//! Paths to routes: a pure function of the path, so it can be property-tested. The method is
//! matched by the handler (a page's GET shows its form, its POST submits it).

/// What a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Dashboard,
    Login,
    Logout,
    /// A user's own new password.
    Password,
    Hosts,
    HostNew,
    Host(String),
    HostEdit(String),
    Scripts,
    ScriptNew,
    Script(String),
    Schedule,
    Queue,
    JobCancel(i64),
    JobPriority(i64),
    ScheduleRemove(i64),
    Runs,
    Run(i64),
    Notifications,
    Downtimes,
    DowntimeRemove(i64),
    Dependencies,
    DependencyRemove(i64),
    /// Acknowledge a host's (or, with None, the host-less) check of a script.
    Ack(Option<String>, String),
    /// A check's page: its state and its perfdata charts.
    Check(Option<String>, String),
    Metrics,
    Healthz,
    /// A heartbeat's ping: the token, and what it says.
    Ping(String, crate::store::heartbeats::Ping),
    /// SQL Server 2000's XML-over-HTTP interface over hostler's database.
    Sqlxml,
    Asset(&'static str, &'static str, &'static [u8]),
    Api(Api),
}

/// The JSON API, under `/api/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Api {
    Dashboard,
    Hosts,
    Host(String),
    Scripts,
    Script(String),
    Schedule,
    Schedules,
    /// Change a schedule in place (POST `/api/schedules/ID`).
    ScheduleEdit(i64),
    /// `/api/queue` (also `/api/jobs`).
    Queue,
    Checks,
    /// A host's check of a script (`/api/checks/HOST/SCRIPT`; host `-` for none).
    Check(Option<String>, String),
    Ack(Option<String>, String),
    /// A result pushed from outside (a passive check).
    CheckResult(Option<String>, String),
    Downtimes,
    DowntimeRemove(i64),
    Dependencies,
    DependencyRemove(i64),
    JobCancel(i64),
    JobPriority(i64),
    Runs,
    Run(i64),
    Notifications,
    /// `/api/perfdata?host=H&check=C[&label=L][&since=T&until=T]`.
    Perfdata,
}

/// The files under assets/ that the page uses, compiled in.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/style.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/app.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../assets/favicon.svg"),
    ),
];

/// A path segment naming a host, script or user: the store's plain names only, so nothing
/// that needs decoding, and never `..`.
fn name(seg: &str) -> Option<String> {
    crate::store::valid_name(seg).then(|| seg.to_string())
}

/// An id: a positive decimal number that fits an i64.
fn id(seg: &str) -> Option<i64> {
    if seg.is_empty() || !seg.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    seg.parse().ok().filter(|n| *n > 0)
}

/// The route a path names, or None (404).
pub fn route(path: &str) -> Option<Route> {
    let trimmed = path.strip_prefix('/')?;
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    let segs: Vec<&str> = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    };
    use Route as R;
    Some(match segs.as_slice() {
        [] => R::Dashboard,
        ["login"] => R::Login,
        ["logout"] => R::Logout,
        ["account", "password"] => R::Password,
        ["hosts"] => R::Hosts,
        ["hosts", "new"] => R::HostNew,
        ["hosts", h] => R::Host(name(h)?),
        ["hosts", h, "edit"] => R::HostEdit(name(h)?),
        ["scripts"] => R::Scripts,
        ["scripts", "new"] => R::ScriptNew,
        ["scripts", s] => R::Script(name(s)?),
        ["schedule"] => R::Schedule,
        ["queue"] => R::Queue,
        ["queue", j, "cancel"] => R::JobCancel(id(j)?),
        ["queue", j, "priority"] => R::JobPriority(id(j)?),
        ["schedules", s, "remove"] => R::ScheduleRemove(id(s)?),
        ["runs"] => R::Runs,
        ["runs", r] => R::Run(id(r)?),
        ["notifications"] => R::Notifications,
        ["downtimes"] => R::Downtimes,
        ["downtimes", d, "remove"] => R::DowntimeRemove(id(d)?),
        ["dependencies"] => R::Dependencies,
        ["dependencies", d, "remove"] => R::DependencyRemove(id(d)?),
        ["checks", "-", s] => R::Check(None, name(s)?),
        ["checks", h, s] => R::Check(Some(name(h)?), name(s)?),
        ["checks", "-", s, "ack"] => R::Ack(None, name(s)?),
        ["checks", h, s, "ack"] => R::Ack(Some(name(h)?), name(s)?),
        ["metrics"] => R::Metrics,
        ["healthz"] => R::Healthz,
        ["ping", t] => R::Ping(t.to_string(), super::ping::parse(None)?),
        ["ping", t, k] => R::Ping(t.to_string(), super::ping::parse(Some(k))?),
        ["sqlxml"] => R::Sqlxml,
        ["assets", f] => {
            let (n, ct, body) = ASSETS.iter().find(|(n, _, _)| n == f)?;
            R::Asset(n, ct, body)
        }
        ["favicon.ico"] => {
            let (n, ct, body) = ASSETS.iter().find(|(n, _, _)| *n == "favicon.svg")?;
            R::Asset(n, ct, body)
        }
        ["api", rest @ ..] => R::Api(api(rest)?),
        _ => return None,
    })
}

fn api(segs: &[&str]) -> Option<Api> {
    use Api as A;
    Some(match segs {
        ["dashboard"] => A::Dashboard,
        ["checks"] => A::Checks,
        ["checks", "-", s] => A::Check(None, name(s)?),
        ["checks", h, s] => A::Check(Some(name(h)?), name(s)?),
        ["checks", "-", s, "ack"] => A::Ack(None, name(s)?),
        ["checks", h, s, "ack"] => A::Ack(Some(name(h)?), name(s)?),
        ["checks", "-", s, "result"] => A::CheckResult(None, name(s)?),
        ["checks", h, s, "result"] => A::CheckResult(Some(name(h)?), name(s)?),
        ["downtimes"] => A::Downtimes,
        ["downtimes", d, "remove"] => A::DowntimeRemove(id(d)?),
        ["dependencies"] => A::Dependencies,
        ["dependencies", d, "remove"] => A::DependencyRemove(id(d)?),
        ["hosts"] => A::Hosts,
        ["hosts", h] => A::Host(name(h)?),
        ["scripts"] => A::Scripts,
        ["scripts", s] => A::Script(name(s)?),
        ["schedule"] => A::Schedule,
        ["schedules"] => A::Schedules,
        ["schedules", s] => A::ScheduleEdit(id(s)?),
        // The page's word, and the old one.
        ["queue" | "jobs"] => A::Queue,
        ["queue" | "jobs", j, "cancel"] => A::JobCancel(id(j)?),
        ["queue" | "jobs", j, "priority"] => A::JobPriority(id(j)?),
        ["runs"] => A::Runs,
        ["runs", r] => A::Run(id(r)?),
        ["notifications"] => A::Notifications,
        ["perfdata"] => A::Perfdata,
        _ => return None,
    })
}

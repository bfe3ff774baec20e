//! Channels, routes and grouping (issue 29). Each kind's message is sent to a local HTTP
//! receiver (tiny_http) and checked field by field against the service's documented shape;
//! routes by tag, escalation with and without an acknowledgement, reminders, hours and the
//! grouping of ten problems run through the real delivery loop with the clock passed in.
//! The end-to-end scenario runs `hostler serve` (the release binary in CI) with channels and
//! routes in its config file.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hostler::config::Config;
use hostler::monitord::{Channels, deliver_at};
use hostler::store::passive::Passive;
use hostler::store::{Method, NewHost, Status, Store, now_ms};
use serde_json::Value;

use crate::util::{Work, code, stderr, stdout, wait_for};

/// A request a receiver got.
#[derive(Debug, Clone)]
pub struct Got {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Got {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A local HTTP server that records each request and answers `status` with a small body.
pub struct Receiver {
    pub base: String,
    pub got: Arc<Mutex<Vec<Got>>>,
    server: Arc<tiny_http::Server>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

impl Receiver {
    pub fn start(status: u16) -> Receiver {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("listen"));
        let addr = server.server_addr().to_ip().expect("ip");
        let got = Arc::new(Mutex::new(Vec::new()));
        let (s, g) = (server.clone(), got.clone());
        std::thread::spawn(move || {
            for mut req in s.incoming_requests() {
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                g.lock().expect("lock").push(Got {
                    path: req.url().to_string(),
                    headers: req
                        .headers()
                        .iter()
                        .map(|h| (h.field.to_string(), h.value.to_string()))
                        .collect(),
                    body,
                });
                let _ = req.respond(
                    tiny_http::Response::from_string("{\"status\":\"success\"}")
                        .with_status_code(status),
                );
            }
        });
        Receiver {
            base: format!("http://{addr}"),
            got,
            server,
        }
    }

    pub fn take(&self) -> Vec<Got> {
        std::mem::take(&mut *self.got.lock().expect("lock"))
    }

    fn at(&self, path: &str) -> Vec<Got> {
        self.got
            .lock()
            .expect("lock")
            .iter()
            .filter(|g| g.path == path)
            .cloned()
            .collect()
    }
}

fn channels(toml: &str) -> Channels {
    let cfg = Config::parse(toml).unwrap_or_else(|e| panic!("config: {e}"));
    let ch = Channels::from_config(&cfg);
    ch.plan().unwrap_or_else(|e| panic!("plan: {e}"));
    ch
}

fn host(store: &Store, name: &str, tags: &[&str]) {
    store
        .add_host(&NewHost {
            name: name.into(),
            address: "127.0.0.1".into(),
            method: Some(Method::Local),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..NewHost::default()
        })
        .expect("host");
}

/// A pushed result: a hard problem (or recovery) at once, with its notification.
fn push(store: &Store, host: &str, check: &str, status: Status) {
    store
        .record_passive(&Passive {
            host: Some(host),
            check,
            status,
            message: &format!("{check} says {status:?}"),
            perfdata: None,
            by: "test",
        })
        .expect("passive");
}

const HOUR: i64 = 3_600_000;

#[test]
fn every_kind_sends_its_documented_shape() {
    let w = Work::new();
    let store = w.store();
    host(&store, "db1", &["db"]);
    let r = Receiver::start(200);
    let b = &r.base;
    std::fs::write(w.path("tg.token"), "123:SECRET-BOT-TOKEN\n").expect("token");
    let ch = channels(&format!(
        r#"
[notify]
group_window = "0s"
[channel.hook]
kind = "webhook"
url = "{b}/hook"
[channel.slack]
kind = "slack"
url = "{b}/slack"
[channel.mm]
kind = "mattermost"
url = "{b}/mm"
[channel.discord]
kind = "discord"
url = "{b}/discord"
[channel.teams]
kind = "teams"
url = "{b}/teams"
[channel.ntfy]
kind = "ntfy"
url = "{b}/ntfy"
topic = "ops"
token = "tk_ntfy"
[channel.gotify]
kind = "gotify"
url = "{b}/gotify"
token = "AppTokenG"
[channel.tg]
kind = "telegram"
url = "{b}/tg"
token_file = "{tg}"
chat_id = "-1001"
[channel.pd]
kind = "pagerduty"
url = "{b}/pd"
token = "R0UTINGKEY"
[channel.og]
kind = "opsgenie"
url = "{b}/og"
token = "GENIEKEY"
"#,
        tg = w.path("tg.token").display()
    ));
    push(&store, "db1", "check_pg", Status::Critical);
    assert_eq!(deliver_at(&store, &ch, now_ms() + 1000), 1);
    let one = |p: &str| {
        let g = r.at(p);
        assert_eq!(g.len(), 1, "{p}: {g:?}");
        g[0].clone()
    };
    let hook = one("/hook").json();
    assert_eq!(
        (
            hook["event"].as_str(),
            hook["host"].as_str(),
            hook["check"].as_str(),
            hook["state"].as_str()
        ),
        (
            Some("problem"),
            Some("db1"),
            Some("check_pg"),
            Some("critical")
        )
    );
    let slack = one("/slack").json();
    let text = slack["text"].as_str().expect("slack text");
    assert!(text.contains("db1") && text.contains("check_pg"), "{text}");
    assert_eq!(slack.as_object().map(|o| o.len()), Some(1), "{slack}");
    assert_eq!(one("/mm").json()["text"].as_str(), Some(text));
    assert_eq!(one("/discord").json()["content"].as_str(), Some(text));
    let teams = one("/teams").json();
    assert_eq!(teams["type"], "message");
    let card = &teams["attachments"][0];
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    assert_eq!(card["content"]["body"][1]["text"].as_str(), Some(text));
    let ntfy = one("/ntfy");
    assert_eq!(ntfy.header("Authorization"), Some("Bearer tk_ntfy"));
    let n = ntfy.json();
    assert_eq!(
        (n["topic"].as_str(), n["priority"].as_i64()),
        (Some("ops"), Some(5))
    );
    assert_eq!(n["message"].as_str(), Some(text));
    let gotify = one("/gotify/message");
    assert_eq!(gotify.header("X-Gotify-Key"), Some("AppTokenG"));
    assert_eq!(gotify.json()["priority"].as_i64(), Some(8));
    assert!(
        gotify.json()["title"]
            .as_str()
            .is_some_and(|t| t.contains("check_pg"))
    );
    let tg = one("/tg/bot123:SECRET-BOT-TOKEN/sendMessage").json();
    assert_eq!(
        (tg["chat_id"].as_str(), tg["text"].as_str()),
        (Some("-1001"), Some(text))
    );
    let pd = one("/pd/v2/enqueue").json();
    assert_eq!(
        (
            pd["routing_key"].as_str(),
            pd["event_action"].as_str(),
            pd["dedup_key"].as_str(),
            pd["payload"]["severity"].as_str(),
            pd["payload"]["source"].as_str(),
        ),
        (
            Some("R0UTINGKEY"),
            Some("trigger"),
            Some("hostler/db1/check_pg"),
            Some("critical"),
            Some("db1")
        )
    );
    assert!(
        pd["payload"]["summary"]
            .as_str()
            .is_some_and(|s| !s.is_empty() && s.len() <= 1024)
    );
    let og = one("/og/v2/alerts");
    assert_eq!(og.header("Authorization"), Some("GenieKey GENIEKEY"));
    let o = og.json();
    assert_eq!(
        (o["alias"].as_str(), o["priority"].as_str()),
        (Some("hostler/db1/check_pg"), Some("P1"))
    );
    assert!(
        o["message"]
            .as_str()
            .is_some_and(|m| m.chars().count() <= 130)
    );
    r.take();

    // The recovery resolves PagerDuty's incident and closes Opsgenie's alert, by the same key.
    push(&store, "db1", "check_pg", Status::Ok);
    assert_eq!(deliver_at(&store, &ch, now_ms() + 1000), 1);
    let pd = one("/pd/v2/enqueue").json();
    assert_eq!(
        (pd["event_action"].as_str(), pd["dedup_key"].as_str()),
        (Some("resolve"), Some("hostler/db1/check_pg"))
    );
    assert!(pd.get("payload").is_none(), "{pd}");
    one("/og/v2/alerts/hostler%2Fdb1%2Fcheck_pg/close?identifierType=alias");
    let all = store.notifications(5).expect("n");
    assert!(all.iter().all(|n| n.delivered_at.is_some()), "{all:?}");
    assert!(
        all[0]
            .channel
            .as_deref()
            .is_some_and(|c| c.split(',').count() == 10),
        "{:?}",
        all[0].channel
    );
}

#[test]
fn a_failing_channel_is_retried_alone_and_its_secret_is_not_shown() {
    let w = Work::new();
    let store = w.store();
    host(&store, "db1", &[]);
    let (good, bad) = (Receiver::start(200), Receiver::start(500));
    let ch = channels(&format!(
        r#"
[notify]
group_window = "0s"
[channel.good]
kind = "slack"
url = "{}/services/T0/B0/GOODSECRET"
[channel.bad]
kind = "slack"
url = "{}/services/T0/B0/BADSECRET"
"#,
        good.base, bad.base
    ));
    push(&store, "db1", "check_pg", Status::Critical);
    let now = now_ms() + 1000;
    assert_eq!(deliver_at(&store, &ch, now), 0);
    let n = &store.notifications(1).expect("n")[0];
    assert_eq!((n.tries, n.channel.as_deref()), (1, Some("good")));
    let err = n.error.clone().expect("error");
    assert!(err.contains("bad: HTTP 500"), "{err}");
    assert!(!err.contains("BADSECRET"), "{err}");
    // The retry goes to the failed channel only: the good one is not sent the same twice.
    assert_eq!(deliver_at(&store, &ch, now + HOUR), 0);
    assert_eq!(good.take().len(), 1);
    assert_eq!(bad.take().len(), 2);
}

#[test]
fn ten_problems_in_a_window_are_one_message() {
    let w = Work::new();
    let store = w.store();
    let r = Receiver::start(200);
    let ch = channels(&format!(
        r#"
[notify]
group_window = "10s"
[channel.hook]
kind = "webhook"
url = "{b}/hook"
[channel.slack]
kind = "slack"
url = "{b}/slack"
[channel.pd]
kind = "pagerduty"
url = "{b}/pd"
token = "K"
"#,
        b = r.base
    ));
    let t0 = now_ms();
    for i in 0..10 {
        host(&store, &format!("web{i}"), &[]);
        push(&store, &format!("web{i}"), "check_http", Status::Critical);
    }
    // Within the window: held, nothing sent but PagerDuty's (an alert per event).
    assert_eq!(deliver_at(&store, &ch, t0 + 2_000), 0);
    assert_eq!(r.at("/pd/v2/enqueue").len(), 10);
    assert!(r.at("/hook").is_empty() && r.at("/slack").is_empty());
    // The window's end: one message each, listing all ten.
    assert_eq!(deliver_at(&store, &ch, t0 + 11_000), 10);
    let hook = r.at("/hook");
    assert_eq!(hook.len(), 1);
    let h = hook[0].json();
    assert_eq!(h["count"].as_u64(), Some(10));
    let events = h["events"].as_array().expect("events");
    assert_eq!(events.len(), 10);
    assert!(
        events
            .iter()
            .all(|e| e["event"] == "problem" && e["check"] == "check_http")
    );
    let slack = r.at("/slack");
    assert_eq!(slack.len(), 1);
    let text = slack[0].json()["text"].as_str().expect("text").to_string();
    assert!(text.starts_with("10 events:"), "{text}");
    for i in 0..10 {
        assert!(text.contains(&format!("web{i}")), "{text}");
    }
    assert_eq!(r.at("/pd/v2/enqueue").len(), 10);
}

#[test]
fn routes_by_tag_escalation_acknowledgement_and_reminders() {
    let w = Work::new();
    let store = w.store();
    host(&store, "db1", &["db"]);
    host(&store, "db2", &["db"]);
    host(&store, "web1", &["web"]);
    let r = Receiver::start(200);
    let ch = channels(&format!(
        r#"
[notify]
group_window = "0s"
[channel.dbteam]
kind = "slack"
url = "{b}/dbteam"
[channel.ops]
kind = "webhook"
url = "{b}/ops"
[channel.pager]
kind = "pagerduty"
url = "{b}/pager"
token = "K"

[[route]]
tags = ["db"]
channels = ["dbteam"]
continue = true

[[route]]
after = "10m"
repeat = "1h"
channels = ["pager"]
continue = true

[[route]]
tags = ["web"]
channels = ["ops"]
"#,
        b = r.base
    ));
    let t0 = now_ms();
    push(&store, "db1", "check_pg", Status::Critical);
    push(&store, "db2", "check_pg", Status::Critical);
    push(&store, "web1", "check_http", Status::Critical);
    // At once: the db team's channel for the db hosts, ops for web1; the pager waits.
    assert_eq!(deliver_at(&store, &ch, t0 + 1_000), 0);
    let texts = |p: &str| -> Vec<String> { r.at(p).iter().map(|g| g.body.clone()).collect() };
    assert_eq!(texts("/dbteam").len(), 2);
    assert!(texts("/dbteam").iter().any(|t| t.contains("db1")));
    assert_eq!(texts("/ops").len(), 1);
    assert!(texts("/ops")[0].contains("web1"));
    assert!(texts("/pager/v2/enqueue").is_empty());
    // db2 is acknowledged, web1 recovers: only db1 is escalated after 10 minutes.
    store
        .acknowledge(Some("db2"), "check_pg", "ticket 4711", "alice")
        .expect("ack");
    push(&store, "web1", "check_http", Status::Ok);
    deliver_at(&store, &ch, t0 + 11 * 60_000);
    let paged: Vec<Value> = r.at("/pager/v2/enqueue").iter().map(Got::json).collect();
    assert_eq!(paged.len(), 1, "{paged:?}");
    assert_eq!(paged[0]["dedup_key"], "hostler/db1/check_pg");
    // Nothing is left pending: the skipped escalations are done with.
    assert!(
        store
            .notifications(20)
            .expect("n")
            .iter()
            .filter(|n| n.event.map(|e| e.as_str()) != Some("acknowledgement"))
            .all(|n| n.delivered_at.is_some()),
        "{:?}",
        store.notifications(20)
    );
    // Two hours on, db1 still fails unacknowledged: one reminder, to the pager (the repeating
    // route) after its 10 minutes; the db team's route does not repeat, so it is not told.
    r.take();
    deliver_at(&store, &ch, t0 + 2 * HOUR);
    deliver_at(&store, &ch, t0 + 2 * HOUR + 11 * 60_000);
    let reminders: Vec<_> = store
        .notifications(30)
        .expect("n")
        .into_iter()
        .filter(|n| n.event.map(|e| e.as_str()) == Some("reminder"))
        .collect();
    assert_eq!(reminders.len(), 1, "{reminders:?}");
    assert_eq!(reminders[0].host.as_deref(), Some("db1"));
    assert!(
        reminders[0]
            .subject
            .starts_with("REMINDER: db1/check_pg still CRITICAL")
    );
    assert_eq!(r.at("/pager/v2/enqueue").len(), 1);
    assert!(r.at("/dbteam").is_empty(), "the db route does not repeat");
    // Not again before the next hour.
    deliver_at(&store, &ch, t0 + 2 * HOUR + 20 * 60_000);
    let count = |s: &Store| {
        s.notifications(50)
            .expect("n")
            .iter()
            .filter(|n| n.event.map(|e| e.as_str()) == Some("reminder"))
            .count()
    };
    assert_eq!(count(&store), 1);
    deliver_at(&store, &ch, t0 + 3 * HOUR + 10_000);
    assert_eq!(count(&store), 2, "{:?}", store.checks());
}

#[test]
fn a_route_outside_its_hours_gives_way_to_the_next() {
    let w = Work::new();
    let store = w.store();
    host(&store, "db1", &[]);
    let r = Receiver::start(200);
    let ch = channels(&format!(
        r#"
[notify]
group_window = "0s"
[channel.office]
kind = "slack"
url = "{b}/office"
[channel.night]
kind = "slack"
url = "{b}/night"
[[route]]
hours = "Mon-Fri 08:00-18:00"
channels = ["office"]
[[route]]
channels = ["night"]
"#,
        b = r.base
    ));
    let saturday_night = next_local(jiff::civil::Weekday::Saturday, 3);
    let monday_morning = next_local(jiff::civil::Weekday::Monday, 10);
    push(&store, "db1", "check_pg", Status::Critical);
    assert_eq!(deliver_at(&store, &ch, saturday_night), 1);
    assert_eq!((r.at("/office").len(), r.at("/night").len()), (0, 1));
    push(&store, "db1", "check_pg", Status::Ok);
    r.take();
    assert_eq!(deliver_at(&store, &ch, monday_morning), 1);
    assert_eq!((r.at("/office").len(), r.at("/night").len()), (1, 0));
}

/// The next time (epoch ms, after now) that is this weekday at this hour, local time.
fn next_local(day: jiff::civil::Weekday, hour: i8) -> i64 {
    let tz = jiff::tz::TimeZone::system();
    let mut d = jiff::Zoned::now().with_time_zone(tz.clone()).date();
    loop {
        d = d.tomorrow().expect("date");
        if d.weekday() == day {
            let t = d.at(hour, 0, 0, 0).to_zoned(tz).expect("zoned");
            return t.timestamp().as_millisecond();
        }
    }
}

#[test]
fn hours_parse_and_contain() {
    use hostler::notify::Hours;
    use jiff::civil::Weekday::*;
    let h = Hours::parse("Mon-Fri 08:00-18:00; Sat 22:00-02:00").expect("hours");
    assert!(h.contains(Monday, 8 * 60));
    assert!(!h.contains(Monday, 18 * 60));
    assert!(!h.contains(Sunday, 12 * 60));
    assert!(h.contains(Saturday, 23 * 60));
    assert!(h.contains(Sunday, 60), "over midnight into Sunday");
    assert!(!h.contains(Monday, 60));
    let all = Hours::parse("00:00-24:00").expect("all day");
    assert!(all.contains(Sunday, 0) && all.contains(Wednesday, 1439));
    for bad in [
        "",
        "Mon",
        "Funday 08:00-09:00",
        "08:00",
        "08:00-08:00",
        "25:00-26:00",
        "Mon-Fri 8-18",
    ] {
        let e = Hours::parse(bad).expect_err(bad);
        assert!(e.contains("hours") && !e.contains('\n'), "{e}");
    }
}

proptest::proptest! {
    #[test]
    fn hours_never_panic_on_any_text(text in ".{0,40}", day in 0u8..7, minute in 0u16..1440) {
        if let Ok(h) = hostler::notify::Hours::parse(&text) {
            let d = [jiff::civil::Weekday::Monday, jiff::civil::Weekday::Tuesday,
                jiff::civil::Weekday::Wednesday, jiff::civil::Weekday::Thursday,
                jiff::civil::Weekday::Friday, jiff::civil::Weekday::Saturday,
                jiff::civil::Weekday::Sunday][day as usize];
            let _ = h.contains(d, minute);
        }
    }
}

/// Debian's aiosmtpd (python3-aiosmtpd), started on a free loopback port; stopped on drop.
struct Smtpd {
    child: std::process::Child,
    port: u16,
    out: std::path::PathBuf,
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Smtpd {
    /// None (the test is skipped, saying why) when aiosmtpd is not installed.
    fn start(w: &Work, tls: Option<(&str, &str)>) -> Option<Smtpd> {
        if !crate::util::have(
            "/usr/lib/python3/dist-packages/aiosmtpd/__init__.py",
            "Debian's python3-aiosmtpd, the SMTP peer",
        ) {
            return None;
        }
        let out = w.path(if tls.is_some() {
            "mail-tls"
        } else {
            "mail-plain"
        });
        std::fs::create_dir_all(&out).expect("mail dir");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/smtpd.py");
        let mut cmd = std::process::Command::new("/usr/bin/python3");
        cmd.arg(script).arg(&out);
        match tls {
            Some((cert, key)) => cmd.args(["starttls", cert, key]),
            None => cmd.arg("plain"),
        };
        let log = std::fs::File::create(out.with_extension("log")).expect("log");
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("smtpd");
        let mut line = String::new();
        let mut r = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        std::io::BufRead::read_line(&mut r, &mut line).expect("port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("smtpd said {line:?}"));
        Some(Smtpd { child, port, out })
    }

    fn mails(&self) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(&self.out)
            .expect("dir")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| std::fs::read_to_string(p).expect("mail"))
            .collect()
    }
}

/// A self-signed certificate for 127.0.0.1, made by openssl.
fn certificate(w: &Work) -> (String, String) {
    let (cert, key) = (w.path("smtp.crt"), w.path("smtp.key"));
    let o = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (cert.display().to_string(), key.display().to_string())
}

fn header<'a>(mail: &'a str, name: &str) -> Option<&'a str> {
    mail.split("\r\n\r\n")
        .next()?
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

#[test]
fn smtp_plain_and_starttls_with_login_and_a_wrong_password() {
    let w = Work::new();
    let Some(plain) = Smtpd::start(&w, None) else {
        return;
    };
    let (cert, key) = certificate(&w);
    let Some(secure) = Smtpd::start(&w, Some((&cert, &key))) else {
        return;
    };
    std::fs::write(w.path("right.pw"), "right-password\n").expect("pw");
    std::fs::write(w.path("wrong.pw"), "wrong-password\n").expect("pw");
    let conf = w.path("hostler.toml");
    std::fs::write(
        &conf,
        format!(
            r#"
[monitord]
node = "mon1.example.net"
[channel.relay]
kind = "smtp"
server = "127.0.0.1:{p}"
tls = "none"
from = "hostler@example.net"
to = ["ops@example.net", "dba@example.net"]
[channel.mail]
kind = "smtp"
server = "127.0.0.1:{s}"
tls = "starttls"
ca_file = "{cert}"
user = "hostler"
password_file = "{right}"
from = "Hostler <hostler@example.net>"
to = ["ops@example.net"]
[channel.badpw]
kind = "smtp"
server = "127.0.0.1:{s}"
ca_file = "{cert}"
user = "hostler"
password_file = "{wrong}"
from = "hostler@example.net"
to = ["ops@example.net"]
[channel.notls]
kind = "smtp"
server = "127.0.0.1:{p}"
tls = "starttls"
from = "hostler@example.net"
to = ["ops@example.net"]
"#,
            p = plain.port,
            s = secure.port,
            right = w.path("right.pw").display(),
            wrong = w.path("wrong.pw").display(),
        ),
    )
    .expect("config");
    let conf = conf.display().to_string();
    let run = |ch: &str| w.run(&["--config", &conf, "notify", "test", ch]);

    let o = run("relay");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("relay: delivered (SMTP 250"),
        "{}",
        stdout(&o)
    );
    let m = &plain.mails()[0];
    assert_eq!(
        header(m, "X-Envelope-To"),
        Some("ops@example.net,dba@example.net")
    );
    assert_eq!(
        header(m, "Subject"),
        Some("hostler test: channel relay works")
    );
    assert!(
        header(m, "Date").is_some_and(|d| d.contains(" +") || d.contains(" -")),
        "{m}"
    );
    let id = header(m, "Message-ID").expect("Message-ID");
    assert!(
        id.starts_with('<') && id.ends_with("@mon1.example.net>"),
        "{id}"
    );
    assert!(header(m, "From").is_some_and(|f| f.contains("hostler@example.net")));

    // STARTTLS with a login, trusting the server's certificate through ca_file.
    let o = run("mail");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let m = &secure.mails()[0];
    assert_eq!(header(m, "To"), Some("ops@example.net"));
    assert!(
        m.contains("A test message from hostler on mon1.example.net"),
        "{m}"
    );

    // A wrong password: a clear error, non-zero, and the password nowhere.
    let o = run("badpw");
    assert_ne!(code(&o), 0);
    let err = stderr(&o);
    assert!(
        err.contains("badpw: not delivered") && err.contains("535"),
        "{err}"
    );
    assert!(
        !err.contains("wrong-password") && err.trim().lines().count() == 1,
        "{err}"
    );
    assert_eq!(secure.mails().len(), 1);

    // tls = "starttls" against a server that offers none: refused, nothing sent in the clear.
    let o = run("notls");
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("notls: not delivered"),
        "{}",
        stderr(&o)
    );
    assert_eq!(plain.mails().len(), 1);
}

#[test]
fn bad_channel_and_route_config_is_refused_with_its_key_named() {
    let w = Work::new();
    let conf = w.path("hostler.toml");
    for (text, want) in [
        ("[channel.x]\nkind = \"pager\"\n", "unknown variant `pager`"),
        (
            "[channel.x]\nkind = \"slack\"\n",
            "slack needs url (or url_file)",
        ),
        (
            "[channel.x]\nkind = \"slack\"\nurl = \"http://h/x\"\ntopic = \"t\"\n",
            "slack does not take topic",
        ),
        (
            "[channel.x]\nkind = \"slack\"\nurl = \"http://h/x\"\n[[route]]\nchannels = [\"y\"]\n",
            "no channel \"y\"",
        ),
        (
            "[channel.x]\nkind = \"slack\"\nurl = \"http://h/x\"\n[[route]]\nchannels = [\"x\"]\nevents = [\"problme\"]\n",
            "unknown event \"problme\"",
        ),
        (
            "[channel.x]\nkind = \"slack\"\nurl = \"http://h/x\"\n[[route]]\nchannels = [\"x\"]\nhours = \"Mon-Fry 08:00-18:00\"\n",
            "\"Fry\" is not a day",
        ),
        (
            "[channel.x]\nkind = \"slack\"\nurl = \"http://h/x\"\n[[route]]\nchannels = [\"x\"]\nafter = \"soon\"\n",
            "after: bad duration",
        ),
        (
            "[channel.x]\nkind = \"smtp\"\nserver = \"h:25\"\nfrom = \"a@b\"\nto = [\"c@d\"]\nuser = \"u\"\n",
            "user and password_file go together",
        ),
        ("[notify]\ngroup_window = \"2h\"\n", "group_window"),
    ] {
        std::fs::write(&conf, text).expect("config");
        let o = w.run(&[
            "--config",
            &conf.display().to_string(),
            "notify",
            "channels",
        ]);
        assert_ne!(code(&o), 0, "{text}");
        let err = stderr(&o);
        assert!(err.contains(want), "{text}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    // A secret file that is not there stops `serve` before it starts.
    std::fs::write(
        &conf,
        "[channel.pd]\nkind = \"pagerduty\"\ntoken_file = \"/nonexistent/pd.key\"\n",
    )
    .expect("config");
    let o = w.run(&[
        "--config",
        &conf.display().to_string(),
        "serve",
        "--no-demo",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("token_file /nonexistent/pd.key"),
        "{}",
        stderr(&o)
    );
}

/// `hostler serve` with channels and routes in its config: ten problems on tagged hosts in
/// one window are one Slack message to the team's channel; the others' go to the webhook; and
/// `hostler notify routes` says the same.
#[test]
fn serve_routes_and_groups_through_its_config() {
    let w = Work::new();
    let r = Receiver::start(200);
    let d = crate::hostile::Daemon::start(
        &w,
        &format!(
            r#"poll_interval = 0.1
[notify]
group_window = "2s"
[channel.dbteam]
kind = "slack"
url = "{b}/services/T/B/SECRET"
[channel.ops]
kind = "webhook"
url = "{b}/ops"
[[route]]
tags = ["db"]
channels = ["dbteam"]
[[route]]
channels = ["ops"]
"#,
            b = r.base
        ),
        None,
    );
    let store = w.store();
    for i in 0..10 {
        host(&store, &format!("db{i}"), &["db"]);
    }
    host(&store, "web1", &["web"]);
    let conf = w.path("hostler.toml").display().to_string();
    let o = w.run(&[
        "--config", &conf, "notify", "routes", "--host", "db3", "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let routes: Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(routes[0]["channel"], "dbteam");
    assert_eq!(routes[0]["route"], 1);
    // Results pushed into the shared database, as a passive check's are: the daemon delivers.
    for i in 0..10 {
        push(&store, &format!("db{i}"), "check_pg", Status::Critical);
    }
    push(&store, "web1", "check_http", Status::Critical);
    assert!(
        wait_for(Duration::from_secs(20), || r
            .at("/services/T/B/SECRET")
            .len()
            + r.at("/ops").len()
            >= 2),
        "{:?}\n{}",
        r.got.lock().expect("lock"),
        d.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    let slack = r.at("/services/T/B/SECRET");
    assert_eq!(slack.len(), 1, "{slack:?}");
    let text = slack[0].json()["text"].as_str().expect("text").to_string();
    assert!(text.starts_with("10 events:"), "{text}");
    let ops = r.at("/ops");
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].json()["host"], "web1");
    assert!(
        !d.log().contains("SECRET"),
        "the Slack URL's token is in the log"
    );
}

#[test]
fn the_readme_channels_example_is_a_valid_config() {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("### Channels and routes")
        .nth(1)
        .expect("the README's channels section");
    let toml = section
        .split("```toml\n")
        .nth(1)
        .and_then(|t| t.split("```").next())
        .expect("its TOML example");
    let cfg = Config::parse(toml).unwrap_or_else(|e| panic!("{e}"));
    let plan = hostler::notify::Plan::from_config(&cfg).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.channels.len(), 3);
    assert_eq!(plan.rules.len(), 3);
}

#[test]
fn a_mail_is_one_header_each_whatever_the_subject_says() {
    use hostler::notify::send::{Smtp, mail_bytes};
    let s = Smtp {
        server: "127.0.0.1:25".into(),
        tls: hostler::config::SmtpTls::None,
        ca_pem: None,
        user: None,
        password: None,
        from: "Hostler <hostler@example.net>".into(),
        to: vec!["ops@example.net".into()],
        node: "mon1".into(),
    };
    let m = mail_bytes(
        &s,
        "Störung\r\nBcc: evil@example.net",
        "Grüße\nzweite Zeile",
        1_700_000_000_000,
    )
    .expect("mail");
    let text = String::from_utf8(m).expect("utf-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
    assert!(!head.lines().any(|l| l.starts_with("Bcc:")), "{head}");
    let subject = head
        .lines()
        .find(|l| l.starts_with("Subject: "))
        .expect("subject");
    assert!(subject.starts_with("Subject: =?utf-8?b?"), "{subject}");
    assert!(head.contains("Content-Transfer-Encoding: base64"));
    assert!(body.lines().all(|l| l.len() <= 76));
    assert!(
        text.split("\r\n").all(|l| !l.contains('\n')),
        "bare LF in {text:?}"
    );
    for bad in ["not an address", "a@b\r\nBcc: c@d"] {
        let s = Smtp {
            from: bad.into(),
            ..s.clone()
        };
        assert!(mail_bytes(&s, "x", "y", 0).is_err(), "{bad}");
    }
}

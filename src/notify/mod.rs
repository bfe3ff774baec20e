//! Notifications out: channels (`[channel.NAME]`, each a service of its kind), routes
//! (`[[route]]`, which notification goes where, with escalation, reminders and hours) and the
//! shape of each service's message. Read and checked from the config as a [`Plan`]; the
//! daemon's delivery loop (`monitord::deliver`) decides when and carries out the sending.
//!
//! The old `[notify] webhook` and `command` are channels named `webhook` and `command`.

pub mod message;
pub mod route;
pub mod send;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::{self, ChannelKind, Config, SmtpTls};
pub use message::Outbound;
pub use route::{Facts, Hours, Rule, Target};

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("[channel.{0}]: {1}")]
    Channel(String, String),
    #[error("[[route]] number {0}: {1}")]
    Route(usize, String),
    #[error("[notify] {0}")]
    Notify(String),
}

/// A channel, read and checked.
#[derive(Debug, Clone)]
pub struct ChannelDef {
    pub name: String,
    pub kind: ChannelKind,
    pub cfg: config::Channel,
    /// At most this many deliveries a minute (0: no limit).
    pub per_minute: usize,
    /// The command's mail `To:` (`[notify] mail_to`).
    pub mail_to: Option<String>,
}

/// The channels, the routes and the group window, read from the config.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub channels: Vec<ChannelDef>,
    pub rules: Vec<Rule>,
    pub group_window_ms: i64,
    /// The page's public address, for links to runs.
    pub public_url: Option<String>,
}

/// The keys a kind takes besides `kind` and `max_per_minute`, and those it needs.
fn keys(kind: ChannelKind) -> (&'static [&'static str], &'static [&'static str]) {
    use ChannelKind::*;
    match kind {
        Webhook | Slack | Teams | Discord | Mattermost => (&["url", "url_file"], &["url"]),
        Command => (&["command"], &["command"]),
        Smtp => (
            &[
                "server",
                "tls",
                "ca_file",
                "user",
                "password_file",
                "from",
                "to",
            ],
            &["server", "from", "to"],
        ),
        Ntfy => (&["url", "topic", "token", "token_file"], &["topic"]),
        Gotify => (&["url", "token", "token_file"], &["url", "token"]),
        Telegram => (
            &["url", "token", "token_file", "chat_id"],
            &["token", "chat_id"],
        ),
        Pagerduty | Opsgenie => (&["url", "token", "token_file"], &["token"]),
    }
}

/// Which optional keys a channel gives.
fn given(c: &config::Channel) -> Vec<&'static str> {
    let mut g = Vec::new();
    let mut add = |k, on: bool| {
        if on {
            g.push(k)
        }
    };
    add("url", c.url.is_some());
    add("url_file", c.url_file.is_some());
    add("token", c.token.is_some());
    add("token_file", c.token_file.is_some());
    add("command", c.command.is_some());
    add("server", c.server.is_some());
    add("tls", c.tls.is_some());
    add("ca_file", c.ca_file.is_some());
    add("user", c.user.is_some());
    add("password_file", c.password_file.is_some());
    add("from", c.from.is_some());
    add("to", !c.to.is_empty());
    add("chat_id", c.chat_id.is_some());
    add("topic", c.topic.is_some());
    g
}

/// A service's own server, where it has one everybody uses.
fn default_url(kind: ChannelKind) -> Option<&'static str> {
    match kind {
        ChannelKind::Ntfy => Some("https://ntfy.sh"),
        ChannelKind::Telegram => Some("https://api.telegram.org"),
        ChannelKind::Pagerduty => Some("https://events.pagerduty.com"),
        ChannelKind::Opsgenie => Some("https://api.opsgenie.com"),
        _ => None,
    }
}

fn kind_name(kind: ChannelKind) -> String {
    format!("{kind:?}").to_ascii_lowercase()
}

/// A secret given inline or in a file (its first line).
fn secret(inline: &Option<String>, file: &Option<String>, key: &str) -> Result<String, String> {
    match (inline, file) {
        (Some(v), _) => Ok(v.clone()),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|s| s.lines().next().unwrap_or("").trim().to_string())
            .map_err(|e| format!("{key}_file {path}: {e}")),
        (None, None) => Ok(String::new()),
    }
}

impl ChannelDef {
    fn check(
        name: &str,
        cfg: &config::Channel,
        default_per_minute: usize,
    ) -> Result<ChannelDef, NotifyError> {
        let bad = |m: String| NotifyError::Channel(name.to_string(), m);
        if name.is_empty()
            || name == "log"
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(bad(
                "a channel's name is letters, digits, - and _ (and not \"log\")".into(),
            ));
        }
        let (takes, needs) = keys(cfg.kind);
        let kind = kind_name(cfg.kind);
        for k in given(cfg) {
            if !takes.contains(&k) {
                return Err(bad(format!(
                    "{kind} does not take {k} (it takes {})",
                    takes.join(", ")
                )));
            }
        }
        let has = |k: &str| match k {
            "url" => cfg.url.is_some() || cfg.url_file.is_some(),
            "token" => cfg.token.is_some() || cfg.token_file.is_some(),
            other => given(cfg).contains(&other),
        };
        for k in needs {
            if !has(k) {
                let also = match *k {
                    "url" if takes.contains(&"url_file") => " (or url_file)",
                    "token" => " (or token_file)",
                    _ => "",
                };
                return Err(bad(format!("{kind} needs {k}{also}")));
            }
        }
        if cfg.url.is_some() && cfg.url_file.is_some()
            || cfg.token.is_some() && cfg.token_file.is_some()
        {
            return Err(bad("give a secret inline or in a file, not both".into()));
        }
        if cfg.user.is_some() != cfg.password_file.is_some() {
            return Err(bad("user and password_file go together".into()));
        }
        if let Some(u) = &cfg.url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(bad(format!(
                "url {:?} is not http:// or https://",
                crate::redact::request_url(u)
            )));
        }
        Ok(ChannelDef {
            name: name.to_string(),
            kind: cfg.kind,
            cfg: cfg.clone(),
            per_minute: cfg.max_per_minute.unwrap_or(default_per_minute),
            mail_to: None,
        })
    }

    /// Reads the files a channel's secrets live in, so that a missing one is told at start.
    pub fn check_files(&self) -> Result<(), NotifyError> {
        let c = &self.cfg;
        let bad = |m: String| NotifyError::Channel(self.name.clone(), m);
        secret(&c.url, &c.url_file, "url").map_err(bad)?;
        secret(&c.token, &c.token_file, "token").map_err(bad)?;
        secret(&None, &c.password_file, "password").map_err(bad)?;
        if let Some(ca) = &c.ca_file {
            std::fs::read(ca).map_err(|e| bad(format!("ca_file {ca}: {e}")))?;
        }
        Ok(())
    }

    /// Sends `items` (notification fields) as this channel's messages; what came back.
    pub fn send(&self, items: &[Value], node: &str) -> Result<String, String> {
        let c = &self.cfg;
        let url = secret(&c.url, &c.url_file, "url")?;
        let token = secret(&c.token, &c.token_file, "token")?;
        let shape = message::Shape {
            url: if url.is_empty() {
                default_url(self.kind).unwrap_or_default().to_string()
            } else {
                url.clone()
            },
            token: token.clone(),
            chat_id: c.chat_id.clone(),
            topic: c.topic.clone(),
            mail_to: self.mail_to.clone(),
        };
        let smtp = match self.kind {
            ChannelKind::Smtp => Some(send::Smtp {
                server: c.server.clone().unwrap_or_default(),
                tls: c.tls.unwrap_or(SmtpTls::Starttls),
                ca_pem: c
                    .ca_file
                    .as_ref()
                    .map(|f| std::fs::read(f).map_err(|e| format!("ca_file {f}: {e}")))
                    .transpose()?,
                user: c.user.clone(),
                password: c
                    .password_file
                    .is_some()
                    .then(|| secret(&None, &c.password_file, "password"))
                    .transpose()?,
                from: c.from.clone().unwrap_or_default(),
                to: c.to.clone(),
                node: node.to_string(),
            }),
            _ => None,
        };
        // A webhook URL is a secret too (Slack's, Teams', Discord's carry their token).
        let secrets: Vec<&str> = [url.as_str(), token.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        let mut answers = Vec::new();
        for o in message::build(self.kind, &shape, items) {
            answers.push(send::outbound(
                &o,
                c.command.as_deref(),
                smtp.as_ref(),
                &secrets,
            )?);
        }
        Ok(answers.join("; "))
    }
}

impl Plan {
    /// Reads and checks `[notify]`, `[channel.*]` and `[[route]]`.
    pub fn from_config(c: &Config) -> Result<Plan, NotifyError> {
        Plan::new(&c.notify, &c.channel, &c.route, c.web.public_url.clone())
    }

    pub fn new(
        notify: &config::Notify,
        channels: &BTreeMap<String, config::Channel>,
        routes: &[config::Route],
        public_url: Option<String>,
    ) -> Result<Plan, NotifyError> {
        let mut defs = Vec::new();
        if let Some(url) = &notify.webhook {
            let c = config::Channel {
                url: Some(url.clone()),
                ..config::Channel::new(ChannelKind::Webhook)
            };
            defs.push(
                ChannelDef::check("webhook", &c, notify.max_per_minute)
                    .map_err(|e| NotifyError::Notify(format!("webhook: {e}")))?,
            );
        }
        if let Some(cmd) = &notify.command {
            let c = config::Channel {
                command: Some(cmd.clone()),
                ..config::Channel::new(ChannelKind::Command)
            };
            let mut d = ChannelDef::check("command", &c, notify.max_per_minute)
                .map_err(|e| NotifyError::Notify(format!("command: {e}")))?;
            d.mail_to = notify.mail_to.clone();
            defs.push(d);
        }
        for (name, c) in channels {
            if defs.iter().any(|d| &d.name == name) {
                return Err(NotifyError::Channel(
                    name.clone(),
                    format!("the name is taken by [notify] {name}; give this channel another"),
                ));
            }
            let mut d = ChannelDef::check(name, c, notify.max_per_minute)?;
            if c.kind == ChannelKind::Command {
                d.mail_to = c.to.first().cloned().or_else(|| notify.mail_to.clone());
            }
            defs.push(d);
        }
        let names: Vec<String> = defs.iter().map(|d| d.name.clone()).collect();
        let rules = routes
            .iter()
            .enumerate()
            .map(|(i, r)| Rule::read(i + 1, r, &names))
            .collect::<Result<Vec<_>, _>>()?;
        let window = crate::when::parse_duration(&notify.group_window)
            .map_err(|e| NotifyError::Notify(format!("group_window: {e}")))?;
        if window.as_secs() > 3600 {
            return Err(NotifyError::Notify(format!(
                "group_window = {:?}: at most 1h (a window's first event waits that long)",
                notify.group_window
            )));
        }
        Ok(Plan {
            channels: defs,
            rules,
            group_window_ms: window.as_millis() as i64,
            public_url,
        })
    }

    /// Checks the files the channels' secrets live in (at start, so a typo is told then).
    pub fn check_files(&self) -> Result<(), NotifyError> {
        self.channels.iter().try_for_each(ChannelDef::check_files)
    }

    pub fn channel(&self, name: &str) -> Option<&ChannelDef> {
        self.channels.iter().find(|c| c.name == name)
    }

    /// Where a notification with these facts goes at `at_ms` (epoch ms; routes' hours are in
    /// this node's time zone).
    pub fn targets(&self, f: &Facts, at_ms: i64) -> Vec<Target> {
        let names: Vec<String> = self.channels.iter().map(|c| c.name.clone()).collect();
        let local = jiff::Timestamp::from_millisecond(at_ms)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .to_zoned(jiff::tz::TimeZone::system());
        let minute = local.hour() as u16 * 60 + local.minute() as u16;
        route::targets(&self.rules, &names, f, local.weekday(), minute)
    }

    /// The shortest `repeat` of the routes a reminder for these facts would take, in ms.
    pub fn repeat_ms(&self, f: &Facts, at_ms: i64) -> Option<i64> {
        let reminder = Facts {
            event: "reminder",
            ..*f
        };
        let targets = self.targets(&reminder, at_ms);
        targets
            .iter()
            .filter_map(|t| t.route.and_then(|r| self.rules[r].repeat))
            .map(|d| d.as_millis().min(i64::MAX as u128) as i64)
            .min()
    }
}

//! What each kind of channel is sent: pure functions from notifications to requests, each in
//! the documented shape of its service (the page that documents it is cited at each kind).
//! Several notifications for one channel (a group) become one message that lists them, except
//! for PagerDuty and Opsgenie, where each event is an alert of its own.

use serde_json::{Value, json};

use crate::config::ChannelKind;
use crate::store::Notification;

/// What to send: an HTTP request with a JSON body, a mail for a command's stdin, or a mail
/// for SMTP.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    /// A JSON POST. The URL may hold a secret (a webhook's token, a bot token): it goes into
    /// no message.
    Http {
        url: String,
        headers: Vec<(String, String)>,
        body: Value,
    },
    Command {
        mail: String,
        env: Vec<(String, String)>,
    },
    Mail {
        subject: String,
        body: String,
    },
}

/// A channel's settings that shape its messages (secrets are added by the sender).
#[derive(Debug, Clone, Default)]
pub struct Shape {
    /// The base URL: a webhook's whole URL, or a service's server.
    pub url: String,
    pub token: String,
    pub chat_id: Option<String>,
    pub topic: Option<String>,
    pub mail_to: Option<String>,
}

pub use crate::redact::one_line;

/// A notification's fields, as the webhook's JSON keys and the command's environment.
pub fn fields(n: &Notification, public_url: Option<&str>) -> Value {
    let d = n.details.clone().unwrap_or(Value::Null);
    let url = match (public_url, n.run_id) {
        (Some(base), Some(run)) => {
            Value::from(format!("{}/runs/{run}", base.trim_end_matches('/')))
        }
        _ => Value::Null,
    };
    json!({
        "event": n.event.map_or("notify", |e| e.as_str()),
        "host": n.host,
        "check": d.get("check").cloned().unwrap_or(Value::Null),
        "state": d.get("state").cloned().unwrap_or(Value::Null),
        "previous_state": d.get("previous_state").cloned().unwrap_or(Value::Null),
        "since": d.get("since").cloned().unwrap_or(Value::Null),
        "message": d.get("message").cloned().unwrap_or(Value::Null),
        "perfdata": d.get("perfdata").cloned().unwrap_or(Value::Null),
        "run_id": n.run_id,
        "url": url,
        "subject": n.subject,
        "body": n.body,
        "id": n.id,
        "created_at": n.created_at,
    })
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

/// The subject of a message: the one event's, or a count.
fn subject(items: &[Value]) -> String {
    match items {
        [one] => one_line(&text(one, "subject")),
        many => format!("hostler: {} events", many.len()),
    }
}

/// The plain text of a message: the event's subject, body and link; or one line per event.
pub fn plain(items: &[Value]) -> String {
    match items {
        [one] => {
            let mut t = text(one, "subject");
            let body = text(one, "body");
            if !body.is_empty() && body != t {
                t.push('\n');
                t.push_str(&body);
            }
            if let Some(u) = one.get("url").and_then(Value::as_str) {
                t.push('\n');
                t.push_str(u);
            }
            t
        }
        many => {
            let mut t = format!("{} events:", many.len());
            for i in many {
                t.push_str("\n- ");
                t.push_str(&one_line(&text(i, "subject")));
                if let Some(u) = i.get("url").and_then(Value::as_str) {
                    t.push_str(&format!(" ({u})"));
                }
            }
            t
        }
    }
}

/// The worst state among the events, lower case ("ok" for recoveries).
fn state(items: &[Value]) -> &'static str {
    let rank = |s: &str| match s {
        "critical" => 3,
        "unknown" => 2,
        "warning" => 1,
        _ => 0,
    };
    let worst = items
        .iter()
        .map(|i| text(i, "state").to_ascii_lowercase())
        .max_by_key(|s| rank(s))
        .unwrap_or_default();
    ["ok", "warning", "unknown", "critical"][rank(&worst)]
}

/// PagerDuty's and Opsgenie's key for one check's alert: the same for its trigger and resolve.
pub fn dedup_key(item: &Value) -> String {
    format!(
        "hostler/{}/{}",
        item.get("host").and_then(Value::as_str).unwrap_or("-"),
        item.get("check")
            .and_then(Value::as_str)
            .unwrap_or_else(|| item
                .get("event")
                .and_then(Value::as_str)
                .unwrap_or("notify"))
    )
}

/// Whether a kind sends several events as one message.
pub fn groups(kind: ChannelKind) -> bool {
    !matches!(kind, ChannelKind::Pagerduty | ChannelKind::Opsgenie)
}

/// At most `max` characters, cut on a character boundary with "…" when cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The requests that deliver `items` (one notification's fields each, in order) to a channel.
pub fn build(kind: ChannelKind, shape: &Shape, items: &[Value]) -> Vec<Outbound> {
    let json_post = |url: String, body: Value| Outbound::Http {
        url,
        headers: Vec::new(),
        body,
    };
    let base = shape.url.trim_end_matches('/');
    match kind {
        // hostler's own shape: the fields above, or `events` with a count for a group.
        ChannelKind::Webhook => vec![json_post(
            shape.url.clone(),
            match items {
                [one] => one.clone(),
                many => json!({
                    "event": "group",
                    "count": many.len(),
                    "subject": subject(many),
                    "body": plain(many),
                    "events": many,
                }),
            },
        )],
        ChannelKind::Command => vec![Outbound::Command {
            mail: mail_text(items, shape.mail_to.as_deref()),
            env: match items {
                [one] => environment(one),
                many => vec![("HOSTLER_COUNT".into(), many.len().to_string())],
            },
        }],
        ChannelKind::Smtp => vec![Outbound::Mail {
            subject: subject(items),
            body: plain(items),
        }],
        // https://api.slack.com/messaging/webhooks: `text` is the message (mrkdwn).
        ChannelKind::Slack => vec![json_post(shape.url.clone(), json!({ "text": plain(items) }))],
        // https://developers.mattermost.com/integrate/webhooks/incoming/: `text`, Markdown.
        ChannelKind::Mattermost => {
            vec![json_post(shape.url.clone(), json!({ "text": plain(items) }))]
        }
        // https://discord.com/developers/docs/resources/webhook#execute-webhook: `content`, at
        // most 2000 characters.
        ChannelKind::Discord => vec![json_post(
            shape.url.clone(),
            json!({ "content": cut(&plain(items), 2000) }),
        )],
        // https://learn.microsoft.com/en-us/connectors/teams/?tabs=text1#microsoft-teams-webhook
        // (Workflows' "post to a channel when a webhook request is received"): a message with
        // one Adaptive Card attachment (https://adaptivecards.io/explorer/TextBlock.html).
        ChannelKind::Teams => vec![json_post(
            shape.url.clone(),
            json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.2",
                        "body": [
                            {"type": "TextBlock", "text": subject(items), "weight": "Bolder", "size": "Medium", "wrap": true},
                            {"type": "TextBlock", "text": plain(items), "wrap": true},
                        ],
                    },
                }],
            }),
        )],
        // https://docs.ntfy.sh/publish/#publish-as-json: POST to the server's root with
        // `topic`, `message`, `title`, `priority` (1-5), `tags`; a token as Bearer.
        ChannelKind::Ntfy => {
            let priority = match state(items) {
                "critical" => 5,
                "warning" | "unknown" => 4,
                _ => 3,
            };
            let mut headers = Vec::new();
            if !shape.token.is_empty() {
                headers.push(("Authorization".into(), format!("Bearer {}", shape.token)));
            }
            vec![Outbound::Http {
                url: base.to_string(),
                headers,
                body: json!({
                    "topic": shape.topic.clone().unwrap_or_default(),
                    "title": subject(items),
                    "message": plain(items),
                    "priority": priority,
                    "tags": [state(items)],
                }),
            }]
        }
        // https://gotify.net/api-docs#/message/createMessage: POST /message with the app's
        // token in X-Gotify-Key; `title`, `message`, `priority` (0-10, 8 and above alert).
        ChannelKind::Gotify => {
            let priority = match state(items) {
                "critical" => 8,
                "warning" | "unknown" => 5,
                _ => 2,
            };
            vec![Outbound::Http {
                url: format!("{base}/message"),
                headers: vec![("X-Gotify-Key".into(), shape.token.clone())],
                body: json!({ "title": subject(items), "message": plain(items), "priority": priority }),
            }]
        }
        // https://core.telegram.org/bots/api#sendmessage: POST {api}/bot{token}/sendMessage
        // with `chat_id` and `text` (at most 4096 characters).
        ChannelKind::Telegram => vec![json_post(
            format!("{base}/bot{}/sendMessage", shape.token),
            json!({
                "chat_id": shape.chat_id.clone().unwrap_or_default(),
                "text": cut(&plain(items), 4096),
            }),
        )],
        // https://developer.pagerduty.com/docs/events-api-v2/trigger-events/ and
        // .../resolve-events/: POST /v2/enqueue; `routing_key`, `event_action` (trigger,
        // acknowledge, resolve), one `dedup_key` per check; a trigger's `payload` has
        // `summary` (at most 1024), `source`, `severity` (critical, error, warning, info).
        ChannelKind::Pagerduty => items
            .iter()
            .map(|i| {
                let action = match text(i, "event").as_str() {
                    "recovery" => "resolve",
                    "acknowledgement" => "acknowledge",
                    _ => "trigger",
                };
                let mut body = json!({
                    "routing_key": shape.token,
                    "event_action": action,
                    "dedup_key": dedup_key(i),
                });
                if action == "trigger" {
                    let severity = match text(i, "state").to_ascii_lowercase().as_str() {
                        "critical" => "critical",
                        "warning" => "warning",
                        "unknown" => "error",
                        _ => "info",
                    };
                    body["payload"] = json!({
                        "summary": cut(&text(i, "subject"), 1024),
                        "source": i.get("host").and_then(Value::as_str).unwrap_or("hostler"),
                        "severity": severity,
                        "component": i.get("check"),
                        "class": text(i, "event"),
                        "custom_details": {"message": i.get("message"), "body": text(i, "body"), "perfdata": i.get("perfdata")},
                    });
                    if let Some(u) = i.get("url").and_then(Value::as_str) {
                        body["links"] = json!([{"href": u, "text": "the run in hostler"}]);
                    }
                }
                json_post(format!("{base}/v2/enqueue"), body)
            })
            .collect(),
        // https://docs.opsgenie.com/docs/alert-api: POST /v2/alerts with `message` (at most
        // 130), `alias` (dedup), `description` (at most 15000), `priority` P1-P5; a recovery
        // closes and an acknowledgement acknowledges by alias (`identifierType=alias`).
        // Authorization: GenieKey KEY.
        ChannelKind::Opsgenie => items
            .iter()
            .map(|i| {
                let alias = dedup_key(i);
                let by_alias = crate::urlencode::encode(&alias);
                let (url, body) = match text(i, "event").as_str() {
                    "recovery" => (
                        format!("{base}/v2/alerts/{by_alias}/close?identifierType=alias"),
                        json!({"source": "hostler", "note": cut(&text(i, "subject"), 25000)}),
                    ),
                    "acknowledgement" => (
                        format!("{base}/v2/alerts/{by_alias}/acknowledge?identifierType=alias"),
                        json!({"source": "hostler", "note": cut(&text(i, "body"), 25000)}),
                    ),
                    _ => {
                        let priority = match text(i, "state").to_ascii_lowercase().as_str() {
                            "critical" => "P1",
                            "warning" => "P3",
                            "unknown" => "P2",
                            _ => "P5",
                        };
                        (
                            format!("{base}/v2/alerts"),
                            json!({
                                "message": cut(&text(i, "subject"), 130),
                                "alias": cut(&alias, 512),
                                "description": cut(&plain(std::slice::from_ref(i)), 15000),
                                "priority": priority,
                                "source": "hostler",
                                "entity": i.get("host"),
                                "tags": [text(i, "event")],
                            }),
                        )
                    }
                };
                Outbound::Http {
                    url,
                    headers: vec![("Authorization".into(), format!("GenieKey {}", shape.token))],
                    body,
                }
            })
            .collect(),
    }
}

/// The mail a `command` channel gets: `To:` (from `[notify] mail_to`), `Subject:`, `Date:`, a
/// body, and the links to the runs. Header values are one line each, whatever a script wrote.
pub fn mail_text(items: &[Value], mail_to: Option<&str>) -> String {
    let one = one_line;
    let mut m = String::new();
    if let Some(to) = mail_to {
        m.push_str(&format!("To: {}\n", one(to)));
    }
    m.push_str(&format!("Subject: {}\n", one(&subject(items))));
    let created = items
        .first()
        .and_then(|i| i.get("created_at"))
        .and_then(Value::as_i64)
        .unwrap_or_else(crate::store::now_ms);
    let date = jiff::Timestamp::from_millisecond(created)
        .map(|t| {
            t.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%a, %d %b %Y %H:%M:%S %z")
                .to_string()
        })
        .unwrap_or_default();
    m.push_str(&format!("Date: {date}\n"));
    m.push_str("Content-Type: text/plain; charset=utf-8\n");
    let event = match items {
        [one] => text(one, "event"),
        _ => "group".into(),
    };
    m.push_str(&format!("X-Hostler-Event: {}\n\n", one(&event)));
    match items {
        [one] => {
            m.push_str(&text(one, "body"));
            m.push('\n');
            if let Some(u) = one.get("url").and_then(Value::as_str) {
                m.push_str(&format!("\n{u}\n"));
            }
        }
        many => {
            m.push_str(&plain(many));
            m.push('\n');
        }
    }
    m
}

/// `HOSTLER_EVENT`, `HOSTLER_HOST`, `HOSTLER_CHECK`, ...: each field that has a value.
fn environment(f: &Value) -> Vec<(String, String)> {
    let Some(map) = f.as_object() else {
        return Vec::new();
    };
    map.iter()
        .filter(|(k, _)| !matches!(k.as_str(), "subject" | "body"))
        .filter_map(|(k, v)| {
            let text = match v {
                Value::Null => return None,
                Value::String(s) => one_line(s),
                other => other.to_string(),
            };
            Some((format!("HOSTLER_{}", k.to_uppercase()), text))
        })
        .collect()
}

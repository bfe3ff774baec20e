//! The site file: hosts, checks (rules by tag), dependencies, heartbeats and a scripts
//! folder, as TOML. One file or a folder of them (merged in name order). A bad file is refused
//! whole: the error names the file, the line and the key, with a did-you-mean for a mistyped
//! key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::SiteError;

/// A `[[host]]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HostDef {
    pub name: String,
    pub address: String,
    pub method: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub site: Option<String>,
    #[serde(default)]
    pub vars: BTreeMap<String, toml::Value>,
    /// Checks this host's checks depend on (`HOST/CHECK`).
    #[serde(default)]
    pub parents: Vec<String>,
    /// The password from this environment variable ...
    pub password_env: Option<String>,
    /// ... or from this file (its first line).
    pub password_file: Option<String>,
    pub key_path: Option<String>,
    pub prompt: Option<String>,
}

/// A `[[check]]`: a script on named hosts and/or on every host with a tag (a rule).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CheckDef {
    pub script: String,
    pub name: Option<String>,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub sites: Vec<String>,
    pub quorum: Option<i64>,
    pub every: Option<String>,
    pub cron: Option<String>,
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    pub fix: Option<String>,
    #[serde(default)]
    pub fix_args: BTreeMap<String, String>,
    pub retries: Option<i64>,
    pub retry_every: Option<String>,
    pub max_fixes: Option<i64>,
    pub fix_window: Option<String>,
    pub fix_backoff: Option<String>,
    pub timeout: Option<String>,
    pub priority: Option<i64>,
    pub attempts: Option<i64>,
}

/// A `[[depend]]`: a host (all its checks) or one check behind a parent check.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DependDef {
    /// `HOST` or `HOST/CHECK`.
    pub child: String,
    /// `HOST/CHECK`.
    pub on: String,
    pub group: Option<String>,
}

/// A `[[heartbeat]]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatDef {
    pub name: String,
    pub host: Option<String>,
    pub every: Option<String>,
    pub cron: Option<String>,
    pub grace: Option<String>,
    pub fix: Option<String>,
}

/// A `[[downtime]]` that recurs: a host, a tag or a check (`HOST/CHECK`) quiet each time a
/// cron expression fires, for `duration`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DowntimeDef {
    pub host: Option<String>,
    pub tag: Option<String>,
    pub check: Option<String>,
    pub cron: String,
    pub duration: String,
    pub reason: String,
    #[serde(default)]
    pub children: bool,
}

/// `[scripts]`: a folder of `NAME.rhai` files, relative to the site file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScriptsDef {
    pub dir: String,
}

/// One site file as written.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SiteFile {
    #[serde(default)]
    pub host: Vec<HostDef>,
    #[serde(default)]
    pub check: Vec<CheckDef>,
    #[serde(default)]
    pub depend: Vec<DependDef>,
    #[serde(default)]
    pub heartbeat: Vec<HeartbeatDef>,
    #[serde(default)]
    pub downtime: Vec<DowntimeDef>,
    pub scripts: Option<ScriptsDef>,
}

/// A script read from the scripts folder.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptSource {
    pub name: String,
    pub source: String,
}

/// The site as the files say it: every file's objects, in file order, and the scripts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Site {
    pub hosts: Vec<HostDef>,
    pub checks: Vec<CheckDef>,
    pub depends: Vec<DependDef>,
    pub heartbeats: Vec<HeartbeatDef>,
    pub downtimes: Vec<DowntimeDef>,
    pub scripts: Vec<ScriptSource>,
}

/// The key names serde expects where it found `bad`, from its message.
fn expected(msg: &str) -> Vec<String> {
    msg.split_once("expected")
        .map(|(_, rest)| {
            rest.split('`')
                .enumerate()
                .filter(|(i, _)| i % 2 == 1)
                .map(|(_, k)| k.to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// toml's error as one line: the file, the line, the message, and a did-you-mean for an
/// unknown key.
fn parse_error(path: &Path, text: &str, e: &toml::de::Error) -> SiteError {
    let line = e.span().map(|s| {
        text.as_bytes()[..s.start.min(text.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    });
    let mut msg = e.message().replace('\n', " ");
    if let Some(bad) = msg
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
        .map(String::from)
    {
        let best = expected(&msg)
            .into_iter()
            .map(|k| (strsim::damerau_levenshtein(&bad, &k), k))
            .filter(|(d, _)| *d <= 3)
            .min();
        if let Some((_, k)) = best {
            msg = format!("unknown key `{bad}`: did you mean `{k}`? ({msg})");
        }
    }
    SiteError::File {
        path: path.display().to_string(),
        line,
        msg,
    }
}

/// Reads one site file.
pub fn parse(path: &Path, text: &str) -> Result<SiteFile, SiteError> {
    toml::from_str(text).map_err(|e| parse_error(path, text, &e))
}

/// The files a path names: itself, or the `*.toml` files of a folder in name order.
fn files(path: &Path) -> Result<Vec<PathBuf>, SiteError> {
    let io = |e: std::io::Error| SiteError::Read(path.display().to_string(), e.to_string());
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    out.sort();
    if out.is_empty() {
        return Err(SiteError::Read(
            path.display().to_string(),
            "no .toml file in the folder".into(),
        ));
    }
    Ok(out)
}

/// The largest script file read.
const MAX_SCRIPT: u64 = 1 << 20;

/// Reads a site file or folder, and the scripts folders it names.
pub fn load(path: &Path) -> Result<Site, SiteError> {
    let mut site = Site::default();
    for file in files(path)? {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| SiteError::Read(file.display().to_string(), e.to_string()))?;
        let f = parse(&file, &text)?;
        if let Some(s) = &f.scripts {
            let dir = file.parent().unwrap_or(Path::new(".")).join(&s.dir);
            site.scripts.extend(scripts(&dir)?);
        }
        site.hosts.extend(f.host);
        site.checks.extend(f.check);
        site.depends.extend(f.depend);
        site.heartbeats.extend(f.heartbeat);
        site.downtimes.extend(f.downtime);
    }
    Ok(site)
}

/// The `*.rhai` files of a folder, each a script named by its file's stem.
fn scripts(dir: &Path) -> Result<Vec<ScriptSource>, SiteError> {
    let shown = dir.display().to_string();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| SiteError::Read(shown.clone(), format!("[scripts] dir: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rhai"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let name = p
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        if size > MAX_SCRIPT {
            return Err(SiteError::Read(
                p.display().to_string(),
                format!("{size} bytes: a script is at most 1 MiB"),
            ));
        }
        let source = std::fs::read_to_string(&p)
            .map_err(|e| SiteError::Read(p.display().to_string(), e.to_string()))?;
        out.push(ScriptSource { name, source });
    }
    Ok(out)
}

//! The shell's meta-commands (`:help`, `:hosts`, `:run`, ...). They mirror the CLI's verbs.

use std::io::Write;

use super::Shell;
use super::complete::META;
use crate::app::App;
use crate::script::{RunRequest, check_syntax};
use crate::session::{LocalProcess, Transport};
use crate::store::{Method, NewScript};

/// Runs a meta-command; returns true to leave the shell. Errors are printed, not returned,
/// except a broken terminal.
pub fn run(app: &App, verbs: super::Verbs, shell: &mut Shell, line: &str) -> anyhow::Result<bool> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let result = match words.first().copied().unwrap_or_default() {
        ":quit" | ":q" | ":exit" => return Ok(true),
        ":help" | ":h" => {
            for (m, d) in META {
                println!("  {m:<10} {d}");
            }
            println!(
                "  Rhai code runs with the script API; functions: {}",
                crate::script::api_function_names().join(" ")
            );
            Ok(())
        }
        ":hosts" => shell
            .env
            .store
            .hosts()
            .map_err(anyhow::Error::from)
            .map(|hosts| {
                for h in hosts {
                    println!("  {:<20} {:<7} {}", h.name, h.method, h.address);
                }
            }),
        ":scripts" => shell
            .env
            .store
            .scripts()
            .map_err(anyhow::Error::from)
            .map(|scripts| {
                for s in scripts {
                    println!("  {:<20} {:<8} v{}", s.name, s.kind.as_str(), s.version);
                }
            }),
        ":run" => meta_run(shell, &words[1..]),
        ":schedule" => (verbs.schedule)(app, &words[1..]),
        ":edit" => edit(shell, words.get(1).copied()),
        ":connect" => connect(shell, words.get(1).copied()),
        other => Err(anyhow::anyhow!("unknown command {other}; :help lists them")),
    };
    if let Err(e) = result {
        println!("error: {e:#}");
    }
    std::io::stdout().flush()?;
    Ok(false)
}

fn meta_run(shell: &Shell, args: &[&str]) -> anyhow::Result<()> {
    let script = args
        .first()
        .ok_or_else(|| anyhow::anyhow!("usage: :run SCRIPT [HOST]"))?;
    let host = args.get(1).map(|h| h.to_string());
    if let Some(h) = &host {
        shell.env.store.host(h)?;
    }
    let req = RunRequest {
        script: script.to_string(),
        host,
        attempt: 1,
        ..RunRequest::default()
    };
    let run = shell
        .env
        .execute(&req, Some(shell.ctx.guard.cancel.clone()));
    let id = shell
        .env
        .store
        .record_run(&run, crate::store::JobAction::Keep)?;
    print!("{}", run.output);
    println!(
        "{}: {} (run {id})",
        run.status.as_str().to_uppercase(),
        run.message
    );
    Ok(())
}

fn edit(shell: &Shell, name: Option<&str>) -> anyhow::Result<()> {
    let name = name.ok_or_else(|| anyhow::anyhow!("usage: :edit SCRIPT"))?;
    if !crate::store::valid_name(name) {
        anyhow::bail!("invalid script name {name:?}: use letters, digits, '-', '_' and '.'");
    }
    let existing = shell.env.store.find_script(name)?;
    // A private (0700) folder of our own: nobody else can swap the file before it is read back.
    let dir = tempfile::Builder::new().prefix("hostler-edit-").tempdir()?;
    let path = dir.path().join(format!("{name}.rhai"));
    std::fs::write(&path, existing.as_ref().map_or("", |s| s.source.as_str()))?;
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    let mut parts = editor.split_whitespace();
    let prog = parts.next().unwrap_or("vi");
    let status = std::process::Command::new(prog)
        .args(parts)
        .arg(&path)
        .status()?;
    let source = std::fs::read_to_string(&path)?;
    drop(dir);
    if !status.success() {
        anyhow::bail!("{editor} exited with {status}; nothing saved");
    }
    if existing.as_ref().is_some_and(|s| s.source == source) {
        println!("unchanged");
        return Ok(());
    }
    check_syntax(name, &source).map_err(|e| anyhow::anyhow!("{e}; nothing saved"))?;
    let (description, kind) = crate::bundled::header(&source);
    let kind = kind
        .or(existing.as_ref().map(|s| s.kind))
        .unwrap_or(crate::store::ScriptKind::Task);
    let v = shell.env.store.save_scripts(&[NewScript {
        name,
        source: &source,
        description: description.or(existing.and_then(|s| s.description)),
        kind,
    }])?;
    println!("saved {name} (version {})", v.first().copied().unwrap_or(1));
    Ok(())
}

fn connect(shell: &Shell, host: Option<&str>) -> anyhow::Result<()> {
    let name = host.ok_or_else(|| anyhow::anyhow!("usage: :connect HOST"))?;
    let h = shell.env.store.host(name)?;
    match h.method {
        Method::Local => {
            // A login-shell user's $SHELL is hostler itself: fall back to /bin/sh.
            let sh = std::env::var("SHELL")
                .ok()
                .filter(|s| !s.ends_with("hostler"))
                .unwrap_or_else(|| "/bin/sh".into());
            let mut p = LocalProcess::spawn(std::path::Path::new(&sh), &["-i".to_string()], true)?;
            println!("{name}: {sh}; Ctrl-] returns to hostler\r");
            super::connect::relay(&mut p)?;
            let _ = p.close();
            println!("\r\nback in hostler");
            Ok(())
        }
        Method::Http => anyhow::bail!("{name} is an http host: it has no terminal to connect to"),
        Method::Ssh | Method::Telnet => {
            // Logged in the way scripts log in: by loginlib (the database's row if edited).
            let mut scope = rhai::Scope::new();
            let code = format!("import \"loginlib\" as l; l::login(get_host({name:?}))");
            let _login = crate::script::api::Enter::new(&shell.ctx);
            let value = shell
                .engine
                .eval_with_scope::<rhai::Dynamic>(&mut scope, &code)
                .map_err(|e| {
                    anyhow::anyhow!("{name}: {}", shell.ctx.mask(&crate::script::error_text(&e)))
                })?;
            let s = value
                .try_cast::<crate::script::api::SessionRef>()
                .ok_or_else(|| anyhow::anyhow!("{name}: loginlib::login returned no session"))?;
            let mut session = s.0.lock().unwrap_or_else(|p| p.into_inner());
            println!("{name}: {}; Ctrl-] returns to hostler\r", session.peer());
            // A shell whose prompt loginlib replaced gets its own back, and the operator's
            // terminal type; a host with its own prompt pattern (a router) just a new line.
            if h.prompt.is_none() {
                let term = std::env::var("TERM").unwrap_or_default();
                session.restore_prompt(&term)?;
            } else {
                session.write("\n")?;
            }
            let (pending, transport) = session.relay_parts();
            {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                out.write_all(&pending)?;
                out.flush()?;
            }
            super::connect::relay(transport)?;
            let _ = session.close();
            println!("\r\nback in hostler");
            Ok(())
        }
    }
}

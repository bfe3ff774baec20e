//! The web page in a real browser: Debian's headless Chromium, driven over WebDriver by
//! Debian's chromedriver (plain HTTP + JSON, through ureq). Against the real `hostler serve`
//! (monitord and the web page in one process), it logs in, schedules a script on a host, sees
//! the run complete on the runs page, and opens its transcript. Screenshots of each step are
//! saved under target/browser/ for a person to look at.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{Work, code, have, stderr, stdout};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const PW: &str = "Browser-test-pw-5";

/// chromedriver on a free port, killed on drop; one browser session.
struct Driver {
    child: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    shots: PathBuf,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self
            .agent
            .delete(format!("{}/session/{}", self.base, self.session))
            .call();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

impl Driver {
    fn start() -> Driver {
        let port = free_port();
        let child = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        let ready = crate::util::wait_for(Duration::from_secs(20), || {
            agent
                .get(format!("{base}/status"))
                .call()
                .is_ok_and(|r| r.status() == 200)
        });
        assert!(ready, "chromedriver did not start");
        let profile = tempfile::tempdir().expect("profile dir");
        // The flags the machine notes call for: no sandbox as root, and no background
        // networking (this machine's network is closed).
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let v = read(
            agent
                .post(format!("{base}/session"))
                .header("content-type", "application/json")
                .send(caps.to_string()),
        );
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("target dir")
            .join("browser");
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        Driver {
            child,
            base,
            session,
            agent,
            shots,
            _profile: profile,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let r = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            (_, b) => self
                .agent
                .post(&url)
                .header("content-type", "application/json")
                .send(b.unwrap_or_else(|| json!({})).to_string()),
        };
        let v = read(r);
        if v["value"]["error"].is_string() {
            panic!("webdriver {method} {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    fn go(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    fn find(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element: {v}"))
            .to_string()
    }

    fn xpath(&self, xp: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            Some(json!({"using": "xpath", "value": xp})),
        );
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element: {v}"))
            .to_string()
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }

    fn click(&self, element: &str) {
        self.call("POST", &format!("/element/{element}/click"), None);
    }

    fn source(&self) -> String {
        self.call("GET", "/source", None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    fn url(&self) -> String {
        self.call("GET", "/url", None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// The page source, once it contains `want` (pages change after a click asynchronously).
    fn wait_for(&self, want: &str) -> String {
        let mut page = String::new();
        let seen = crate::util::wait_for(Duration::from_secs(15), || {
            page = self.source();
            page.contains(want)
        });
        assert!(seen, "waited for {want:?} in {page}");
        page
    }

    fn screenshot(&self, name: &str) {
        use base64::Engine as _;
        let b64 = self.call("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("screenshot"))
            .expect("base64");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("save screenshot");
    }
}

fn read(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Value {
    let text = r
        .expect("webdriver call")
        .body_mut()
        .read_to_string()
        .expect("webdriver body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("webdriver answer ({e}): {text}"))
}

/// The real daemon with its web page on a free port; killed on drop.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(w: &Work) -> (Serve, String) {
    let log = std::fs::File::create(w.path("serve.log")).expect("log");
    let child = w
        .cmd(&["serve", "--no-demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("serve");
    let guard = Serve(child);
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(w.path("serve.log")).unwrap_or_default();
        if let Some(url) = text
            .lines()
            .find_map(|l| l.split("web page on ").nth(1))
            .map(|u| u.trim().trim_end_matches('/').to_string())
        {
            return (guard, url);
        }
        assert!(Instant::now() < end, "serve did not start: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_browser_logs_in_schedules_a_script_and_reads_its_transcript() {
    if !have(
        "/usr/bin/chromium",
        "Debian's chromium for the browser test",
    ) || !have(
        "/usr/bin/chromedriver",
        "Debian's chromium-driver for the browser test",
    ) {
        return;
    }
    let w = Work::new();
    let o = w.run_with_input(
        &["user", "add", "admin", "--password-stdin"],
        &format!("{PW}\n"),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = w.run(&[
        "host",
        "add",
        "box1",
        "--address",
        "127.0.0.1",
        "--method",
        "local",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    std::fs::write(
        w.path("browser_check.rhai"),
        "//! kind: check\nlet s = spawn(\"uptime\", []);\nlet text = s.read_all();\nlet load = captures(text, \"average: ([0-9.]+)\");\nok(\"uptime answered: \" + text, if load == () { () } else { `load1=${load[1]};4;8;0` })\n",
    )
    .expect("script file");
    let file = w.path("browser_check.rhai").display().to_string();
    let o = w.run(&["script", "add", "browser_check", &file]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Two checks for the dashboard: one that says OK, one that is down.
    std::fs::write(
        w.path("browser_down.rhai"),
        "//! kind: check\ncritical(\"the service is down, as this test wants\")\n",
    )
    .expect("script file");
    let down = w.path("browser_down.rhai").display().to_string();
    assert_eq!(code(&w.run(&["script", "add", "browser_down", &down])), 0);
    for script in ["browser_check", "browser_down"] {
        let o = w.run(&["schedule", script, "--host", "box1", "--every", "1m"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    // A few points for the check's chart, run by hand before the daemon starts.
    for _ in 0..4 {
        let o = w.run(&["run", "browser_check", "--host", "box1"]);
        assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
        std::thread::sleep(Duration::from_millis(300));
    }
    let (_serve, url) = serve(&w);
    let d = Driver::start();

    // Logging in: an anonymous visit lands on the login form.
    d.go(&format!("{url}/"));
    assert!(d.url().contains("/login"), "{}", d.url());
    d.screenshot("1-login");
    d.type_into("input[name=username]", "admin");
    d.type_into("input[name=password]", PW);
    d.click(&d.find("button[type=submit]"));
    d.wait_for("<h1>Dashboard</h1>");
    d.screenshot("2-dashboard");

    // Scheduling: the script, one host, now.
    d.click(&d.xpath("//nav/a[text()='Schedule']"));
    d.wait_for("<h1>Schedule a script</h1>");
    d.click(
        &d.xpath("//form[@method='post']//select[@name='script']/option[text()='browser_check']"),
    );
    d.click(&d.xpath("//select[@name='host']/option[text()='box1']"));
    d.screenshot("3-schedule-form");
    d.click(&d.xpath("//form[@method='post' and @action='/schedule']//button[@type='submit']"));
    d.wait_for("Queued browser_check as job");
    d.screenshot("4-queued");

    // The run completes: monitord picks it up within its poll interval.
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        d.go(&format!("{url}/runs?script=browser_check"));
        let page = d.source();
        if page.contains("st ok") {
            break;
        }
        assert!(Instant::now() < end, "the run never completed: {page}");
        std::thread::sleep(Duration::from_millis(500));
    }
    d.screenshot("5-runs");
    d.click(&d.xpath("//table[contains(@class,'runs')]//a[starts-with(@href,'/runs/')]"));
    let run = d.wait_for("uptime answered:");
    assert!(
        run.contains("load average"),
        "the transcript shows what uptime printed: {run}"
    );
    assert!(run.contains("id=\"transcript\""), "{run}");
    d.screenshot("6-run-transcript");

    // The check's page: its perfdata drawn on the server, axes and thresholds, no JavaScript.
    d.go(&format!("{url}/checks/box1/browser_check"));
    let page = d.wait_for("<svg class=\"chart\"");
    assert!(
        page.contains("class=\"avg\""),
        "the points are drawn: {page}"
    );
    assert!(
        page.contains("class=\"warn\"") && page.contains("class=\"crit\""),
        "{page}"
    );
    let drawn = d.call(
        "POST",
        "/execute/sync",
        Some(json!({
            "script": "const r = document.querySelector('svg.chart').getBoundingClientRect(); return [r.width, r.height];",
            "args": []
        })),
    );
    assert!(
        drawn[0].as_f64().unwrap_or(0.0) > 300.0,
        "the chart is drawn wide: {drawn}"
    );
    d.screenshot("6b-check-chart");

    // The dashboard on a phone: the problem first, with its Ack button, and nothing wider
    // than the screen.
    d.call(
        "POST",
        "/window/rect",
        Some(json!({"width": 390, "height": 844})),
    );
    d.go(&format!("{url}/"));
    let page = d.wait_for("the service is down, as this test wants");
    assert!(page.contains("/checks/box1/browser_down/ack"), "{page}");
    let fits = d.call(
        "POST",
        "/execute/sync",
        Some(json!({
            "script": "return [document.documentElement.scrollWidth, window.innerWidth];",
            "args": []
        })),
    );
    let (wide, screen) = (fits[0].as_i64().unwrap_or(0), fits[1].as_i64().unwrap_or(0));
    d.screenshot("7-dashboard-phone");
    assert!(
        screen > 0 && screen <= 400 && wide <= screen,
        "the page is {wide}px wide on a {screen}px screen"
    );
}

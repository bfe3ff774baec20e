//! The SQLXML parser on a FOR XML RAW body of 100,000 rows (about 20 MB), beside Python's
//! xml.etree (the language of DPythOS's original client) and quick-xml's bare event loop (the
//! limit: events only, no attribute decoding, no rows), all in one run on the same bytes.
//!
//! Run: cargo bench --bench sqlxml [-- ROWS]

use std::io::Cursor;
use std::time::Instant;

use quick_xml::Reader;
use quick_xml::events::Event;

fn body(rows: usize) -> Vec<u8> {
    let mut s = String::with_capacity(rows * 210);
    let statuses = ["ok", "warning", "critical", "unknown"];
    for i in 0..rows {
        s.push_str(&format!(
            "<row id=\"{i}\" host=\"host{:04}\" script=\"check_disk\" status=\"{}\" message=\"/ is {}% full &amp; rising\" started_at=\"2026-11-25T10:{:02}:{:02}\" took_ms=\"{}\" />",
            i % 1000,
            statuses[i % 4],
            i % 100,
            (i / 60) % 60,
            i % 60,
            (i * 7) % 1000
        ));
    }
    s.into_bytes()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time<F: FnMut() -> usize>(runs: usize, mut f: F) -> (f64, usize) {
    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..runs {
        let t = Instant::now();
        n = f();
        times.push(t.elapsed().as_secs_f64());
    }
    (median(times), n)
}

fn main() {
    let rows: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let data = body(rows);
    let mb = data.len() as f64 / 1e6;
    let runs = 11;
    println!("FOR XML RAW body: {rows} rows, {mb:.1} MB; median of {runs} runs each\n");

    let (bare, events) = time(runs, || {
        let mut r = Reader::from_reader(Cursor::new(&data));
        let mut buf = Vec::with_capacity(4096);
        let mut n = 0;
        loop {
            buf.clear();
            match r.read_event_into(&mut buf) {
                Ok(Event::Eof) => break,
                Ok(_) => n += 1,
                Err(e) => panic!("{e}"),
            }
        }
        n
    });
    let (stream, streamed) = time(runs, || {
        let mut rr = hostler::sqlxml::RecordReader::new(Cursor::new(&data), None);
        let mut n = 0;
        while let Some(r) = rr.next_record().expect("parse") {
            n += r.columns().count();
        }
        n
    });
    let (whole, parsed) = time(runs, || {
        hostler::sqlxml::parse(Cursor::new(&data), None)
            .expect("parse")
            .records
            .len()
    });
    assert_eq!(parsed, rows);
    assert_eq!(streamed, rows * 7);
    assert!(events >= rows);

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("body.xml");
    std::fs::write(&file, &data).expect("write body");
    let py = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!(
            r#"
import time, statistics, xml.etree.ElementTree as ET
data = open({:?}, "rb").read()
times = []
for _ in range({runs}):
    t = time.perf_counter()
    root = ET.fromstring(b"<ROOT>" + data + b"</ROOT>")
    rows = [dict(e.attrib) for e in root]
    times.append(time.perf_counter() - t)
assert len(rows) == {rows}
print(statistics.median(times))
"#,
            file.display().to_string()
        ))
        .output();
    let python = match py {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse::<f64>()
            .ok(),
        Ok(o) => {
            println!(
                "SKIPPED Python: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            None
        }
        Err(e) => {
            println!("SKIPPED Python: {e}");
            None
        }
    };

    println!("| parser | median | MB/s | vs hostler (whole result) |");
    println!("| --- | ---: | ---: | ---: |");
    let row = |name: &str, t: f64| {
        println!(
            "| {name} | {:.1} ms | {:.0} | {:.2}x |",
            t * 1000.0,
            mb / t,
            whole / t
        );
    };
    row("quick-xml bare event loop (the limit)", bare);
    row(
        "hostler RecordReader, streaming (one row held at a time)",
        stream,
    );
    row("hostler sqlxml::parse, whole result kept", whole);
    if let Some(p) = python {
        row("Python 3 xml.etree.ElementTree + attribute dicts", p);
    }
    println!(
        "\ngoal: at least 200 MB/s; hostler: {:.0} MB/s whole, {:.0} MB/s streaming",
        mb / whole,
        mb / stream
    );
}

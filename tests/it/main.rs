//! hostler's one integration test binary (one binary, because each extra one relinks SQLite
//! and Rhai on a 2-core machine). Modules are named after what they test.

mod ahead;
mod browser;
mod channels;
mod checks;
mod cli;
mod depends;
mod failsafe;
mod heartbeat;
mod history;
mod hostile;
mod library;
mod monitord;
mod operator;
mod peers;
mod pg;
mod pgcluster;
mod policy;
mod props;
mod quorum;
mod remote;
mod sandbox;
mod scaleout;
mod secrets;
mod session;
mod shape;
mod shell;
mod site;
mod sql;
mod sqlxml;
mod sqlxml_store;
mod store;
mod tds;
mod util;
mod web;
mod webutil;

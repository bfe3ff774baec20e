#!/usr/bin/env bash
# Benchmarks that cannot rot: builds every benchmark and runs each once at a tiny size, so a
# schema or API change that breaks one fails CI (the figures in BENCHMARKS.md come from full
# runs, by hand). PostgreSQL for the scale-out bench is installed by tests/run-all.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo bench --locked --no-run
cargo bench --locked --bench queue -- 30
cargo bench --locked --bench history -- 5 1
cargo bench --locked --bench memory -- 500
cargo bench --locked --bench sqlxml -- 100
cargo bench --locked --bench scaleout -- 100 1
echo "bench smoke: every benchmark built and ran once"

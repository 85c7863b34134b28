#!/usr/bin/env bash
# Dovie's whole test suite, from a fresh clone: formatting, lints, unit tests, the storage
# conformance suite and the black-box integration tests (which start the real `dovie` binary).
# The single-node suite needs no outside services; what later suites need (Redis, a CQL server)
# is installed and started from here, on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "scripts/test.sh: cargo (Rust) is required" >&2
    exit 1
  fi
fi
if ! command -v cc >/dev/null 2>&1; then
  # The embedded store compiles SQLite from source.
  apt-get update -qq && apt-get install -y -qq build-essential
fi

# Keep the build lean on two cores.
export CARGO_INCREMENTAL=0
export RUST_BACKTRACE=1

# The S3 server of the file tests is built from source once (Go, minutes): start that first,
# beside the Rust build.
mkdir -p target
bash scripts/seaweedfs.sh install > target/seaweedfs-install.log 2>&1 &
SEAWEEDFS_INSTALL=$!
# The operations tools (helm, kubeconform, promtool, hadolint; minutes the first time) too.
bash scripts/ops-tools.sh fetch > target/ops-tools-install.log 2>&1 &
OPS_TOOLS_INSTALL=$!

echo "== rustfmt"
cargo fmt --all -- --check
echo "== clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
if ! command -v redis-server >/dev/null 2>&1; then
  echo "== installing redis-server (Debian)"
  apt-get update -qq && apt-get install -y -qq redis-server
fi

# Preview tools: ffmpeg (video poster frames; sample audio and video) and poppler (a PDF's
# first page).
if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v pdftoppm >/dev/null 2>&1; then
  echo "== installing ffmpeg and poppler-utils (Debian)"
  apt-get update -qq && apt-get install -y -qq ffmpeg poppler-utils
fi

echo "== S3 server (SeaweedFS)"
if ! wait "$SEAWEEDFS_INSTALL"; then
  cat target/seaweedfs-install.log >&2
  exit 1
fi
export DOVIE_S3_PORT=${DOVIE_S3_PORT:-18333}
bash scripts/seaweedfs.sh start
export DOVIE_TEST_S3=http://127.0.0.1:$DOVIE_S3_PORT

echo "== CQL server (Apache Cassandra 5, standing in for ScyllaDB)"
export DOVIE_CQL_PORT=${DOVIE_CQL_PORT:-19042}
bash scripts/cassandra.sh start
export DOVIE_TEST_CQL=127.0.0.1:$DOVIE_CQL_PORT
if [ "${DOVIE_KEEP_SERVICES:-}" != "1" ]; then
  trap 'bash scripts/cassandra.sh stop; bash scripts/seaweedfs.sh stop' EXIT
fi

echo "== tests"
cargo test --workspace --no-fail-fast

echo "== operations: Helm chart, alerts, dashboard config, Dockerfile"
if ! wait "$OPS_TOOLS_INSTALL"; then
  cat target/ops-tools-install.log >&2
  exit 1
fi
cargo build --quiet --bin dovie
bash scripts/ops-check.sh target/debug/dovie

echo "== OpenAPI fuzzing (schemathesis)"
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl; }
python3 -m venv --help >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq python3-venv; }
cargo build --quiet --bin dovie
bash scripts/schemathesis.sh target/debug/dovie

#!/usr/bin/env bash
# SeaweedFS on loopback: the real S3-compatible object store the tests of the S3 file backend
# run against. Built from the Go module proxy (github.com/seaweedfs/seaweedfs, a pinned
# version; its go.mod has replace directives, so it is built inside its own module rather than
# with `go install`), cached under $DOVIE_CACHE so a second run builds nothing. It starts one
# master, volume, filer and S3 gateway with SigV4 credentials and creates the test bucket.
#
#   scripts/seaweedfs.sh start   # install if needed, start, create the bucket, wait for S3
#   scripts/seaweedfs.sh stop
#
# Env: DOVIE_S3_PORT (default 18333; the master, volume and filer take the ports above it),
# DOVIE_S3_BUCKET (dovie-test), DOVIE_S3_ACCESS_KEY / DOVIE_S3_SECRET_KEY, DOVIE_CACHE.
set -euo pipefail

VERSION=v0.0.0-20261109003541-7506e5f91cd6
CACHE=${DOVIE_CACHE:-$HOME/.cache/dovie}
BIN=$CACHE/seaweedfs-$VERSION/weed
RUN=${DOVIE_SEAWEEDFS_DIR:-/tmp/dovie-seaweedfs}
PORT=${DOVIE_S3_PORT:-18333}
MASTER_PORT=$((PORT + 1))
VOLUME_PORT=$((PORT + 2))
FILER_PORT=$((PORT + 3))
BUCKET=${DOVIE_S3_BUCKET:-dovie-test}
ACCESS_KEY=${DOVIE_S3_ACCESS_KEY:-dovietest}
SECRET_KEY=${DOVIE_S3_SECRET_KEY:-dovietestsecret}
START_TIMEOUT=${DOVIE_SEAWEEDFS_START_TIMEOUT:-120}

log() { echo "seaweedfs.sh: $*" >&2; }

install() {
  if [ -x "$BIN" ]; then
    return
  fi
  command -v go >/dev/null || { apt-get update -qq && apt-get install -y -qq golang; }
  log "building SeaweedFS $VERSION from the Go module proxy (once; cached in $CACHE)"
  local work
  work=$(mktemp -d)
  (
    cd "$work"
    GOFLAGS=-mod=mod go mod download -json "github.com/seaweedfs/seaweedfs@$VERSION" > dl.json
    src=$(python3 -c 'import json; print(json.load(open("dl.json"))["Dir"])')
    cp -r "$src" src
    chmod -R u+w src
    cd src
    CGO_ENABLED=0 go build -o "$work/weed" ./weed
  )
  mkdir -p "$(dirname "$BIN")"
  mv "$work/weed" "$BIN"
  rm -rf "$work"
}

s3_ready() {
  # Anonymous requests are refused (403) once the gateway is up with its credentials.
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/" || true)
  [ "$code" = "403" ] || [ "$code" = "200" ]
}

start() {
  install
  command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl; }
  stop
  local free_wait=0
  until ports_free; do
    if [ "$free_wait" -ge 30 ]; then
      log "ports $PORT-$FILER_PORT are taken by another program"
      exit 1
    fi
    sleep 1
    free_wait=$((free_wait + 1))
  done
  rm -rf "$RUN"
  mkdir -p "$RUN/data"
  cat > "$RUN/s3.json" <<EOF
{"identities": [{"name": "dovie", "credentials": [{"accessKey": "$ACCESS_KEY", "secretKey": "$SECRET_KEY"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
EOF
  log "starting SeaweedFS S3 on 127.0.0.1:$PORT (run dir $RUN)"
  nohup "$BIN" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$RUN/data" \
    -master.port="$MASTER_PORT" -volume.port="$VOLUME_PORT" -volume.max=8 \
    -filer -filer.port="$FILER_PORT" -s3 -s3.port="$PORT" -s3.config="$RUN/s3.json" \
    > "$RUN/server.log" 2>&1 &
  echo $! > "$RUN/pid"
  local waited=0
  until s3_ready; do
    if ! kill -0 "$(cat "$RUN/pid")" 2>/dev/null; then
      log "SeaweedFS exited during start-up:"
      tail -n 40 "$RUN/server.log" >&2 || true
      exit 1
    fi
    if [ "$waited" -ge "$START_TIMEOUT" ]; then
      log "S3 did not answer within ${START_TIMEOUT}s"
      tail -n 40 "$RUN/server.log" >&2 || true
      exit 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
  local tries=0
  until echo "s3.bucket.create -name $BUCKET" | "$BIN" shell -master="127.0.0.1:$MASTER_PORT" 2>&1 | grep -q "created bucket\|already exists"; do
    tries=$((tries + 1))
    if [ "$tries" -ge 30 ]; then
      log "cannot create the bucket $BUCKET"
      exit 1
    fi
    sleep 1
  done
  log "S3 answers on 127.0.0.1:$PORT with bucket $BUCKET after ${waited}s"
}

stop() {
  if [ -f "$RUN/pid" ]; then
    local pid
    pid=$(cat "$RUN/pid")
    kill "$pid" 2>/dev/null || true
    # Wait until it is gone (its ports with it), killing it after 10 s.
    local waited=0
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$waited" -ge 100 ]; then
        kill -9 "$pid" 2>/dev/null || true
      fi
      sleep 0.1
      waited=$((waited + 1))
    done
    rm -f "$RUN/pid"
  fi
}

ports_free() {
  local p
  for p in "$PORT" "$MASTER_PORT" "$VOLUME_PORT" "$FILER_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      return 1
    fi
  done
  return 0
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  install) install ;;
  *) echo "usage: $0 start|stop|install" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Reproduce: RADIUS=1000 bash load-tests/redis-geo.sh (and RADIUS=5000); needs redis-server, redis-benchmark, python3.
# The Redis GEO side of a "nearby" search with 100,000 members: GEOSEARCH (nearest 101 within
# 5 km, with coordinates) and ZMSCORE of 101 members, one client, timed by redis-benchmark.
set -euo pipefail
PORT=16390
redis-server --port $PORT --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
PID=$!
trap 'kill $PID' EXIT
sleep 0.5
python3 - <<'PY' | redis-cli -p 16390 --pipe >/dev/null
import random
random.seed(7)
for i in range(100000):
    lat = 37.3 + random.random() * 0.5; lon = 126.7 + random.random() * 0.5
    print(f"GEOADD {{dovie:nearby}}:geo {lon:.6f} {lat:.6f} u{i}")
    print(f"ZADD {{dovie:nearby}}:exp 99999999999999 u{i}")
PY
redis-cli -p $PORT ZCARD "{dovie:nearby}:geo"
MEMBERS=$(seq 0 100 | sed 's/^/u/' | tr '\n' ' ')
redis-benchmark -p $PORT -n 5000 -c 1 GEOSEARCH "{dovie:nearby}:geo" FROMLONLAT 126.95 37.55 BYRADIUS ${RADIUS:-5000} m ASC COUNT 101 WITHCOORD 2>&1 | grep -A12 "Summary\|latency summary" | head -8
redis-benchmark -p $PORT -n 5000 -c 1 ZMSCORE "{dovie:nearby}:exp" $MEMBERS 2>&1 | grep -A12 "Summary\|latency summary" | head -8

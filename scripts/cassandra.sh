#!/usr/bin/env bash
# Apache Cassandra 5 on loopback: the CQL server that stands in for ScyllaDB in tests (ScyllaDB
# cannot be installed here). The jars come from Maven Central (org.apache.cassandra:cassandra-all
# and its dependencies), cached under $DOVIE_CACHE so a second run downloads nothing; it runs on
# the machine's Java 17 with the JVM options Cassandra ships for Java 17, a minimal single-node
# cassandra.yaml and a small heap.
#
#   scripts/cassandra.sh start   # install if needed, start, wait until CQL answers
#   scripts/cassandra.sh stop
#
# Env: DOVIE_CQL_PORT (default 19042), DOVIE_CASSANDRA_DIR (run dir), DOVIE_CACHE.
set -euo pipefail

VERSION=5.0.4
CACHE=${DOVIE_CACHE:-$HOME/.cache/dovie}
INSTALL=$CACHE/cassandra-$VERSION
RUN=${DOVIE_CASSANDRA_DIR:-/tmp/dovie-cassandra}
PORT=${DOVIE_CQL_PORT:-19042}
STORAGE_PORT=$((PORT + 1))
START_TIMEOUT=${DOVIE_CASSANDRA_START_TIMEOUT:-240}

log() { echo "cassandra.sh: $*" >&2; }

install() {
  if [ -f "$INSTALL/lib/.complete" ]; then
    return
  fi
  command -v java >/dev/null || { apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless; }
  command -v mvn >/dev/null || { apt-get update -qq && apt-get install -y -qq maven; }
  mkdir -p "$INSTALL"
  cat > "$INSTALL/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.dovie</groupId>
  <artifactId>dovie-cql-test-server</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>$VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
  log "resolving cassandra-all $VERSION and its dependencies from Maven Central"
  mvn -q -B -f "$INSTALL/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$INSTALL/lib" -DincludeScope=runtime
  touch "$INSTALL/lib/.complete"
}

write_config() {
  mkdir -p "$RUN"/{data,commitlog,saved_caches,hints,cdc_raw,logs}
  cat > "$RUN/cassandra.yaml" <<EOF
cluster_name: dovie-test
num_tokens: 1
initial_token: 0
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:$STORAGE_PORT"
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: $STORAGE_PORT
native_transport_port: $PORT
start_native_transport: true
data_file_directories: [$RUN/data]
commitlog_directory: $RUN/commitlog
saved_caches_directory: $RUN/saved_caches
hints_directory: $RUN/hints
cdc_raw_directory: $RUN/cdc_raw
commitlog_sync: batch
commitlog_sync_group_window: 2ms
# Lightweight transactions in two round trips when uncontended (Cassandra 4.1+; ScyllaDB has
# its own): what a commit of a batch of messages costs.
paxos_variant: v2
auto_snapshot: false
snapshot_on_duplicate_row_detection: false
concurrent_reads: 8
concurrent_writes: 8
memtable_heap_space: 64MiB
memtable_offheap_space: 64MiB
key_cache_size: 8MiB
counter_cache_size: 0MiB
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
# The test suites make a keyspace per test (hundreds of prepared statements each): a cache that
# holds them all, so none is evicted and prepared again mid-test.
prepared_statements_cache_size: 256MiB
# Two cores run the suites, the nodes and this server at once: requests wait longer before they
# time out than on a production server (the tests are about answers, not latency).
read_request_timeout: 15000ms
range_request_timeout: 20000ms
write_request_timeout: 15000ms
counter_write_request_timeout: 15000ms
cas_contention_timeout: 10000ms
truncate_request_timeout: 60000ms
request_timeout: 20000ms
EOF
  cat > "$RUN/logback.xml" <<EOF
<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>$RUN/logs/system.log</file>
    <encoder><pattern>%level %date{ISO8601} %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="FILE"/></root>
  <logger name="org.apache.cassandra.service.CassandraDaemon" level="INFO"/>
</configuration>
EOF
}

cql_ready() {
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

start() {
  if cql_ready; then
    log "CQL already answers on 127.0.0.1:$PORT"
    return
  fi
  install
  # Test data only: every start begins empty (and fast).
  rm -rf "$RUN"
  write_config
  local jvm_opts=(
    -Xms1g -Xmx2g -Xss512k -XX:MaxDirectMemorySize=256m
    -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1 -XX:G1HeapRegionSize=16m
    -XX:G1RSetUpdatingPauseTimePercent=5 -XX:MaxGCPauseMillis=300 -XX:InitiatingHeapOccupancyPercent=70
    -Djdk.attach.allowAttachSelf=true
    --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
    --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
    --add-exports java.sql/java.sql=ALL-UNNAMED
    --add-exports java.base/java.lang.ref=ALL-UNNAMED
    --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
    --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
    --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
    --add-opens java.base/java.lang.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
    --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
    --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
    --add-opens java.base/jdk.internal.math=ALL-UNNAMED
    --add-opens java.base/jdk.internal.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
    --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
    --add-opens java.base/sun.nio.ch=ALL-UNNAMED
    --add-opens java.base/java.io=ALL-UNNAMED
    --add-opens java.base/java.lang.reflect=ALL-UNNAMED
    --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
    --add-opens java.base/java.lang=ALL-UNNAMED
    --add-opens java.base/java.util=ALL-UNNAMED
    -Dio.netty.tryReflectionSetAccessible=true
    -Dio.netty.allocator.useCacheForAllThreads=true
    -Dio.netty.allocator.maxOrder=11
    -Djava.net.preferIPv4Stack=true
    -Dcassandra.config="file://$RUN/cassandra.yaml"
    -Dlogback.configurationFile="$RUN/logback.xml"
    -Dcassandra.storagedir="$RUN"
    -Dcassandra.logdir="$RUN/logs"
    -Dcassandra-foreground=yes
    -Dcassandra.skip_wait_for_gossip_to_settle=0
    -Dcassandra.ring_delay_ms=100
    -Dcassandra.superuser_setup_delay_ms=0
  )
  log "starting Cassandra $VERSION on 127.0.0.1:$PORT (run dir $RUN)"
  nohup java "${jvm_opts[@]}" -cp "$INSTALL/lib/*" org.apache.cassandra.service.CassandraDaemon \
    > "$RUN/logs/stdout.log" 2>&1 &
  echo $! > "$RUN/pid"
  local waited=0
  until cql_ready; do
    if ! kill -0 "$(cat "$RUN/pid")" 2>/dev/null; then
      log "Cassandra exited during start-up; its logs:"
      tail -n 40 "$RUN/logs/stdout.log" "$RUN/logs/system.log" >&2 || true
      exit 1
    fi
    if [ "$waited" -ge "$START_TIMEOUT" ]; then
      log "CQL did not answer within ${START_TIMEOUT}s"
      tail -n 40 "$RUN/logs/system.log" >&2 || true
      exit 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
  log "CQL answers on 127.0.0.1:$PORT after ${waited}s"
}

stop() {
  if [ -f "$RUN/pid" ]; then
    kill "$(cat "$RUN/pid")" 2>/dev/null || true
    rm -f "$RUN/pid"
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  install) install ;;
  *) echo "usage: $0 start|stop|install" >&2; exit 2 ;;
esac

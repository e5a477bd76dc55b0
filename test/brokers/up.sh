#!/usr/bin/env bash
# Start the brokers Ferry's tests need, on their pinned local ports, and wait
# until each one really serves requests:
#
#   Kafka 3.9.1 (KRaft, single node)  127.0.0.1:9092
#   RocketMQ 4.9.7 name server        127.0.0.1:9876  (broker 127.0.0.1:10911)
#   RabbitMQ (Debian 12)              127.0.0.1:5672  guest/guest
#   Redis (Debian 12)                 127.0.0.1:6379
#
# usage: test/brokers/up.sh [kafka|rocketmq|rabbitmq|redis ...]   (default: all four)
#
# A broker that already answers on its port is reused. Missing software is
# installed (apt-get for Redis/RabbitMQ; Maven Central jars for Kafka/RocketMQ,
# cached in $FERRY_BROKERS_CACHE, default ~/.cache/ferry-brokers). Run state
# (data, logs, pidfiles, generated configs) lives in $FERRY_BROKERS_RUN
# (default ~/.cache/ferry-brokers/run) and survives down.sh, so a
# `down.sh kafka && up.sh kafka` keeps topics and committed offsets.
# The addresses are written to $FERRY_BROKERS_RUN/env. Idempotent.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case ${1:-} in
-h | --help)
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
  exit 0
  ;;
esac

parse_names "$@"
lock
mkdir -p "$CACHE"
START=$SECONDS

wanted() {
  local n
  for n in "${NAMES[@]}"; do [[ $n == "$1" ]] && return 0; done
  return 1
}

declare -A ACTION=() NOTE=() LAUNCHED=() READY=()

summary() { printf '%-9s %s\n' "$1" "$2"; }

# ---------------------------------------------------------------- readiness checks

kafka_answers() { port_open "$KAFKA_PORT"; }
# Ready = a metadata request answers (the port opens a little earlier).
kafka_ready() {
  port_open "$KAFKA_PORT" &&
    kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
      --command-config "$RUN/kafka/tools.properties" --list
}
kafka_alive() { our_pid "$RUN/kafka/kafka.pid" "$RUN/kafka/server.properties" >/dev/null; }

namesrv_alive() { our_pid "$RUN/rocketmq/namesrv.pid" "-Duser.home=$RUN/rocketmq" >/dev/null; }
broker_alive() { our_pid "$RUN/rocketmq/broker.pid" "-Duser.home=$RUN/rocketmq" >/dev/null; }
rocketmq_answers() { port_open "$ROCKETMQ_NAMESRV_PORT" && port_open "$ROCKETMQ_BROKER_PORT"; }
namesrv_ready() { port_open "$ROCKETMQ_NAMESRV_PORT"; }
# Ready = the name server lists our broker (it registered its routes).
rocketmq_ready() {
  local out
  port_open "$ROCKETMQ_BROKER_PORT" || return 1
  out=$(mqadmin clusterList -n "127.0.0.1:$ROCKETMQ_NAMESRV_PORT" 2>&1) || {
    printf '%s\n' "$out"
    return 1
  }
  printf '%s\n' "$out"
  [[ $out == *"127.0.0.1:$ROCKETMQ_BROKER_PORT"* ]]
}

rabbitmq_answers() { port_open "$RABBITMQ_PORT"; }
rabbit_ctl() { (rabbit_env && timeout -k 5 60 "$RABBITMQ_BIN/rabbitmqctl" "$@"); }
rabbitmq_ready() { port_open "$RABBITMQ_PORT" && rabbit_ctl await_startup --timeout 30; }
rabbitmq_alive() {
  # The node writes its pidfile a moment after boot starts; fail fast on a boot error.
  ! grep -qs 'BOOT FAILED' "$RUN/rabbitmq/log/$RABBITMQ_NODE.log" "$RUN/rabbitmq/log/startup.log"
}

redis_ping() {
  # shellcheck disable=SC2016
  timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" && printf "PING\r\n" >&3 &&
    IFS= read -r line <&3 && [[ $line == +PONG* ]]' "$REDIS_PORT" 2>/dev/null
}
redis_answers() { redis_ping; }
redis_ready() { redis_ping; }

# wait_for NAME SECONDS ALIVE_FN READY_FN LOGFILE...: poll READY_FN every
# second; fail (with the logs' tails) when ALIVE_FN says the process died or
# when SECONDS pass.
wait_for() {
  local what=$1 secs=$2 alive=$3 ready=$4 deadline check
  shift 4
  deadline=$((SECONDS + secs))
  check="$RUN/$what.ready-check.log"
  until "$ready" >"$check" 2>&1; do
    if [[ -n $alive ]] && ! "$alive"; then
      die_with_log "$what exited while starting (logs under $RUN)" "$@" "$check"
    fi
    ((SECONDS < deadline)) || die_with_log "$what not ready after ${secs}s (FERRY_BROKERS_TIMEOUT)" "$@" "$check"
    sleep 1
  done
  rm -f "$check"
}

# spawn PIDFILE LOGFILE CMD...: run CMD detached (own session, stdin from
# /dev/null, output to LOGFILE, so it outlives this script and never holds a
# caller's pipe open); PIDFILE gets its pid.
spawn() {
  local pidfile=$1 logfile=$2 i
  shift 2
  rm -f "$pidfile"
  if [[ -f $logfile ]]; then mv -f "$logfile" "$logfile.1"; fi
  # The child writes its own pid, then execs CMD: right whether or not setsid forks.
  # shellcheck disable=SC2016
  nohup setsid bash -c 'echo $$ >"$0" && exec "$@"' "$pidfile" "$@" >"$logfile" 2>&1 </dev/null 9>&- &
  for ((i = 0; i < 100; i++)); do
    [[ -s $pidfile ]] && return 0
    sleep 0.1
  done
  die_with_log "could not launch $*" "$logfile"
}

# ---------------------------------------------------------------- installing

jars_present() { # DIR POM
  [[ -d $1/libs && -f $1/.complete && $(cat "$1/.complete") == "$(sha256sum <"$2" | cut -c1-64)" ]]
}

# fetch_jars NAME DIR POM MARKER_JAR: copy the pom's runtime classpath from
# Maven Central into DIR/libs, unless a complete copy for this pom is there.
fetch_jars() {
  local name=$1 dir=$2 pom=$3 jar=$4 t0=$SECONDS attempt log
  jars_present "$dir" "$pom" && return 0
  mkdir -p "$dir"
  log="$dir/fetch.log"
  : >"$log"
  note "$name: fetching jars from Maven Central into $dir/libs"
  for attempt in 1 2 3; do
    rm -rf "$dir/libs.tmp"
    if mvn -q -B -f "$pom" org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
      -DincludeScope=runtime "-DoutputDirectory=$dir/libs.tmp" >>"$log" 2>&1 &&
      [[ -f $dir/libs.tmp/$jar ]]; then
      rm -rf "$dir/libs"
      mv "$dir/libs.tmp" "$dir/libs"
      sha256sum <"$pom" | cut -c1-64 >"$dir/.complete"
      NOTE[$name]="${NOTE[$name]:-}; jars fetched in $((SECONDS - t0))s"
      return 0
    fi
    note "$name: mvn attempt $attempt failed"
    sleep $((attempt * 5))
  done
  die_with_log "$name: could not fetch jars with Maven (see $log)" "$log"
}

# ---------------------------------------------------------------- decide

for n in "${NAMES[@]}"; do
  if "${n}_answers"; then ACTION[$n]=reuse; else ACTION[$n]=start; fi
done

# Our own process from an earlier run that does not answer (hung, half
# started): stop it before starting afresh. Data is kept.
if [[ ${ACTION[kafka]:-} == start ]] && kafka_alive; then
  note "kafka: our earlier process does not answer on $KAFKA_PORT: stopping it"
  stop_pid kafka "$RUN/kafka/kafka.pid" "$RUN/kafka/server.properties" 30
fi
if [[ ${ACTION[rocketmq]:-} == start ]]; then
  if broker_alive && ! port_open "$ROCKETMQ_BROKER_PORT"; then
    note "rocketmq: our earlier broker does not answer on $ROCKETMQ_BROKER_PORT: stopping it"
    stop_pid "rocketmq broker" "$RUN/rocketmq/broker.pid" "-Duser.home=$RUN/rocketmq" 30
  fi
  if namesrv_alive && ! port_open "$ROCKETMQ_NAMESRV_PORT"; then
    note "rocketmq: our earlier name server does not answer on $ROCKETMQ_NAMESRV_PORT: stopping it"
    stop_pid "rocketmq name server" "$RUN/rocketmq/namesrv.pid" "-Duser.home=$RUN/rocketmq" 30
  fi
fi
if [[ ${ACTION[rabbitmq]:-} == start ]] && our_pid "$RUN/rabbitmq/rabbitmq.pid" "$RABBITMQ_PIDPAT" >/dev/null; then
  note "rabbitmq: our earlier node does not answer on $RABBITMQ_PORT: stopping it"
  stop_pid rabbitmq "$RUN/rabbitmq/rabbitmq.pid" "$RABBITMQ_PIDPAT" 30
fi
if [[ ${ACTION[redis]:-} == start ]] && our_pid "$RUN/redis/redis.pid" redis-server >/dev/null; then
  note "redis: our earlier server does not answer PING on $REDIS_PORT: stopping it"
  stop_pid redis "$RUN/redis/redis.pid" redis-server 30
fi

# ---------------------------------------------------------------- install

pkgs=()
need_java=0
for n in kafka rocketmq; do [[ ${ACTION[$n]:-} == start ]] && need_java=1; done
if ((need_java)); then
  command -v java >/dev/null || pkgs+=(openjdk-17-jre-headless)
  if ! { jars_present "$CACHE/kafka-$KAFKA_VERSION" "$BROKERS_DIR/kafka/pom.xml" &&
    jars_present "$CACHE/rocketmq-$ROCKETMQ_VERSION" "$BROKERS_DIR/rocketmq/pom.xml"; }; then
    command -v mvn >/dev/null || pkgs+=(maven)
  fi
fi
apt_brokers=()
if [[ ${ACTION[rabbitmq]:-} == start && ! -x $RABBITMQ_BIN/rabbitmq-server ]]; then
  pkgs+=(rabbitmq-server)
  apt_brokers+=(rabbitmq)
fi
if [[ ${ACTION[redis]:-} == start ]] && ! command -v redis-server >/dev/null; then
  pkgs+=(redis-server)
  apt_brokers+=(redis)
fi
if ((${#pkgs[@]})); then
  t0=$SECONDS
  apt_install "${pkgs[@]}"
  for n in "${apt_brokers[@]}"; do
    NOTE[$n]="; installed with apt-get in $((SECONDS - t0))s"
    # Where an init system runs, the package may have started its own service.
    if "${n}_answers"; then ACTION[$n]=reused-debian; fi
  done
fi

if [[ ${ACTION[kafka]:-} == start ]]; then
  fetch_jars kafka "$CACHE/kafka-$KAFKA_VERSION" "$BROKERS_DIR/kafka/pom.xml" "kafka_2.13-$KAFKA_VERSION.jar"
fi
if [[ ${ACTION[rocketmq]:-} == start ]]; then
  fetch_jars rocketmq "$CACHE/rocketmq-$ROCKETMQ_VERSION" "$BROKERS_DIR/rocketmq/pom.xml" \
    "rocketmq-broker-$ROCKETMQ_VERSION.jar"
fi

# ---------------------------------------------------------------- launch

kafka_launch() {
  local d="$RUN/kafka"
  mkdir -p "$d/data" "$d/logs"
  cat >"$d/server.properties" <<EOF
# Generated by test/brokers/up.sh: single-node KRaft (broker + controller).
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,PROXIED://127.0.0.1:$KAFKA_PROXIED_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,PROXIED://127.0.0.1:$KAFKA_PROXY_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PROXIED:PLAINTEXT
num.network.threads=2
num.io.threads=2
log.dirs=$d/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
EOF
  cat >"$d/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.clients=WARN
EOF
  printf '%s\n' default.api.timeout.ms=15000 request.timeout.ms=10000 >"$d/tools.properties"
  if [[ ! -s $d/data/meta.properties ]]; then
    # A cluster id is 16 random bytes, URL-safe base64 without padding
    # (what `kafka-storage random-uuid` prints), kept so a re-format agrees.
    [[ -s $d/cluster.id ]] ||
      head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$d/cluster.id"
    kafka_tool kafka.tools.StorageTool format -t "$(cat "$d/cluster.id")" \
      -c "$d/server.properties" --ignore-formatted >"$d/format.log" 2>&1 ||
      die_with_log "kafka: formatting $d/data failed" "$d/format.log"
  fi
  spawn "$d/kafka.pid" "$d/kafka.log" java -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    "-Dlog4j.configuration=file:$d/log4j.properties" "-Dkafka.logs.dir=$d/logs" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$d/server.properties"
}

rocketmq_prepare() {
  local d="$RUN/rocketmq" f
  mkdir -p "$d/home/conf" "$d/store/commitlog"
  for f in namesrv broker; do
    cat >"$d/home/conf/logback_$f.xml" <<'EOF'
<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{yyyy-MM-dd HH:mm:ss.SSS} %p %c{0} - %m%n</pattern></encoder>
  </appender>
  <logger name="RocketmqStats" level="WARN"/>
  <logger name="RocketmqCommercial" level="WARN"/>
  <logger name="RocketmqWaterMark" level="WARN"/>
  <logger name="RocketmqProtection" level="WARN"/>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
EOF
  done
  cat >"$d/namesrv.conf" <<EOF
# Generated by test/brokers/up.sh
listenPort=$ROCKETMQ_NAMESRV_PORT
kvConfigPath=$d/namesrv/kvConfig.json
EOF
  cat >"$d/broker.conf" <<EOF
# Generated by test/brokers/up.sh
brokerClusterName=DefaultCluster
brokerName=broker-a
brokerId=0
brokerRole=ASYNC_MASTER
flushDiskType=ASYNC_FLUSH
brokerIP1=127.0.0.1
namesrvAddr=127.0.0.1:$ROCKETMQ_NAMESRV_PORT
listenPort=$ROCKETMQ_BROKER_PORT
storePathRootDir=$d/store
storePathCommitLog=$d/store/commitlog
mappedFileSizeCommitLog=67108864
maxHashSlotNum=500000
maxIndexNum=2000000
diskMaxUsedSpaceRatio=95
autoCreateTopicEnable=true
autoCreateSubscriptionGroup=true
deleteWhen=04
fileReservedTime=48
EOF
}

rocketmq_launch_namesrv() {
  local d="$RUN/rocketmq"
  spawn "$d/namesrv.pid" "$d/namesrv.log" env "ROCKETMQ_HOME=$d/home" \
    java -Xmx256m -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError "${ROCKETMQ_JVM_OPENS[@]}" \
    -Djava.awt.headless=true "-Drocketmq.home.dir=$d/home" "-Duser.home=$d" \
    -cp "$ROCKETMQ_LIBS/*" org.apache.rocketmq.namesrv.NamesrvStartup -c "$d/namesrv.conf"
}

rocketmq_launch_broker() {
  local d="$RUN/rocketmq"
  spawn "$d/broker.pid" "$d/broker.log" env "ROCKETMQ_HOME=$d/home" \
    java -Xms256m -Xmx512m -Xmn128m -XX:MaxDirectMemorySize=256m -XX:+UseG1GC \
    -XX:+ExitOnOutOfMemoryError "${ROCKETMQ_JVM_OPENS[@]}" \
    -Djava.awt.headless=true "-Drocketmq.home.dir=$d/home" "-Duser.home=$d" \
    -cp "$ROCKETMQ_LIBS/*" org.apache.rocketmq.broker.BrokerStartup -c "$d/broker.conf"
}

rabbitmq_launch() {
  local d="$RUN/rabbitmq"
  mkdir -p "$d/home" "$d/mnesia" "$d/log"
  if [[ ! -s $d/home/.erlang.cookie ]]; then
    # Same cookie as Debian's rabbitmq user, so that the stock
    # `RABBITMQ_NODENAME=ferry@localhost rabbitmqctl ...` works as well.
    if [[ -r /var/lib/rabbitmq/.erlang.cookie ]]; then
      cat /var/lib/rabbitmq/.erlang.cookie >"$d/home/.erlang.cookie"
    else
      head -c 15 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$d/home/.erlang.cookie"
    fi
    chmod 400 "$d/home/.erlang.cookie"
  fi
  printf '[].\n' >"$d/enabled_plugins"
  cat >"$d/rabbitmq.conf" <<EOF
# Generated by test/brokers/up.sh
listeners.tcp.default = 127.0.0.1:$RABBITMQ_PORT
loopback_users.guest = true
EOF
  if [[ -f $d/log/startup.log ]]; then mv -f "$d/log/startup.log" "$d/log/startup.log.1"; fi
  # rabbitmq-server -detached daemonises the node (and epmd) and returns.
  (rabbit_env && cd "$d" && setsid "$RABBITMQ_BIN/rabbitmq-server" -detached) \
    >"$d/log/startup.log" 2>&1 </dev/null 9>&- ||
    die_with_log "rabbitmq: rabbitmq-server -detached failed" "$d/log/startup.log"
}

redis_launch() {
  local d="$RUN/redis"
  mkdir -p "$d"
  if [[ -f $d/redis.log ]]; then mv -f "$d/redis.log" "$d/redis.log.1"; fi
  # Durable across down.sh/up.sh: with --save '' and no AOF a restart would
  # lose every stream, so the restart tests could not check "lost = 0". The
  # AOF (fsync every second) lives in $d/appendonlydir.
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
    --dir "$d" --pidfile "$d/redis.pid" --logfile "$d/redis.log" \
    --save '' --appendonly yes --appendfsync everysec \
    >"$d/start.log" 2>&1 </dev/null 9>&- || die_with_log "redis: redis-server failed to start" "$d/start.log" "$d/redis.log"
}

if [[ ${ACTION[redis]:-} == start ]]; then
  LAUNCHED[redis]=$SECONDS
  redis_launch
  # Ready within a second: wait now, so its time is not inflated by the others.
  wait_for redis 60 "" redis_ready "$RUN/redis/redis.log" "$RUN/redis/start.log"
  READY[redis]=$SECONDS
fi
if [[ ${ACTION[rocketmq]:-} == start ]]; then
  rocketmq_prepare
  if ! port_open "$ROCKETMQ_NAMESRV_PORT"; then
    LAUNCHED[rocketmq]=$SECONDS
    rocketmq_launch_namesrv
  fi
fi
if [[ ${ACTION[rabbitmq]:-} == start ]]; then
  LAUNCHED[rabbitmq]=$SECONDS
  rabbitmq_launch
fi
if [[ ${ACTION[kafka]:-} == start ]]; then
  LAUNCHED[kafka]=$SECONDS
  kafka_launch # formats the storage on first start (a few seconds, blocking)
fi
if [[ ${ACTION[rocketmq]:-} == start ]]; then
  # The broker registers with the name server every 30 s: start it only once
  # the name server listens, so the first registration does not miss.
  : "${LAUNCHED[rocketmq]:=$SECONDS}"
  wait_for rocketmq "$TIMEOUT" "" namesrv_ready "$RUN/rocketmq/namesrv.log"
  if ! port_open "$ROCKETMQ_BROKER_PORT"; then rocketmq_launch_broker; fi
fi

# ---------------------------------------------------------------- wait and report

pid_of() { tr -dc '0-9' <"$1" 2>/dev/null || true; }

# Quick ones first, so that each "started in" figure is close to the truth.
for n in redis rocketmq rabbitmq kafka; do
  wanted "$n" || continue
  case ${ACTION[$n]} in
  reuse)
    how=
    if [[ $n == kafka ]] && kafka_alive; then
      how="pid $(pid_of "$RUN/kafka/kafka.pid"), started earlier by up.sh"
    elif [[ $n == rocketmq ]] && broker_alive; then
      how="broker pid $(pid_of "$RUN/rocketmq/broker.pid"), started earlier by up.sh"
    elif [[ $n == rabbitmq ]] && our_pid "$RUN/rabbitmq/rabbitmq.pid" "$RABBITMQ_PIDPAT" >/dev/null; then
      how="node $RABBITMQ_NODE pid $(pid_of "$RUN/rabbitmq/rabbitmq.pid"), started earlier by up.sh"
    elif [[ $n == redis ]] && our_pid "$RUN/redis/redis.pid" redis-server >/dev/null; then
      how="pid $(pid_of "$RUN/redis/redis.pid"), started earlier by up.sh"
    fi
    summary "$n" "reused (${how:-already answering, not started by up.sh: down.sh leaves it alone})"
    ;;
  reused-debian)
    summary "$n" "reused the service the Debian package started${NOTE[$n]:-} (down.sh leaves it alone)"
    ;;
  start)
    case $n in
    kafka) wait_for kafka "$TIMEOUT" kafka_alive kafka_ready "$RUN/kafka/kafka.log" ;;
    rocketmq) wait_for rocketmq "$TIMEOUT" broker_alive rocketmq_ready "$RUN/rocketmq/broker.log" "$RUN/rocketmq/namesrv.log" ;;
    rabbitmq) wait_for rabbitmq "$TIMEOUT" rabbitmq_alive rabbitmq_ready \
      "$RUN/rabbitmq/log/startup.log" "$RUN/rabbitmq/log/$RABBITMQ_NODE.log" ;;
    esac
    summary "$n" "started in $((${READY[$n]:-$SECONDS} - LAUNCHED[$n]))s${NOTE[$n]:-}"
    ;;
  esac
done

tmp="$RUN/env.tmp.$$"
cat >"$tmp" <<EOF
FERRY_KAFKA=127.0.0.1:$KAFKA_PORT
FERRY_KAFKA_PROXIED=127.0.0.1:$KAFKA_PROXIED_PORT
FERRY_KAFKA_PROXY=127.0.0.1:$KAFKA_PROXY_PORT
FERRY_ROCKETMQ=127.0.0.1:$ROCKETMQ_NAMESRV_PORT
FERRY_ROCKETMQ_BROKER=127.0.0.1:$ROCKETMQ_BROKER_PORT
FERRY_RABBITMQ=amqp://guest:guest@127.0.0.1:$RABBITMQ_PORT/
FERRY_REDIS=redis://127.0.0.1:$REDIS_PORT/0
EOF
mv -f "$tmp" "$RUN/env"
say "brokers ready in $((SECONDS - START))s (${NAMES[*]}); addresses in $RUN/env"

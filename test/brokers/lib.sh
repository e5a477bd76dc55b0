# shellcheck shell=bash disable=SC2034
# Shared by up.sh, down.sh and the small tool wrappers in this folder.
# Sourced, never run. Everything that a run creates lives under $RUN, every
# downloaded jar under $CACHE; nothing is written inside the repository.

BROKERS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${FERRY_BROKERS_CACHE:-$HOME/.cache/ferry-brokers}
RUN=${FERRY_BROKERS_RUN:-$HOME/.cache/ferry-brokers/run}
# Seconds each broker may take to become ready once launched.
TIMEOUT=${FERRY_BROKERS_TIMEOUT:-180}

ALL_BROKERS=(kafka rocketmq rabbitmq redis)

# Versions: keep in step with kafka/pom.xml and rocketmq/pom.xml (README.md says why).
KAFKA_VERSION=3.9.1
ROCKETMQ_VERSION=4.9.7
KAFKA_LIBS=$CACHE/kafka-$KAFKA_VERSION/libs
ROCKETMQ_LIBS=$CACHE/rocketmq-$ROCKETMQ_VERSION/libs

KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
# A second plain listener the chaos suite reaches through its own TCP proxy:
# Kafka advertises the proxy's port on it, so every connection a client
# makes after bootstrap goes through the proxy too.
KAFKA_PROXIED_PORT=9094
KAFKA_PROXY_PORT=9095
ROCKETMQ_NAMESRV_PORT=9876
ROCKETMQ_BROKER_PORT=10911 # the broker also listens on 10909 (VIP channel) and 10912 (HA)
RABBITMQ_PORT=5672
RABBITMQ_NODE=ferry@localhost
RABBITMQ_PIDPAT="-home $RUN/rabbitmq/home" # in the node's beam.smp command line
REDIS_PORT=6379

# RabbitMQ's own scripts (Debian's /usr/sbin wrappers su to the rabbitmq user,
# which cannot reach a run dir under a 0700 home: we run the node as ourselves).
RABBITMQ_BIN=/usr/lib/rabbitmq/bin

# JDK 17 needs these for RocketMQ 4.x (direct buffers, cleaners, reflection).
ROCKETMQ_JVM_OPENS=(
  --add-opens=java.base/java.lang=ALL-UNNAMED
  --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED
  --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED
  --add-exports=java.base/sun.nio.ch=ALL-UNNAMED
  --add-exports=java.base/jdk.internal.ref=ALL-UNNAMED
)

say() { printf '%s\n' "$*"; }
note() { printf 'brokers: %s\n' "$*" >&2; }
die() {
  printf 'brokers: ERROR: %s\n' "$*" >&2
  exit 1
}

# die_with_log MESSAGE LOGFILE...: fail, showing the tail of each log.
die_with_log() {
  local msg=$1 f
  shift
  printf 'brokers: ERROR: %s\n' "$msg" >&2
  for f in "$@"; do
    if [[ -s $f ]]; then
      printf -- '----- last 60 lines of %s -----\n' "$f" >&2
      tail -n 60 "$f" >&2 || true
      printf -- '----- end of %s -----\n' "$f" >&2
    fi
  done
  exit 1
}

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
  # shellcheck disable=SC2016
  timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$1" 2>/dev/null
}

# our_pid PIDFILE PATTERN: print the pid in PIDFILE when that process is alive
# and its command line contains PATTERN (guards against a recycled pid after a
# reboot, and against zombies, whose command line is empty).
our_pid() {
  local f=$1 pat=$2 pid
  [[ -s $f ]] || return 1
  pid=$(tr -dc '0-9' <"$f" 2>/dev/null) || return 1
  [[ -n $pid ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -d /proc/$pid ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pat" || return 1
  fi
  printf '%s\n' "$pid"
}

# wait_closed SECONDS PORT...: wait until none of the ports answers.
wait_closed() {
  local secs=$1 p deadline
  shift
  deadline=$((SECONDS + secs))
  for p in "$@"; do
    while port_open "$p"; do
      ((SECONDS < deadline)) || return 1
      sleep 0.5
    done
  done
}

# stop_pid WHAT PIDFILE PATTERN GRACE: SIGTERM the process named by PIDFILE
# (only if it is ours), SIGKILL it after GRACE seconds; remove the pidfile.
stop_pid() {
  local what=$1 f=$2 pat=$3 grace=$4 pid deadline
  if pid=$(our_pid "$f" "$pat"); then
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + grace))
    while kill -0 "$pid" 2>/dev/null && our_pid "$f" "$pat" >/dev/null; do
      if ((SECONDS >= deadline)); then
        note "$what (pid $pid) still running ${grace}s after SIGTERM: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 1
        break
      fi
      sleep 0.3
    done
  fi
  rm -f "$f"
}

# lock: serialise up.sh / down.sh runs (tests may call them concurrently).
# Held on fd 9: every daemon we launch gets `9>&-`, or it would inherit the
# descriptor and hold the lock for as long as it runs.
lock() {
  mkdir -p "$RUN"
  exec 9>"$RUN/up-down.lock"
  if ! flock -n 9; then
    note "waiting for another up.sh/down.sh to finish (lock $RUN/up-down.lock)"
    flock -w 900 9 || die "could not take $RUN/up-down.lock within 900s"
  fi
}

# parse_names ARGS...: validate broker names into NAMES (default: all four).
parse_names() {
  NAMES=()
  local a b ok
  for a in "$@"; do
    ok=0
    for b in "${ALL_BROKERS[@]}"; do [[ $a == "$b" ]] && ok=1; done
    ((ok)) || die "unknown broker '$a' (expected: ${ALL_BROKERS[*]})"
    NAMES+=("$a")
  done
  ((${#NAMES[@]})) || NAMES=("${ALL_BROKERS[@]}")
}

# rabbit_env: the environment every rabbitmq-server / rabbitmqctl call of ours uses.
rabbit_env() {
  export HOME="$RUN/rabbitmq/home"
  export RABBITMQ_NODENAME=$RABBITMQ_NODE
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT=$RABBITMQ_PORT
  export RABBITMQ_DIST_PORT=25672
  export RABBITMQ_MNESIA_BASE="$RUN/rabbitmq/mnesia"
  export RABBITMQ_LOG_BASE="$RUN/rabbitmq/log"
  export RABBITMQ_PID_FILE="$RUN/rabbitmq/rabbitmq.pid"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$RUN/rabbitmq/enabled_plugins"
  export RABBITMQ_CONFIG_FILE="$RUN/rabbitmq/rabbitmq.conf"
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'
  export ERL_EPMD_ADDRESS=127.0.0.1
}

# kafka_tool MAINCLASS ARGS...: run a Kafka command-line tool from the cached jars.
kafka_tool() {
  local cls=$1
  shift
  mkdir -p "$RUN/kafka"
  [[ -s $RUN/kafka/tools-log4j.properties ]] || printf '%s\n' 'log4j.rootLogger=WARN, stderr' \
    'log4j.appender.stderr=org.apache.log4j.ConsoleAppender' \
    'log4j.appender.stderr.Target=System.err' \
    'log4j.appender.stderr.layout=org.apache.log4j.PatternLayout' \
    'log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n' \
    >"$RUN/kafka/tools-log4j.properties"
  timeout -k 5 "${FERRY_BROKERS_TOOL_TIMEOUT:-120}" \
    java -Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    "-Dlog4j.configuration=file:$RUN/kafka/tools-log4j.properties" \
    -cp "$KAFKA_LIBS/*" "$cls" "$@"
}

# mqadmin ARGS...: RocketMQ's mqadmin from the cached jars.
mqadmin() {
  local home="$RUN/rocketmq/home"
  mkdir -p "$home/conf"
  [[ -s $home/conf/logback_tools.xml ]] || cat >"$home/conf/logback_tools.xml" <<'EOF'
<configuration>
  <appender name="STDERR" class="ch.qos.logback.core.ConsoleAppender">
    <target>System.err</target>
    <encoder><pattern>%d{HH:mm:ss.SSS} %p %c{0} - %m%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="STDERR"/></root>
</configuration>
EOF
  ROCKETMQ_HOME="$home" timeout -k 5 "${FERRY_BROKERS_TOOL_TIMEOUT:-120}" java -Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    "${ROCKETMQ_JVM_OPENS[@]}" -Djava.awt.headless=true \
    "-Drocketmq.home.dir=$home" "-Duser.home=$RUN/rocketmq" \
    "-Dlogback.configurationFile=$home/conf/logback_tools.xml" \
    -cp "$ROCKETMQ_LIBS/*" org.apache.rocketmq.tools.command.MQAdminStartup "$@"
}

# apt_install PKG...: install Debian packages (apt-get update first when one is
# not in the local lists, or once more when an install fails).
APT_UPDATED=0
apt_install() {
  local sudo=() log="$CACHE/apt.log" opts pkg missing=0
  if ((EUID != 0)); then
    command -v sudo >/dev/null || die "apt-get install $* needs root (or sudo)"
    sudo=(sudo -n)
  fi
  opts=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  for pkg in "$@"; do
    apt-cache policy "$pkg" 2>/dev/null | grep -q 'Candidate: [0-9]' || missing=1
  done
  : >"$log"
  if ((missing)); then
    note "apt-get update (a package is not in the local lists)"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 \
      -o Acquire::Retries=3 update >>"$log" 2>&1 || die_with_log "apt-get update failed" "$log"
    APT_UPDATED=1
  fi
  note "apt-get install $*"
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "$@" >>"$log" 2>&1; then
    ((APT_UPDATED)) && die_with_log "apt-get install $* failed" "$log"
    note "apt-get install failed; apt-get update and retry"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 \
      -o Acquire::Retries=3 update >>"$log" 2>&1 || die_with_log "apt-get update failed" "$log"
    APT_UPDATED=1
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "$@" >>"$log" 2>&1 ||
      die_with_log "apt-get install $* failed" "$log"
  fi
}

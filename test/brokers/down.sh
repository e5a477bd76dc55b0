#!/usr/bin/env bash
# Stop the brokers that test/brokers/up.sh started, by its own pidfiles (never
# by process name), wait until their ports close and remove the pidfiles.
# A broker up.sh did not start (it reused one) is left alone. Data is kept, so
# `down.sh kafka && up.sh kafka` brings Kafka back with its topics and offsets.
#
# usage: test/brokers/down.sh [--purge] [kafka|rocketmq|rabbitmq|redis ...]   (default: all four)
#   --purge   also delete the brokers' run state (data, logs, configs) under
#             $FERRY_BROKERS_RUN; the jar cache is kept.
# Idempotent.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

purge=0
args=()
for a in "$@"; do
  case $a in
  --purge) purge=1 ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  -*) die "unknown option $a" ;;
  *) args+=("$a") ;;
  esac
done
parse_names "${args[@]+"${args[@]}"}"
lock

summary() { printf '%-9s %s\n' "$1" "$2"; }

# after_stop NAME WHAT PORT...: report; say so when a port still answers
# (after a stop: within 30 s).
after_stop() {
  local n=$1 what=$2 secs=30
  shift 2
  [[ $what == stopped ]] || secs=0
  if wait_closed "$secs" "$@"; then
    summary "$n" "$what"
  else
    summary "$n" "$what; but port(s) $* still answer: not started by up.sh (left alone)"
  fi
}

stop_kafka() {
  local f="$RUN/kafka/kafka.pid" pat="$RUN/kafka/server.properties"
  if our_pid "$f" "$pat" >/dev/null; then
    # SIGTERM = controlled shutdown; after 60 s, SIGKILL (Kafka recovers its log on start).
    stop_pid kafka "$f" "$pat" 60
    after_stop kafka stopped "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_PROXIED_PORT"
  else
    rm -f "$f"
    after_stop kafka "not running (no live pidfile)" "$KAFKA_PORT"
  fi
}

stop_rocketmq() {
  local d="$RUN/rocketmq" pat="-Duser.home=$RUN/rocketmq" did=0
  if our_pid "$d/broker.pid" "$pat" >/dev/null; then
    stop_pid "rocketmq broker" "$d/broker.pid" "$pat" 60
    did=1
  fi
  rm -f "$d/broker.pid"
  if our_pid "$d/namesrv.pid" "$pat" >/dev/null; then
    stop_pid "rocketmq name server" "$d/namesrv.pid" "$pat" 30
    did=1
  fi
  rm -f "$d/namesrv.pid"
  if ((did)); then
    after_stop rocketmq stopped "$ROCKETMQ_BROKER_PORT" $((ROCKETMQ_BROKER_PORT - 2)) \
      $((ROCKETMQ_BROKER_PORT + 1)) "$ROCKETMQ_NAMESRV_PORT"
  else
    after_stop rocketmq "not running (no live pidfile)" "$ROCKETMQ_BROKER_PORT" "$ROCKETMQ_NAMESRV_PORT"
  fi
}

stop_rabbitmq() {
  local d="$RUN/rabbitmq" f="$RUN/rabbitmq/rabbitmq.pid" names
  if our_pid "$f" "$RABBITMQ_PIDPAT" >/dev/null; then
    # rabbitmqctl stop PIDFILE returns once the node's OS process has exited.
    if ! (rabbit_env && timeout -k 5 90 "$RABBITMQ_BIN/rabbitmqctl" stop "$f") >"$d/log/stop.log" 2>&1; then
      note "rabbitmq: rabbitmqctl stop failed (see $d/log/stop.log): SIGTERM by pidfile"
    fi
    stop_pid rabbitmq "$f" "$RABBITMQ_PIDPAT" 30
    # rabbitmq-server started epmd; stop it only when no other node uses it.
    if [[ -x $(command -v epmd) ]] && names=$(ERL_EPMD_ADDRESS=127.0.0.1 timeout 5 epmd -names 2>/dev/null) &&
      ! grep -q '^name ' <<<"$names"; then
      ERL_EPMD_ADDRESS=127.0.0.1 timeout 5 epmd -kill >/dev/null 2>&1 || true
    fi
    after_stop rabbitmq stopped "$RABBITMQ_PORT"
  else
    rm -f "$f"
    after_stop rabbitmq "not running (no live pidfile)" "$RABBITMQ_PORT"
  fi
}

stop_redis() {
  local f="$RUN/redis/redis.pid"
  if our_pid "$f" redis-server >/dev/null; then
    # SIGTERM = save the AOF, then exit.
    stop_pid redis "$f" redis-server 30
    after_stop redis stopped "$REDIS_PORT"
  else
    rm -f "$f"
    after_stop redis "not running (no live pidfile)" "$REDIS_PORT"
  fi
}

for n in "${NAMES[@]}"; do
  "stop_$n"
  if ((purge)); then
    rm -rf "${RUN:?}/$n"
    summary "$n" "purged $RUN/$n"
  fi
done
if ((purge)) && ((${#args[@]} == 0)); then rm -f "$RUN/env"; fi

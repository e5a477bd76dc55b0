#!/usr/bin/env bash
# kafka-topics for the broker up.sh started, e.g.
#   test/brokers/kafka-topics.sh --create --topic orders --partitions 3
#   test/brokers/kafka-topics.sh --list
# (--bootstrap-server 127.0.0.1:9092 is added unless given.)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ -d $KAFKA_LIBS ]] || die "no Kafka jars in $KAFKA_LIBS: run test/brokers/up.sh kafka first"
case " $* " in
*" --bootstrap-server "*) kafka_tool org.apache.kafka.tools.TopicCommand "$@" ;;
*) kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" "$@" ;;
esac

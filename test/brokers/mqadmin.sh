#!/usr/bin/env bash
# RocketMQ's mqadmin (4.9.x tools) for the cluster up.sh started, e.g.
#   test/brokers/mqadmin.sh clusterList -n 127.0.0.1:9876
#   test/brokers/mqadmin.sh updateTopic -n 127.0.0.1:9876 -c DefaultCluster -t orders
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ -d $ROCKETMQ_LIBS ]] || die "no RocketMQ jars in $ROCKETMQ_LIBS: run test/brokers/up.sh rocketmq first"
mqadmin "$@"

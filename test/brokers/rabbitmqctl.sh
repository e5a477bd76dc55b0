#!/usr/bin/env bash
# rabbitmqctl for the node up.sh started (ferry@localhost), e.g.
#   test/brokers/rabbitmqctl.sh status
#   test/brokers/rabbitmqctl.sh close_all_connections "test"
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ -x $RABBITMQ_BIN/rabbitmqctl ]] || die "rabbitmq-server is not installed: run test/brokers/up.sh rabbitmq first"
rabbit_env
exec "$RABBITMQ_BIN/rabbitmqctl" "$@"

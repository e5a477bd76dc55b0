# Ferry's developer commands. `make run` serves the quick start; `make test`
# runs every test (with -race), installing what it needs first.
GO          ?= go
BIN         := bin/ferry
GOBIN       := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck
STATICCHECK_VERSION := v0.8.2
TEST_FLAGS  ?= -race -count=1 -timeout 20m
FUZZTIME    ?= 30s

.PHONY: all build run test test-cluster fuzz chaos lint fmt bench bench-quick clean deps brokers brokers-down tools screenshot

all: lint test

deps: ## download Go modules (the module proxy is the only source)
	$(GO) mod download

build: deps ## build bin/ferry
	$(GO) build -o $(BIN) ./cmd/ferry

run: build ## serve config/examples/quickstart.yaml on 127.0.0.1:8080 (data in ./data)
	./$(BIN) serve -c config/examples/quickstart.yaml

# Packages that talk to the real brokers restart them in some tests, so they
# run one package at a time, after everything else.
BROKER_PKGS = ./poller/kafka/... ./poller/rocketmq/... ./poller/rabbitmq/... ./poller/redisstream/... \
	./sinks/kafka/... ./sinks/rocketmq/... ./sinks/rabbitmq/... ./sinks/redis/... \
	./test/brokers/... ./test/roundtrip/...

# The multi-node suite starts its own redis-server (test/brokers/up.sh
# installs it) and several ferry processes per test, and measures rates and
# timings at its backend: it runs alone, after the broker packages.
CLUSTER_PKGS = ./test/cluster/...

test: deps brokers tools ## every test, with the race detector
	$(GO) test $(TEST_FLAGS) $$($(GO) list ./... | grep -v -e /poller/kafka -e /poller/rocketmq -e /poller/rabbitmq -e /poller/redisstream \
		-e /sinks/kafka -e /sinks/rocketmq -e /sinks/rabbitmq -e /sinks/redis -e /test/brokers -e /test/roundtrip -e /test/conformance \
		-e /test/cluster)
	@# The end-to-end suite again, every process on the Redis store.
	FERRY_TEST_STORE=redis $(GO) test $(TEST_FLAGS) ./test/e2e/
	$(GO) test $(TEST_FLAGS) -p 1 $(BROKER_PKGS)
	$(GO) test $(TEST_FLAGS) -p 1 $(CLUSTER_PKGS)
	@# rocketmq-client-go v2.1.2 (pinned) races between its own goroutines, so
	@# the RocketMQ adapter's and sink's broker tests (build tag !race) also
	@# run without -race; their own logic is raced above. So does the
	@# conformance suite, whose harness reads RocketMQ in-process: the Ferry
	@# server it runs is still built with -race (test/ferrytest). The
	@# round trips through RocketMQ (test/roundtrip) are the same case.
	$(GO) test -count=1 -timeout 20m -p 1 ./poller/rocketmq/... ./sinks/rocketmq/... ./test/conformance/...
	$(GO) test -count=1 -timeout 20m -run RocketMQ ./test/roundtrip/

test-cluster: deps ## the multi-node suite alone (test/cluster: real ferry processes on a private redis-server)
	test/brokers/up.sh redis
	$(GO) test $(TEST_FLAGS) -p 1 -v $(CLUSTER_PKGS)

# Every Fuzz* target in the repository, one after another, FUZZTIME each.
# make test runs their seed corpora (testdata/fuzz and f.Add) as ordinary
# tests; a crash found here is saved under the package's testdata/fuzz:
# commit it with the fix, it becomes a regression test.
fuzz: deps ## run every fuzz target for FUZZTIME (default 30s) each (not part of make test)
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./test/bench/' | sort); do \
	  dir=$$(dirname $$f); \
	  for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "== $$dir $$t ($(FUZZTIME))"; \
	    $(GO) test -count=1 -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$dir; \
	  done; \
	done

chaos: deps brokers ## the fault matrix against real brokers and ferry processes (test/chaos, ~45 min; restarts and kill -9s the shared brokers): prints the table and writes it to docs/reliability.md
	FERRY_CHAOS=1 FERRY_CHAOS_WRITE=1 FERRY_TEST_RACE=0 $(GO) test -count=1 -timeout 75m -p 1 -v -run 'TestChaos$$' ./test/chaos/

brokers: ## start Kafka, RocketMQ, RabbitMQ and Redis if they are not running (test/brokers/up.sh)
	test/brokers/up.sh

screenshot: deps tools ## refresh docs/dashboard.png: the browser test with a demo load (about 2 min)
	FERRY_SCREENSHOT=$(CURDIR)/docs/dashboard.png $(GO) test -count=1 -timeout 10m -run TestDashboard ./test/ui/

tools: ## install chromium and promtool if missing (test/tools/up.sh)
	test/tools/up.sh

brokers-down: ## stop the brokers test/brokers/up.sh started
	test/brokers/down.sh

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(STATICCHECK) ## gofmt, go vet and staticcheck
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	@# test/bench is a module of its own (asynq and gonum stay out of Ferry's)
	cd test/bench && $(GO) vet ./... && $(STATICCHECK) ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

bench: deps brokers ## Ferry against asynq, raw consumers and ceilings, 1–3 Ferry nodes on Redis → docs/benchmarks.md (not part of make test; about 23 min; one part: cd test/bench && go run . -out ../../docs -only cluster)
	cd test/bench && $(GO) run . -out ../../docs

bench-quick: deps brokers ## a smoke run of make bench with tiny sizes (writes docs/ too: do not commit its figures)
	cd test/bench && $(GO) run . -out ../../docs -quick

clean:
	rm -rf bin

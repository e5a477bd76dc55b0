# Ferry's developer commands. `make run` serves the quick start; `make test`
# runs every test (with -race), installing what it needs first.
GO          ?= go
BIN         := bin/ferry
GOBIN       := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck
STATICCHECK_VERSION := v0.8.2
TEST_FLAGS  ?= -race -count=1 -timeout 20m

.PHONY: all build run test lint fmt bench clean deps

all: lint test

deps: ## download Go modules (the module proxy is the only source)
	$(GO) mod download

build: deps ## build bin/ferry
	$(GO) build -o $(BIN) ./cmd/ferry

run: build ## serve config/examples/quickstart.yaml on 127.0.0.1:8080 (data in ./data)
	./$(BIN) serve -c config/examples/quickstart.yaml

test: deps ## every test, with the race detector
	$(GO) test $(TEST_FLAGS) ./...

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(STATICCHECK) ## gofmt, go vet and staticcheck
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

bench: build ## load figures (not part of make test)
	$(GO) run ./test/load -n 20000 -c 32

clean:
	rm -rf bin

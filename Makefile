# Bakery — build, run and test. `make help` lists the targets.
SHELL      := /bin/bash
GO         ?= go
BIN        := bin/bakery
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT     ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS    := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
TOOLS      := $(CURDIR)/bin/tools
STATICCHECK_VERSION := v0.8.2
DATA       ?= .bakery-data
LISTEN     ?= 127.0.0.1:8080
# Test nodes for `make e2e`.
NODES      ?= 3

.PHONY: help build run fmt vet shellcheck lint tidy-check test fuzz bench e2e deps ci clean docs

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/bakery
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/bakery

run: build ## run the server on the embedded file store ($(DATA)), API on $(LISTEN)
	./$(BIN) server --data $(DATA) --listen $(LISTEN)

fmt: ## fail if gofmt would change a file
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet: ## go vet
	$(GO) vet ./...

$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

shellcheck: ## shellcheck every shell script of the project (scripts/, the node scripts embedded in reconciler/nodescript)
	shellcheck $$(git ls-files '*.sh')

lint: fmt vet shellcheck $(TOOLS)/staticcheck ## gofmt, vet, shellcheck and staticcheck
	$(TOOLS)/staticcheck ./...

tidy-check: ## fail if go mod tidy would change go.mod/go.sum (prints the diff)
	$(GO) mod tidy -diff

test: fmt vet ## unit and integration tests with the race detector (real sshd, real PostgreSQL)
	$(GO) test -race -count=1 -timeout 20m ./...

fuzz: ## run each fuzz target briefly
	$(GO) test ./sshexec -run '^$$' -fuzz '^FuzzQuote$$' -fuzztime 15s
	$(GO) test ./manifests -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 15s
	$(GO) test ./api/server -run '^$$' -fuzz '^FuzzParseGitHubPush$$' -fuzztime 15s
	$(GO) test ./reconciler/analytics -run '^$$' -fuzz '^FuzzParseAnalytics$$' -fuzztime 15s
	$(GO) test ./reconciler/nodefiles -run '^$$' -fuzz '^FuzzSiteProxy$$' -fuzztime 15s

bench: ## run every benchmark once (figures come from scripts/bench*)
	$(GO) test -run '^$$' -bench . -benchtime=1x -timeout 10m ./...

e2e: ## boot $(NODES) real test nodes, run the end-to-end tests, tear the nodes down
	bash scripts/e2e.sh $(NODES)

deps: ## install what the tests need (Debian/Ubuntu, as root)
	bash scripts/install-test-deps.sh

docs: ## regenerate docs/reference.md from the api types (a test checks it is current)
	$(GO) run ./scripts/genref > docs/reference.md

ci: deps lint tidy-check test fuzz bench e2e ## everything CI runs

clean:
	rm -rf bin

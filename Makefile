# Rampart. `make run` and `make test` set up everything they need on a fresh Debian machine.
.PHONY: run test bench proto fmt lint build clean-run openapi security-policy docs

run:
	@scripts/run.sh

test:
	@scripts/test.sh

# The OpenAPI conformance run alone (make test ends with it), after `make build`.
test-api:
	@scripts/api-conformance.sh

bench:
	@scripts/bench.sh

proto:
	@scripts/proto.sh

# After an edit of api/openapi.py: api/openapi.json (a link to the resource the gateway serves).
openapi:
	@scripts/openapi.sh

# After an edit of SECURITY.md: the copy the gateway serves.
security-policy:
	@scripts/security-policy.sh

build:
	swift build --build-tests

fmt:
	swift format --in-place --recursive --configuration .swift-format Packages services Tests

# The layout check make test starts with.
lint:
	@scripts/lint.sh

# Removes local data of `make run` (databases, JetStream, generated passwords).
clean-run:
	rm -rf .run

# docs/configuration.md against the variables the settings readers ask for (also in make test).
docs:
	@scripts/test.sh --filter ConfigurationDocsTests

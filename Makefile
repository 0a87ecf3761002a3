# patchwave developer entry points. The README's quick start uses `make demo` and `make test`.

CARGO ?= cargo
PLUGIN_TARGET := wasm32-wasip2
# The guests keep their own target directory even when CARGO_TARGET_DIR points elsewhere
# (CI caches the host build outside the clone).
PLUGIN_TARGET_DIR ?= $(CURDIR)/plugins/target
PLUGIN_OUT := $(PLUGIN_TARGET_DIR)/$(PLUGIN_TARGET)/release

.PHONY: demo plugins build test lint bench fleet-up fleet-down

# Build the WASM plugins (release; they are small) and install them where `make demo` loads
# them from: build/plugins/<name>.wasm.
plugins:
	@rustup target list --installed | grep -qx $(PLUGIN_TARGET) || rustup target add $(PLUGIN_TARGET)
	cd plugins && CARGO_TARGET_DIR=$(PLUGIN_TARGET_DIR) $(CARGO) build --release --target $(PLUGIN_TARGET) --locked
	mkdir -p build/plugins
	cp $(PLUGIN_OUT)/patchwave_plugin_debian.wasm build/plugins/debian.wasm

build: plugins
	$(CARGO) build -p patchwave-cli --locked

# The main job on the embedded config: scan this machine into build/state and summarise it.
# The directories are named because the binary's defaults are system or home directories
# (/var/lib/patchwave and /usr/lib/patchwave/plugins for root), never the working directory.
DEMO_DIRS := --state-dir "$(CURDIR)/build/state" --plugin-dir "$(CURDIR)/build/plugins"
demo: plugins
	$(CARGO) run -q -p patchwave-cli --locked -- $(DEMO_DIRS) scan localhost
	$(CARGO) run -q -p patchwave-cli --locked -- $(DEMO_DIRS) hosts show localhost

# Every test: unit, sandbox, this machine's dpkg, and (as root) the real SSH test fleet.
# tests/setup --ensure installs what the tests need when run as root (sshd, prometheus,
# alertmanager, mmdebstrap, the Python CVSS oracle, ...); without root it names the command.
test: plugins
	tests/setup --ensure
	PATCHWAVE_PLUGIN_BUILD=$(PLUGIN_OUT) tests/run

lint:
	$(CARGO) fmt --all -- --check
	cd plugins && $(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	cd plugins && $(CARGO) clippy --target $(PLUGIN_TARGET) --locked -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --locked

bench: plugins
	$(CARGO) bench -p patchwave-plugin-host --bench plugin
	$(CARGO) bench -p patchwave-store --bench hosts_show
	$(CARGO) bench -p patchwave-engine --bench findings
	$(CARGO) bench -p patchwave-rollout --bench decide
	$(CARGO) bench -p patchwave-engine --bench rollout

fleet-up:
	tests/fleet/fleet deps
	tests/fleet/fleet up 20

fleet-down:
	tests/fleet/fleet down

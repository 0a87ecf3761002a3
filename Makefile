# patchwave developer entry points. The README's quick start uses `make demo` and `make test`.

CARGO ?= cargo
PLUGIN_TARGET := wasm32-wasip2
PLUGIN_OUT := plugins/target/$(PLUGIN_TARGET)/release

.PHONY: demo plugins build test lint bench fleet-up fleet-down

# Build the WASM plugins (release; they are small) and install them where the embedded
# defaults look for them: build/plugins/<name>.wasm.
plugins:
	@rustup target list --installed | grep -qx $(PLUGIN_TARGET) || rustup target add $(PLUGIN_TARGET)
	cd plugins && $(CARGO) build --release --target $(PLUGIN_TARGET) --locked
	mkdir -p build/plugins
	cp $(PLUGIN_OUT)/patchwave_plugin_debian.wasm build/plugins/debian.wasm

build: plugins
	$(CARGO) build -p patchwave-cli --locked

# The main job on embedded defaults: scan this machine into ./.patchwave and summarise it.
demo: build
	./target/debug/patchwave scan localhost
	./target/debug/patchwave hosts show localhost

# Every test: unit, sandbox, this machine's dpkg, and (as root) the real SSH test fleet.
test: plugins
	tests/run

lint:
	$(CARGO) fmt --all -- --check
	cd plugins && $(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	cd plugins && $(CARGO) clippy --target $(PLUGIN_TARGET) --locked -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --locked

bench: plugins
	$(CARGO) bench -p patchwave-plugin-host --bench plugin
	$(CARGO) bench -p patchwave-store --bench hosts_show

fleet-up:
	tests/fleet/fleet deps
	tests/fleet/fleet up 15

fleet-down:
	tests/fleet/fleet down

//! The one host-side `bindgen!` of the `patchwave:plugin` contract.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "os-plugin",
    imports: {
        "patchwave:plugin/host.exec": async,
        default: tracing,
    },
    exports: { default: async },
});

pub use patchwave::plugin::host;
pub use patchwave::plugin::types;

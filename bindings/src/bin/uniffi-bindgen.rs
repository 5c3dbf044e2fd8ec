//! The uniffi bindings generator, built from the same uniffi version as the library, so the
//! generated Kotlin, Swift and Python always match it. `scripts/generate-bindings.sh` runs it.

fn main() {
    uniffi::uniffi_bindgen_main()
}

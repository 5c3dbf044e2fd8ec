#![no_main]

libfuzzer_sys::fuzz_target!(init: outpost_fuzz::targets::install_panic_hook(), |data: &[u8]| {
    outpost_fuzz::targets::document_import(data)
});

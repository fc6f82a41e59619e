#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| obguard_fuzz::targets::intel_feed(data));

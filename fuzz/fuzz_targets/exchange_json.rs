//! Every oneM2M exchange message from json input: never panic, and whatever
//! decodes re-encodes stably (see exchange_common.rs).
#![no_main]
#[path = "exchange_common.rs"]
mod exchange_common;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| exchange_common::all_messages(data, enrolkit_exchange::Format::Json));

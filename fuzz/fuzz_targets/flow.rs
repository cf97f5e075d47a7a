//! Any text given as a flow is refused with a message or compiled; never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &str| {
    let _ = generalbot_bot_server::bots::flow::parse(data);
});

//! Any text given as an FAQ CSV is refused naming a line or read; never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &str| {
    let _ = generalbot_bot_server::bots::faq::parse_csv(data);
});

//! Any text given as a bot is refused or compiled, and a compiled bot answers any
//! message within its step limit; never a panic.
#![no_main]

use generalbot_bot_server::bots::{self, Bot, run};

libfuzzer_sys::fuzz_target!(|data: &str| {
    let (definition, message) = data.split_once('\u{0}').unwrap_or((data, "hello"));
    let Ok(def) = bots::parse_definition(definition) else {
        return;
    };
    let Ok(bot) = Bot::compile(def) else {
        return;
    };
    let mut state = run::ConversationState::default();
    let _ = run::begin(&bot, &mut state);
    for word in message.split(' ').take(16) {
        let _ = run::turn(&bot, &mut state, word);
    }
});

//! Version `v1alpha1` of the `generalbots.io` API group.

mod front_door;
mod generalbot;
mod monitoring;
mod network;
mod security;
mod services;
mod status;

pub use front_door::*;
pub use generalbot::*;
pub use monitoring::*;
pub use network::*;
pub use security::*;
pub use services::*;
pub use status::*;

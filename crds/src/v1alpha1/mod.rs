//! Version `v1alpha1` of the `generalbots.io` API group.

mod generalbot;
mod network;
mod security;
mod services;
mod status;

pub use generalbot::*;
pub use network::*;
pub use security::*;
pub use services::*;
pub use status::*;

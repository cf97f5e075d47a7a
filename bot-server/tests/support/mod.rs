//! The real services the integration tests start: the workspace's test kit.
pub use generalbot_testkit::*;

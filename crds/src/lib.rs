//! The GeneralBot API and the contract between the operator and the bot server.
//!
//! Layout:
//! - [`v1alpha1`]: the `GeneralBot` custom resource (`generalbots.io/v1alpha1`), its spec,
//!   its status and the CEL rules the API server enforces on it.
//! - [`crd`]: the CustomResourceDefinition as installed (the derived one plus rules on
//!   the whole object).
//! - [`contract`]: what the operator hands the bot server and how: ports, mount paths,
//!   file names, environment variable names, labels and annotations. Both programs read
//!   these constants, so a path is written in exactly one place.

pub mod contract;
pub mod crd;
pub mod v1alpha1;

pub use v1alpha1::{GeneralBot, GeneralBotSpec, GeneralBotStatus};

//! Rotation of key rings: the ring model, the pure state machine that decides each step,
//! key generation, and the triggers (schedule, force annotation, maintenance windows).
//!
//! Nothing here talks to the API server: the controller reads a ring and its phase from
//! the keys Secret, asks [`machine::decide`] for the next step, and writes the changed
//! ring and the new phase back in one update.

pub mod due;
pub mod keygen;
pub mod machine;
pub mod ring;
pub mod triggers;

#[cfg(test)]
mod tests;

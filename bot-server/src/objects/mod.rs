//! Files at rest: sealed ([`sealed`]: AES-256-GCM in chunks, bound to what the file is)
//! before they leave the process, and stored under ids, never user-given names
//! ([`files`]: the bucket, or a private local directory).

pub mod attachments;
pub mod files;
pub mod sealed;

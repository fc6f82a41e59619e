//! Enforce (stage 9 of [`crate::pipeline`]): what the caller and the upstream see. RFC 6750 error replies, the
//! FAPI interaction id, identity headers for the upstream.

pub mod config;
pub mod interaction_id;
pub mod reply;
pub mod upstream;

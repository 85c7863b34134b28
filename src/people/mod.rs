//! What the people domain needs beyond storage and routes: signed contact invites and their QR
//! codes ([`invite`]), SMS codes and their texts ([`sms`]), who may see whose presence
//! ([`presence`]), and public profiles kept a few seconds for listings ([`profiles`]).

pub mod invite;
pub mod presence;
pub mod profiles;
pub mod sms;

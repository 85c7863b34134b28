//! What the people domain needs beyond storage and routes: signed contact invites and their QR
//! codes ([`invite`]), SMS codes and their texts ([`sms`]), and who may see whose presence
//! ([`presence`]).

pub mod invite;
pub mod presence;
pub mod sms;

//! What the people domain needs beyond storage and routes: signed contact invites and their QR
//! codes ([`invite`]), SMS codes and their texts ([`sms`]), who may see whose presence
//! ([`presence`]), public profiles kept a few seconds for listings ([`profiles`]), and who is
//! hidden from whom by a block ([`blocked_either_way`]).

pub mod invite;
pub mod presence;
pub mod profiles;
pub mod sms;

use std::collections::HashSet;

use crate::store::{SharedStore, StoreResult};

/// The users `me` blocked or who blocked `me`: hidden from `me`'s listings, and `me` from theirs.
pub async fn blocked_either_way(store: &SharedStore, me: &str) -> StoreResult<HashSet<String>> {
    let (mine, theirs) = futures_util::try_join!(store.blocked_by(me), store.blockers_of(me))?;
    Ok(mine.into_iter().chain(theirs).collect())
}

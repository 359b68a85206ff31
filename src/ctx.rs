//! What every command gets: the trial store, the operator config, the output and the clock.

use time::OffsetDateTime;

use crate::config::Config;
use crate::output::Out;
use crate::store::Store;

/// What every command gets.
pub struct Ctx {
    pub store: Store,
    pub config: Config,
    pub out: Out,
    pub now: OffsetDateTime,
}

//! What the handle ([`Producer`](crate::Producer)) sends its writer task: user records with
//! their share of the buffer, and flushes. Both sides depend on this module and not on each
//! other: the handle spawns the task, the task knows nothing of the handle.
use crate::delivery::Ack;
use inlet_schemas::kpl::UserRecord;
use tokio::sync::oneshot;

/// Bookkeeping bytes charged per user record on top of its payload.
pub(crate) const RECORD_OVERHEAD: usize = 64;

/// A user record on its way to the writer task.
#[derive(Debug)]
pub(crate) struct Queued {
    /// Its hash key (explicit, else MD5 of the partition key): the shard map places it.
    pub(crate) shard_key: u128,
    /// The record.
    pub(crate) record: UserRecord,
    /// Buffer permits the handle took for it (payload plus [`RECORD_OVERHEAD`]); the task
    /// gives them back once the record is settled or spooled.
    pub(crate) permits: usize,
    /// Where its outcome goes, for a confirmed send.
    pub(crate) ack: Option<Ack>,
}

/// A message from the handle to its writer task. The channel closing means the handle is
/// gone: the task flushes what it holds and stops.
#[derive(Debug)]
pub(crate) enum Msg {
    /// One record.
    Record(Queued),
    /// Records taken together (`try_send_all_confirmed`): one message, so all or none.
    Records(Vec<Queued>),
    /// Answer once everything received before it is settled.
    Flush(oneshot::Sender<()>),
}

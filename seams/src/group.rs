//! The group seam: a stream that balances its shards over its readers itself (a Kafka
//! consumer group) tells each member which shards it gets and which it must give up,
//! instead of the workers balancing leases among themselves.
//!
//! The lease store still fences: a member takes the lease of every shard it is given (even
//! a lease another worker holds, since the group says the shard is now ours), so a member
//! the group has already dropped (paused, partitioned away) finds its commits refused.
use crate::sequence::StartPosition;
use crate::shard::ShardId;
use crate::stream::StreamReader;
use async_trait::async_trait;
use std::sync::Arc;
use std::sync::mpsc;

/// What the positions of an assignment are (or why there are none).
pub type Positions = Result<Vec<(ShardId, StartPosition)>, String>;

/// The answer to an [`GroupEvent::Assigned`]: where each shard is to be read from.
#[derive(Debug)]
pub struct AssignReply(pub mpsc::Sender<Positions>);

impl AssignReply {
    /// Answers (a member that left no longer listens; that is fine).
    pub fn send(self, positions: Positions) {
        let _ = self.0.send(positions);
    }
}

/// Dropped or [`RevokeDone::done`] once the revoked shards are committed and released.
#[derive(Debug)]
pub struct RevokeDone(pub mpsc::Sender<()>);

impl RevokeDone {
    /// Says the shards are given up.
    pub fn done(self) {
        let _ = self.0.send(());
    }
}

/// A change of a member's shards. The group waits for the answer before going on, so these
/// must be answered promptly.
#[derive(Debug)]
pub enum GroupEvent {
    /// These shards are now the member's: take their leases and answer with where to read
    /// each from (its checkpoint).
    Assigned {
        /// The shards.
        shards: Vec<ShardId>,
        /// The answer.
        reply: AssignReply,
    },
    /// These shards are taken away: stop reading them, commit what was read, release their
    /// leases, then answer. `lost` when the group dropped the member before asking (its
    /// session lapsed): another member may already have them, and commits will be fenced.
    Revoked {
        /// The shards.
        shards: Vec<ShardId>,
        /// Whether they were lost rather than handed over.
        lost: bool,
        /// The answer.
        done: RevokeDone,
    },
}

/// A member of a stream's consumer group.
#[async_trait]
pub trait GroupMember: Send + Sync + std::fmt::Debug {
    /// Opens the shards assigned to this member, at the positions of the assignment's answer
    /// or anywhere asked later (a restart after a failure).
    fn reader(&self) -> Arc<dyn StreamReader>;
    /// The next change of this member's shards; `None` once it has left the group.
    async fn next_event(&self) -> Option<GroupEvent>;
    /// Leaves the group (its shards go to the other members). Events that arrive meanwhile
    /// are answered as if handled.
    async fn leave(&self);
}

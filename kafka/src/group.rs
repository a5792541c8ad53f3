//! Consumer-group membership: [`KafkaMember`], a [`GroupMember`] on one librdkafka consumer
//! subscribed with cooperative-sticky assignment.
//!
//! How a rebalance runs (librdkafka calls [`ConsumerContext::rebalance`] on the thread that
//! polls the consumer's main queue, a thread of the member's own):
//! - **assigned**: each new partition gets a queue of its own (split before it is assigned,
//!   so no record of it reaches the main queue), the worker is asked for the positions
//!   ([`GroupEvent::Assigned`]: it takes the leases and answers with their checkpoints), and
//!   the partitions are assigned at those positions: reading resumes from the warehouse's
//!   offsets, not Kafka's. A partition without a checkpoint starts at the worker's initial
//!   position, looked up there and then (`reader::resolve`).
//! - **revoked**: the worker is told ([`GroupEvent::Revoked`]) and answers once it has
//!   committed what it read and released the leases; only then are the partitions given up.
//!
//! The callback blocks while the worker answers; that is why the main queue has a thread of
//! its own and the answers travel on std channels.
use crate::client::{BadSettings, KafkaStream, partition_shard, shard_partition};
use crate::context::{self, Noise};
use crate::location::KafkaLocation;
use crate::metrics as m;
use crate::reader::{Cursor, offset_of, read_batch, read_error, resolve};
use async_trait::async_trait;
use inlet_seams::{
    AssignReply, Checkpoint, GroupEvent, GroupMember, ReadBatch, RevokeDone, Shard, ShardId, ShardReader,
    StartPosition, StreamError, StreamReader,
};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::stream_consumer::StreamPartitionQueue;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak, mpsc};
use std::time::Duration;
use tokio::sync::mpsc as tokio_mpsc;
use tokio_util::sync::CancellationToken;

/// How long a rebalance waits for the worker's answer (well within `max.poll.interval.ms`).
/// Past it the member goes on without (and the worker, whose lease store is failing, exits).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

type Queue = StreamPartitionQueue<GroupContext>;

/// An assigned partition.
struct Slot {
    queue: Arc<Queue>,
    /// Opened since it was assigned: a later open (a restart after a failure) seeks.
    opened: bool,
}

type Slots = Arc<Mutex<HashMap<i32, Slot>>>;

fn lock(slots: &Slots) -> std::sync::MutexGuard<'_, HashMap<i32, Slot>> {
    slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct GroupContext {
    topic: String,
    /// The consumer this context belongs to, for splitting partition queues.
    consumer: OnceLock<Weak<StreamConsumer<GroupContext>>>,
    slots: Slots,
    /// Unbounded: rebalances are rare, and the callback must not block on a full channel.
    events: tokio_mpsc::UnboundedSender<GroupEvent>,
    /// The stream's: librdkafka's errors, kept quiet as its other clients' are.
    noise: Arc<Noise>,
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        context::log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        context::error(&self.noise, &error, reason);
    }
}

impl GroupContext {
    fn assign(&self, base: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let partitions: Vec<i32> = tpl
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect();
        metrics::counter!(m::REBALANCES_TOTAL, "kind" => "assigned").increment(1);
        if let Some(consumer) = self.consumer.get().and_then(Weak::upgrade) {
            let mut slots = lock(&self.slots);
            for &p in &partitions {
                match consumer.split_partition_queue(&self.topic, p) {
                    Some(q) => {
                        slots.insert(
                            p,
                            Slot {
                                queue: Arc::new(q),
                                opened: false,
                            },
                        );
                    }
                    None => tracing::error!(partition = p, "splitting the partition's queue failed"),
                }
            }
        }
        let (tx, rx) = mpsc::channel();
        let event = GroupEvent::Assigned {
            shards: partitions.iter().map(|p| partition_shard(*p)).collect(),
            reply: AssignReply(tx),
        };
        let answer = match self.events.send(event) {
            Ok(()) => rx.recv_timeout(ANSWER_TIMEOUT).map_err(|e| e.to_string()),
            Err(_) => Err("the member is leaving".to_owned()),
        };
        match answer.and_then(|a| a) {
            Ok(positions) => {
                for (shard, from) in positions {
                    let Some(p) = shard_partition(&shard) else { continue };
                    // Blocking lookups are fine here: this thread only serves the group.
                    let offset = resolve(base, &self.topic, p, &from).unwrap_or_else(|e| {
                        tracing::error!(partition = p, ?from, error = %e, "looking up the start offset failed; librdkafka resolves it");
                        offset_of(&from)
                    });
                    if let Err(e) = tpl.set_partition_offset(&self.topic, p, offset) {
                        tracing::error!(partition = p, error = %e, "setting the start offset failed");
                    }
                }
            }
            Err(e) => tracing::error!(
                error = %e,
                ?partitions,
                "no positions for the assigned partitions; they stay unread until the next rebalance"
            ),
        }
        let r = match base.rebalance_protocol() {
            RebalanceProtocol::Cooperative => base.incremental_assign(tpl),
            _ => base.assign(tpl),
        };
        if let Err(e) = r {
            tracing::error!(error = %e, "assigning partitions failed");
        }
        metrics::gauge!(m::ASSIGNED_PARTITIONS).set(lock(&self.slots).len() as f64);
    }

    fn revoke(&self, base: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let partitions: Vec<i32> = tpl
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect();
        let lost = base.assignment_lost();
        metrics::counter!(m::REBALANCES_TOTAL, "kind" => if lost { "lost" } else { "revoked" }).increment(1);
        let (tx, rx) = mpsc::channel();
        let event = GroupEvent::Revoked {
            shards: partitions.iter().map(|p| partition_shard(*p)).collect(),
            lost,
            done: RevokeDone(tx),
        };
        if self.events.send(event).is_ok() && rx.recv_timeout(ANSWER_TIMEOUT).is_err() {
            tracing::warn!(?partitions, "the worker did not confirm the revocation in time");
        }
        {
            let mut slots = lock(&self.slots);
            for p in &partitions {
                slots.remove(p);
            }
        }
        let r = match base.rebalance_protocol() {
            RebalanceProtocol::Cooperative => base.incremental_unassign(tpl),
            _ => base.unassign(),
        };
        if let Err(e) = r {
            tracing::error!(error = %e, "giving partitions up failed");
        }
        metrics::gauge!(m::ASSIGNED_PARTITIONS).set(lock(&self.slots).len() as f64);
    }
}

impl ConsumerContext for GroupContext {
    fn commit_callback(&self, result: rdkafka::error::KafkaResult<()>, _offsets: &TopicPartitionList) {
        let outcome = match result {
            Ok(()) => "ok",
            Err(e) => {
                tracing::debug!(error = %e, "committing offsets to Kafka failed");
                "error"
            }
        };
        metrics::counter!(m::OFFSET_COMMITS_TOTAL, "outcome" => outcome).increment(1);
    }

    fn rebalance(&self, base: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.assign(base, tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => self.revoke(base, tpl),
            other => {
                metrics::counter!(m::REBALANCES_TOTAL, "kind" => "error").increment(1);
                tracing::error!(error = ?other, "rebalance failed");
                if !matches!(base.rebalance_protocol(), RebalanceProtocol::Cooperative) {
                    let _ = base.unassign();
                }
            }
        }
    }
}

struct Inner {
    stream: Arc<KafkaStream>,
    consumer: Arc<StreamConsumer<GroupContext>>,
    slots: Slots,
    events: tokio::sync::Mutex<tokio_mpsc::UnboundedReceiver<GroupEvent>>,
    stop: CancellationToken,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// A member of the location's consumer group (`group=`), reading the partitions the group
/// assigns it.
#[derive(Clone)]
pub struct KafkaMember {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KafkaMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaMember")
            .field("location", &self.inner.stream.location)
            .finish_non_exhaustive()
    }
}

impl KafkaStream {
    /// Joins the location's consumer group as `member` (librdkafka's `client.id`): the group
    /// starts assigning partitions, announced by [`GroupMember::next_event`].
    pub fn join_group(self: &Arc<Self>, member: &str) -> Result<KafkaMember, BadSettings> {
        let location: &KafkaLocation = &self.location;
        let (tx, rx) = tokio_mpsc::unbounded_channel();
        let slots: Slots = Arc::default();
        let context = GroupContext {
            topic: location.topic.clone(),
            consumer: OnceLock::new(),
            slots: Arc::clone(&slots),
            events: tx,
            noise: Arc::clone(&self.noise),
        };
        let mut config = location.consumer_config(&location.group);
        config.set("client.id", member);
        let consumer: StreamConsumer<GroupContext> =
            config.create_with_context(context).map_err(|source| BadSettings {
                url: location.to_url(),
                source,
            })?;
        let consumer = Arc::new(consumer);
        let _ = consumer.context().consumer.set(Arc::downgrade(&consumer));
        consumer.subscribe(&[&location.topic]).map_err(|source| BadSettings {
            url: location.to_url(),
            source,
        })?;
        let stop = CancellationToken::new();
        let thread = {
            let (consumer, stop, slots) = (Arc::clone(&consumer), stop.clone(), Arc::clone(&slots));
            let topic = location.topic.clone();
            std::thread::Builder::new()
                .name("inlet-kafka-group".into())
                .spawn(move || serve_main_queue(&consumer, &topic, &slots, &stop))
                .map_err(|e| BadSettings {
                    url: location.to_url(),
                    source: rdkafka::error::KafkaError::ClientCreation(e.to_string()),
                })?
        };
        Ok(KafkaMember {
            inner: Arc::new(Inner {
                stream: Arc::clone(self),
                consumer,
                slots,
                events: tokio::sync::Mutex::new(rx),
                stop,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }
}

/// The member's thread: polls the main queue (which serves the rebalance callbacks) until
/// stopped, then leaves the group.
fn serve_main_queue(consumer: &StreamConsumer<GroupContext>, topic: &str, slots: &Slots, stop: &CancellationToken) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        tracing::error!("the consumer group thread could not start a runtime");
        return;
    };
    rt.block_on(async {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                msg = consumer.recv() => match msg {
                    // Only if a partition's queue could not be split: read it again into its
                    // own queue from here (its reader skips what it already has).
                    Ok(msg) => {
                        let p = msg.partition();
                        tracing::warn!(partition = p, offset = msg.offset(), "a record came on the group's main queue; re-reading from it");
                        if lock(slots).contains_key(&p) {
                            let _ = consumer.seek(topic, p, Offset::Offset(msg.offset()), Duration::ZERO);
                        }
                    }
                    Err(e) => {
                        metrics::counter!(m::FETCH_ERRORS_TOTAL, "code" => "group").increment(1);
                        tracing::warn!(error = %e, "consumer group error");
                    }
                },
            }
        }
        // Leave: the revocation that follows is answered at once (nobody listens any more).
        consumer.unsubscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline
            && consumer.assignment().map(|a| a.count() > 0).unwrap_or(false)
        {
            let _ = tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await;
        }
    });
    // Queues hold the consumer: drop them so it can close.
    lock(slots).clear();
}

#[async_trait]
impl GroupMember for KafkaMember {
    fn reader(&self) -> Arc<dyn StreamReader> {
        Arc::new(self.clone())
    }

    async fn next_event(&self) -> Option<GroupEvent> {
        self.inner.events.lock().await.recv().await
    }

    async fn leave(&self) {
        // Close the events first: a revocation during the leave is then answered at once.
        self.inner.events.lock().await.close();
        self.inner.stop.cancel();
        let thread = self
            .inner
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[async_trait]
impl StreamReader for KafkaMember {
    async fn list_shards(&self) -> Result<Vec<Shard>, StreamError> {
        self.inner.stream.shards().await
    }

    /// Opens an assigned partition. The first open after the assignment reads from where the
    /// assignment put it (the same checkpoint, or start position, resolved then); a later one
    /// seeks to `from`, resolved now (see `reader::resolve`).
    async fn open(&self, shard: &ShardId, from: StartPosition) -> Result<Box<dyn ShardReader>, StreamError> {
        let topic = &self.inner.stream.location.topic;
        let not_ours = || StreamError::NoSuchShard {
            stream: topic.clone(),
            shard: shard.clone(),
        };
        let p = shard_partition(shard).ok_or_else(not_ours)?;
        let (queue, seek) = {
            let mut slots = lock(&self.inner.slots);
            let slot = slots.get_mut(&p).ok_or_else(not_ours)?;
            let seek = slot.opened;
            slot.opened = true;
            (Arc::clone(&slot.queue), seek)
        };
        let offset = if seek {
            let (consumer, t, f) = (Arc::clone(&self.inner.consumer), topic.clone(), from.clone());
            let offset = tokio::task::spawn_blocking(move || resolve(&*consumer, &t, p, &f))
                .await
                .unwrap_or(Err(KafkaError::Canceled))
                .map_err(|e| read_error(topic, shard, e))?;
            self.inner
                .consumer
                .seek(topic, p, offset, Duration::ZERO)
                .map_err(|e| read_error(topic, shard, e))?;
            offset
        } else {
            offset_of(&from)
        };
        Ok(Box::new(MemberPartitionReader {
            queue,
            consumer: Arc::clone(&self.inner.consumer),
            topic: topic.clone(),
            partition: p,
            shard: shard.clone(),
            cursor: Cursor::new(offset, &from),
        }))
    }
}

/// An assigned partition's reader.
struct MemberPartitionReader {
    queue: Arc<Queue>,
    consumer: Arc<StreamConsumer<GroupContext>>,
    topic: String,
    partition: i32,
    shard: ShardId,
    cursor: Cursor,
}

impl std::fmt::Debug for MemberPartitionReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberPartitionReader")
            .field("shard", &self.shard)
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ShardReader for MemberPartitionReader {
    async fn next_batch(&mut self, max: usize) -> Result<ReadBatch, StreamError> {
        read_batch(self.queue.stream(), max, &mut self.cursor, &self.topic, &self.shard).await
    }

    async fn committed(&mut self, checkpoint: &Checkpoint) {
        let Some(offset) = checkpoint.sequence.to_u64() else {
            return;
        };
        let mut tpl = TopicPartitionList::new();
        // Kafka's committed offset is the next one to read.
        if tpl
            .add_partition_offset(&self.topic, self.partition, Offset::Offset(offset as i64 + 1))
            .is_err()
        {
            return;
        }
        // Async (the outcome comes to the context's commit callback): the warehouse holds the
        // real offset; this one is for lag tools.
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
            tracing::debug!(shard = %self.shard, error = %e, "committing the offset to Kafka failed");
            metrics::counter!(m::OFFSET_COMMITS_TOTAL, "outcome" => "error").increment(1);
        }
    }
}

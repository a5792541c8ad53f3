//! The lease plan: which leases a worker takes so that each live worker holds its fair
//! share. Pure: leases and the time in, a plan out.
//!
//! Live workers are the owners of unexpired leases (plus this one). The fair share is
//! `ceil(eligible / live)`. A worker below it takes free or expired leases first, and only
//! then steals from the worker holding the most.
//! A lease is eligible once its parents are finished (parents before children); a parent
//! whose lease is gone (aged out of the stream, or cleaned up after it finished) counts as
//! finished.
//!
//! [`cleanable`] picks the finished leases to delete, by the rule the lease store enforces
//! (see `inlet_seams::lease`).
use inlet_seams::{Lease, ShardId};
use std::collections::{BTreeMap, BTreeSet};

/// A lease to take: the shard and the counter seen (the take is a compare-and-set on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Take {
    /// The shard.
    pub shard: ShardId,
    /// The counter seen in the listing.
    pub seen_counter: u64,
    /// Whether another live worker holds it.
    pub steal: bool,
}

/// The leases that can be held now: not finished, and every parent finished (a parent with
/// no lease has aged out of the stream: nothing left to wait for).
pub fn eligible(leases: &[Lease]) -> Vec<&Lease> {
    let finished: BTreeSet<&ShardId> = leases.iter().filter(|l| l.finished).map(|l| &l.shard).collect();
    let known: BTreeSet<&ShardId> = leases.iter().map(|l| &l.shard).collect();
    leases
        .iter()
        .filter(|l| !l.finished && l.parents.iter().all(|p| finished.contains(p) || !known.contains(p)))
        .collect()
}

/// Whether `workers` hold every eligible lease, unexpired at `now_ms`, in fair shares (no
/// two differ by more than one): the state the plan converges to.
pub fn is_balanced(leases: &[Lease], workers: &[String], now_ms: i64) -> bool {
    let eligible = eligible(leases);
    let mut held = vec![0usize; workers.len()];
    for l in &eligible {
        let owner = l.owner.as_deref().filter(|_| l.expires_at_ms > now_ms);
        match owner.and_then(|o| workers.iter().position(|w| w == o)) {
            Some(i) => held[i] += 1,
            None => return false,
        }
    }
    let (min, max) = (held.iter().min(), held.iter().max());
    !eligible.is_empty() && matches!((min, max), (Some(a), Some(b)) if b - a <= 1)
}

/// Plans what `me` should take at `now_ms`, holding at most `max_leases`.
pub fn plan(leases: &[Lease], me: &str, now_ms: i64, max_leases: usize) -> Vec<Take> {
    let eligible = eligible(leases);
    if eligible.is_empty() {
        return Vec::new();
    }
    let mut held: BTreeMap<&str, usize> = BTreeMap::new();
    held.insert(me, 0);
    for l in &eligible {
        if let Some(owner) = l.owner.as_deref().filter(|_| l.expires_at_ms > now_ms) {
            *held.entry(owner).or_default() += 1;
        }
    }
    let share = eligible.len().div_ceil(held.len()).min(max_leases);
    let mine = held[me];
    if mine >= share {
        return Vec::new();
    }
    let mut need = share - mine;
    // Start the scan at a point derived from our name, so that workers starting together
    // reach for different leases.
    let offset = me
        .bytes()
        .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(usize::from(b)))
        % eligible.len();
    let mut plan = Vec::new();
    for i in 0..eligible.len() {
        let l = eligible[(i + offset) % eligible.len()];
        if need == 0 {
            return plan;
        }
        if l.is_available(now_ms) {
            plan.push(Take {
                shard: l.shard.clone(),
                seen_counter: l.counter,
                steal: false,
            });
            need -= 1;
        }
    }
    // Steal from the most loaded workers while they stay at or above the share.
    while need > 0 {
        let Some((victim, count)) = held
            .iter()
            .filter(|(w, _)| **w != me)
            .max_by_key(|(w, n)| (**n, std::cmp::Reverse(**w)))
            .map(|(w, n)| (*w, *n))
        else {
            break;
        };
        // Like the KCL: steal from a worker above the share, or from one at the share when
        // we are two or more below it (else shares of 2,2,0 would never move).
        if count < share || (count == share && need < 2) {
            break;
        }
        let Some(l) = eligible.iter().find(|l| {
            l.owner.as_deref() == Some(victim)
                && l.expires_at_ms > now_ms
                && !plan.iter().any(|t: &Take| t.shard == l.shard)
        }) else {
            break;
        };
        plan.push(Take {
            shard: l.shard.clone(),
            seen_counter: l.counter,
            steal: true,
        });
        if let Some(n) = held.get_mut(victim) {
            *n -= 1;
        }
        need -= 1;
    }
    plan
}

/// The finished leases that may be deleted at `now_ms`: not held (no owner, or expired),
/// named as a parent by at least one lease, and every lease naming them has started
/// ([`Lease::has_started`]). The store checks the same again when deleting.
pub fn cleanable(leases: &[Lease], now_ms: i64) -> Vec<ShardId> {
    leases
        .iter()
        .filter(|l| l.finished && (l.owner.is_none() || l.expires_at_ms <= now_ms))
        .filter(|l| {
            let mut children = leases.iter().filter(|c| c.parents.contains(&l.shard)).peekable();
            children.peek().is_some() && children.all(Lease::has_started)
        })
        .map(|l| l.shard.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lease(i: u32, owner: Option<&str>, expires: i64) -> Lease {
        Lease {
            shard: ShardId::from_index(i),
            owner: owner.map(str::to_owned),
            counter: 1,
            expires_at_ms: expires,
            checkpoint: None,
            watermark_ms: None,
            folded_before_minute: None,
            parents: vec![],
            finished: false,
        }
    }

    #[test]
    fn leases_are_balanced_when_every_one_is_held_in_fair_shares() {
        let held = |i: u32, owner: Option<&str>| lease(i, owner, 10_000);
        let workers = ["w0".to_owned(), "w1".to_owned()];
        let split = [held(0, Some("w0")), held(1, Some("w1")), held(2, Some("w0"))];
        assert!(is_balanced(&split, &workers, 5_000));
        assert!(!is_balanced(&split, &workers, 10_000), "expired");
        let one_sided = [held(0, Some("w0")), held(1, Some("w0")), held(2, Some("w0"))];
        assert!(!is_balanced(&one_sided, &workers, 5_000));
        let free = [held(0, Some("w0")), held(1, None)];
        assert!(!is_balanced(&free, &workers, 5_000));
        assert!(!is_balanced(&[], &workers, 5_000));
    }

    #[test]
    fn a_lone_worker_takes_everything() {
        let leases: Vec<_> = (0..8).map(|i| lease(i, None, 0)).collect();
        assert_eq!(plan(&leases, "a", 100, usize::MAX).len(), 8);
    }

    #[test]
    fn expired_leases_are_taken_before_stealing() {
        let mut leases: Vec<_> = (0..4).map(|i| lease(i, Some("dead"), 50)).collect();
        leases.extend((4..8).map(|i| lease(i, Some("b"), 1000)));
        let p = plan(&leases, "a", 100, usize::MAX);
        // live: a, b -> share 4; the four expired ones are free
        assert_eq!(p.len(), 4);
        assert!(p.iter().all(|t| !t.steal && t.shard.0 < ShardId::from_index(4).0));
    }

    #[test]
    fn steals_only_down_to_the_share() {
        let leases: Vec<_> = (0..8).map(|i| lease(i, Some("b"), 1000)).collect();
        let p = plan(&leases, "a", 100, usize::MAX);
        assert_eq!(p.len(), 4);
        assert!(p.iter().all(|t| t.steal));
    }

    #[test]
    fn children_wait_for_parents() {
        let mut parent = lease(0, None, 0);
        let mut child = lease(1, None, 0);
        child.parents = vec![parent.shard.clone()];
        assert_eq!(plan(&[parent.clone(), child.clone()], "a", 100, usize::MAX).len(), 1);
        parent.finished = true;
        let p = plan(&[parent, child], "a", 100, usize::MAX);
        assert_eq!(
            p,
            vec![Take {
                shard: ShardId::from_index(1),
                seen_counter: 1,
                steal: false
            }]
        );
    }

    #[test]
    fn a_parent_whose_lease_is_gone_counts_as_done() {
        // The parent (shard 0) was cleaned up after it finished: only its children remain,
        // one started and released, one never taken.
        let mut started = lease(1, None, 0);
        started.parents = vec![ShardId::from_index(0)];
        started.checkpoint = Some(inlet_seams::Checkpoint {
            sequence: inlet_seams::SequenceNumber::from_u64(5),
            sub_sequence: 0,
        });
        let mut fresh = lease(2, None, 0);
        fresh.parents = vec![ShardId::from_index(0)];
        // A merged child whose other parent (shard 3) is still being read waits for it.
        let mut other = lease(3, Some("b"), 1000);
        other.counter = 4;
        let mut merged = lease(4, None, 0);
        merged.parents = vec![ShardId::from_index(0), ShardId::from_index(3)];
        let leases = [started, fresh, other.clone(), merged.clone()];
        let shards: BTreeSet<ShardId> = plan(&leases, "a", 100, usize::MAX)
            .into_iter()
            .map(|t| t.shard)
            .collect();
        assert_eq!(
            shards,
            [1, 2].map(ShardId::from_index).into_iter().collect(),
            "children of a cleaned-up parent are taken; a merge still waits for its live parent"
        );
        other.finished = true;
        other.owner = None;
        let p = plan(&[other, merged], "a", 100, usize::MAX);
        assert_eq!(p.len(), 1, "both parents done (one gone, one finished): {p:?}");
        assert_eq!(p[0].shard, ShardId::from_index(4));
    }

    #[test]
    fn finished_parents_are_cleanable_once_every_child_started() {
        let checkpoint = Some(inlet_seams::Checkpoint {
            sequence: inlet_seams::SequenceNumber::from_u64(1),
            sub_sequence: 0,
        });
        let mut parent = lease(0, None, 0);
        parent.finished = true;
        let mut c1 = lease(1, Some("a"), 1000);
        c1.parents = vec![parent.shard.clone()];
        let mut c2 = lease(2, None, 0);
        c2.parents = vec![parent.shard.clone()];
        let lonely = Lease {
            finished: true,
            ..lease(3, None, 0)
        };
        let unfinished = lease(4, None, 0);
        let mut c5 = lease(5, None, 0);
        c5.parents = vec![unfinished.shard.clone()];
        c5.checkpoint = checkpoint.clone();
        let all = |p: &Lease, c1: &Lease, c2: &Lease| {
            vec![
                p.clone(),
                c1.clone(),
                c2.clone(),
                lonely.clone(),
                unfinished.clone(),
                c5.clone(),
            ]
        };
        assert!(cleanable(&all(&parent, &c1, &c2), 100).is_empty(), "no child started");
        c1.checkpoint = checkpoint.clone();
        assert!(
            cleanable(&all(&parent, &c1, &c2), 100).is_empty(),
            "one child has not started"
        );
        c2.finished = true; // an empty child: ended without a checkpoint
        assert_eq!(cleanable(&all(&parent, &c1, &c2), 100), vec![parent.shard.clone()]);
        // Still held by a crashed worker until its expiry.
        parent.owner = Some("dead".into());
        parent.expires_at_ms = 200;
        assert!(cleanable(&all(&parent, &c1, &c2), 100).is_empty(), "held");
        assert_eq!(cleanable(&all(&parent, &c1, &c2), 200), vec![parent.shard.clone()]);
    }

    proptest! {
        /// Repeated planning by each worker in turn converges to shares that differ by at
        /// most one, and no lease is ever planned twice in one plan.
        #[test]
        fn converges_to_fair_shares(shards in 1u32..64, workers in 1usize..6, seed in any::<u64>()) {
            let names: Vec<String> = (0..workers).map(|w| format!("w{w}-{seed}")).collect();
            let mut leases: Vec<_> = (0..shards).map(|i| lease(i, None, 0)).collect();
            let now = 100;
            for _round in 0..(shards as usize + 4) {
                for me in &names {
                    let p = plan(&leases, me, now, usize::MAX);
                    let set: BTreeSet<_> = p.iter().map(|t| &t.shard).collect();
                    prop_assert_eq!(set.len(), p.len());
                    for t in p {
                        let l = leases.iter_mut().find(|l| l.shard == t.shard).unwrap();
                        if l.counter == t.seen_counter {
                            l.owner = Some(me.clone());
                            l.counter += 1;
                            l.expires_at_ms = now + 1000;
                        }
                    }
                }
            }
            let mut counts: BTreeMap<&str, usize> = names.iter().map(|n| (n.as_str(), 0)).collect();
            for l in &leases {
                *counts.get_mut(l.owner.as_deref().unwrap()).unwrap() += 1;
            }
            let (min, max) = (counts.values().min().unwrap(), counts.values().max().unwrap());
            prop_assert!(max - min <= 1, "unbalanced: {:?}", counts);
        }
    }
}

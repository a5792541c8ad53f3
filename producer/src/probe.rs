//! The probe of an unresponsive stream. A `PutRecords` call with no answer may or may not
//! have been written, and a hung stream may apply every retry sent to it once it wakes (each
//! one a duplicate). So after one, the writer task sends no data until a cheap call (the task
//! uses `ListShards`) answers: one probe at a time, failed probes retried with backoff.
use crate::backoff::Backoff;
use std::future::Future;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Whether writes are paused, and the probe that will resume them.
#[derive(Debug)]
pub(crate) struct Probe {
    /// Set when a call got no answer; cleared when a probe answers. No data call goes out
    /// while it is set.
    suspect: bool,
    /// The probe in flight: it resolves to whether the stream answered.
    running: Option<JoinHandle<bool>>,
    /// When the next probe may start (now after an unanswered call, later after a failed
    /// probe).
    next_at: Instant,
    /// Probes failed in a row since the stream was suspected: the backoff's attempt count.
    failures: u32,
}

impl Probe {
    pub(crate) fn new() -> Self {
        Self {
            suspect: false,
            running: None,
            next_at: Instant::now(),
            failures: 0,
        }
    }

    /// Whether data calls must wait for a probe to answer.
    pub(crate) fn writes_paused(&self) -> bool {
        self.suspect
    }

    /// A call got no answer: pause writes and probe at `now`. While already paused nothing
    /// changes, so the probes' backoff goes on.
    pub(crate) fn unanswered(&mut self, now: Instant) {
        if !self.suspect {
            tracing::warn!("a call got no answer: probing the stream before writing again");
            self.suspect = true;
            self.next_at = now;
        }
    }

    /// Whether a probe should start at `now`.
    pub(crate) fn due(&self, now: Instant) -> bool {
        self.suspect && self.running.is_none() && now >= self.next_at
    }

    /// Starts a probe: `answers` resolves to whether the stream answered.
    pub(crate) fn start(&mut self, answers: impl Future<Output = bool> + Send + 'static) {
        self.running = Some(tokio::spawn(answers));
    }

    /// When the task should wake to start the next probe, if one is waiting.
    pub(crate) fn wake_at(&self) -> Option<Instant> {
        (self.suspect && self.running.is_none()).then_some(self.next_at)
    }

    /// Whether a probe is in flight.
    pub(crate) fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// The running probe's answer: whether the stream answered (a probe that panicked did
    /// not). Pending forever when none runs. Cancel-safe; hand the answer to
    /// [`Probe::answered`].
    pub(crate) async fn answer(&mut self) -> bool {
        match &mut self.running {
            Some(handle) => handle.await.unwrap_or(false),
            None => std::future::pending().await,
        }
    }

    /// The probe finished at `now`: writes resume if the stream answered, else the next
    /// probe waits a backoff.
    pub(crate) fn answered(&mut self, answered: bool, now: Instant, backoff: &mut Backoff) {
        self.running = None;
        if answered {
            tracing::info!(probes = self.failures + 1, "the stream answers again; resuming writes");
            self.suspect = false;
            self.failures = 0;
        } else {
            self.failures += 1;
            self.next_at = now + Duration::from_millis(backoff.delay_ms(self.failures));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff() -> Backoff {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(5))
    }

    #[tokio::test(start_paused = true)]
    async fn writes_stay_paused_after_an_unanswered_call_until_a_probe_answers() {
        let mut backoff = backoff();
        let mut p = Probe::new();
        assert!(!p.writes_paused() && !p.due(Instant::now()) && p.wake_at().is_none());

        let t0 = Instant::now();
        p.unanswered(t0);
        assert!(p.writes_paused());
        assert!(p.due(t0), "the first probe goes out at once");
        assert_eq!(p.wake_at(), Some(t0));

        p.start(async { false });
        assert!(p.is_running() && !p.due(t0), "one probe at a time");
        assert_eq!(p.wake_at(), None, "nothing to wake for while a probe runs");
        let answer = p.answer().await;
        p.answered(answer, t0, &mut backoff);
        assert!(p.writes_paused(), "a failed probe keeps writes paused");
        assert!(!p.is_running());
        // The next probe waits the first backoff (100 ms, half of it jittered).
        let next = p.wake_at().unwrap();
        assert!(next >= t0 + Duration::from_millis(50) && next <= t0 + Duration::from_millis(100));
        assert!(!p.due(next - Duration::from_millis(1)));
        assert!(p.due(next));

        p.start(async { true });
        let answer = p.answer().await;
        p.answered(answer, next, &mut backoff);
        assert!(!p.writes_paused(), "an answered probe resumes writes");
        assert!(!p.due(next + Duration::from_secs(60)) && p.wake_at().is_none());

        // The next outage starts the probes' backoff over.
        for _ in 0..5 {
            p.unanswered(next);
            p.start(async { false });
            let answer = p.answer().await;
            p.answered(answer, next, &mut backoff);
            assert!(
                p.wake_at().unwrap() <= next + Duration::from_millis(100),
                "backoff not reset"
            );
            p.start(async { true });
            let answer = p.answer().await;
            p.answered(answer, next, &mut backoff);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failed_probes_back_off_and_another_unanswered_call_does_not_reset_them() {
        let mut backoff = backoff();
        let mut p = Probe::new();
        let t0 = Instant::now();
        p.unanswered(t0);
        let mut at = t0;
        for failures in 1..=4u32 {
            p.start(async { false });
            let answer = p.answer().await;
            p.answered(answer, at, &mut backoff);
            let full = Duration::from_millis(100 * 2u64.pow(failures - 1));
            let next = p.wake_at().unwrap();
            assert!(
                next >= at + full / 2 && next <= at + full,
                "probe {failures}: {:?}",
                next - at
            );
            at = next;
        }
        // A call still in flight from before the pause comes back unanswered.
        p.unanswered(at - Duration::from_millis(1));
        assert_eq!(p.wake_at(), Some(at), "the probes' backoff goes on");
        // A probe that panics counts as unanswered.
        p.start(async { panic!("probe bug") });
        let answer = p.answer().await;
        assert!(!answer);
        p.answered(answer, at, &mut backoff);
        assert!(p.writes_paused());
    }

    #[tokio::test(start_paused = true)]
    async fn no_answer_without_a_running_probe() {
        let mut p = Probe::new();
        let pending = tokio::time::timeout(Duration::from_secs(3600), p.answer()).await;
        assert!(pending.is_err(), "answer() must wait forever when no probe runs");
    }
}

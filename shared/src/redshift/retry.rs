//! The one retry loop of the Data API client: attempt counting, the retry decision
//! ([`is_retriable`]), jittered exponential backoff and the caller's deadline, in one place.
//!
//! Every call that may be repeated — submitting a transaction, running it to its end, reading
//! a page of the rejected-rows report, describing a page of a table — goes through
//! [`RetryPolicy::run`]. Polling a running statement is not retrying (a statement still running
//! is no failure) and has its own schedule, but pauses with the same [`pause`].

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use super::error::{DataApiError, is_retriable};

/// Exponential backoff: `initial` for wait 0 (the first retry or poll), times `factor` for
/// each one after, at most `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// Growth per wait (2.0 doubles).
    pub factor: f64,
}

impl Backoff {
    /// The delay before wait number `wait` (0-based): `initial × factor^wait`, at most `max`.
    pub fn delay(&self, wait: u32) -> Duration {
        let grown = self.initial.as_secs_f64() * self.factor.powi(wait.min(30) as i32);
        Duration::from_secs_f64(grown.min(self.max.as_secs_f64()))
    }

    /// "Full jitter": uniform between zero and the exponential delay, so that concurrent
    /// loaders that conflicted do not retry in lockstep.
    pub fn jittered(&self, wait: u32) -> Duration {
        let cap = self.delay(wait);
        cap.mul_f64(rand::rng().random_range(0.0..=1.0))
    }
}

/// Retries of throttling, capacity and conflict errors: 100 ms doubling to 5 s.
pub const RETRY: Backoff = Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(5), factor: 2.0 };
/// At most this many attempts per call; the deadline usually comes first.
pub const MAX_ATTEMPTS: u32 = 10;

/// How the pause before a retry is drawn from its [`Backoff`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Uniform between zero and [`Backoff::delay`] ([`Backoff::jittered`]): what the pipeline
    /// uses, so that loaders that failed together do not retry together.
    Full,
    /// [`Backoff::delay`] exactly: for tests that check the schedule.
    None,
}

/// When a failed call is made again: after which pause, and how often at most.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// The pauses between attempts.
    pub backoff: Backoff,
    /// How each pause is drawn from `backoff`.
    pub jitter: Jitter,
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// `backoff` with full jitter and [`MAX_ATTEMPTS`] attempts: the client's policy.
    pub const fn new(backoff: Backoff) -> RetryPolicy {
        RetryPolicy { backoff, jitter: Jitter::Full, max_attempts: MAX_ATTEMPTS }
    }

    /// The pause before retry number `retry` (0-based).
    pub fn delay(&self, retry: u32) -> Duration {
        match self.jitter {
            Jitter::Full => self.backoff.jittered(retry),
            Jitter::None => self.backoff.delay(retry),
        }
    }

    /// Make `attempt` until it succeeds, fails with an error [`is_retriable`] does not allow,
    /// has been made `max_attempts` times, or the pause before the next one would reach
    /// `deadline` ([`DataApiError::Deadline`] with `during`). Before each pause `on_retry` is
    /// told the number of the attempt that failed (1-based) and its error: the caller counts
    /// (and may log) its retries there, so a retry cut short by the deadline is counted too.
    ///
    /// `attempt` keeps the deadline itself (each call is made with `timeout_at(deadline, …)`):
    /// the error it returns then is a `Deadline`, which is never retried.
    pub async fn run<T, Fut>(
        &self,
        deadline: Instant,
        during: &'static str,
        mut on_retry: impl FnMut(u32, &DataApiError),
        mut attempt: impl FnMut() -> Fut,
    ) -> Result<T, DataApiError>
    where
        Fut: Future<Output = Result<T, DataApiError>>,
    {
        let mut made = 0;
        loop {
            made += 1;
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(error) if is_retriable(&error) && made < self.max_attempts => {
                    on_retry(made, &error);
                    pause(self.delay(made - 1), deadline, during, None).await?;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// Sleep for `delay`, or fail at once with [`DataApiError::Deadline`] (`during`, and the
/// statement concerned, if any) when waking up would reach `deadline`: no pause ever ends at
/// or past the deadline.
pub async fn pause(
    delay: Duration,
    deadline: Instant,
    during: &'static str,
    statement_id: Option<&str>,
) -> Result<(), DataApiError> {
    if Instant::now() + delay >= deadline {
        return Err(DataApiError::Deadline { during, statement_id: statement_id.map(str::to_string) });
    }
    tokio::time::sleep(delay).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn api(code: &str) -> DataApiError {
        DataApiError::Api { operation: "BatchExecuteStatement", code: code.into(), status: Some(400) }
    }

    const THROTTLED: &str = "ThrottlingException";
    const EXACT: RetryPolicy = RetryPolicy { backoff: RETRY, jitter: Jitter::None, max_attempts: MAX_ATTEMPTS };

    /// What a run did: when each attempt was made (since the start), the attempt numbers
    /// `on_retry` was told, and the result.
    struct Run {
        at: Vec<Duration>,
        retries: Vec<u32>,
        result: Result<&'static str, DataApiError>,
    }

    /// Run `policy` until `deadline_in`, the attempts answering from `answers` in turn (the
    /// last one for ever): an error code, or `None` for success.
    async fn run(policy: RetryPolicy, deadline_in: Duration, answers: &[Option<&str>]) -> Run {
        let start = Instant::now();
        let at = Mutex::new(Vec::new());
        let mut retries = Vec::new();
        let result = policy
            .run(
                start + deadline_in,
                "testing",
                |made, error| {
                    assert!(is_retriable(error));
                    retries.push(made);
                },
                || {
                    let mut at = at.lock().unwrap();
                    at.push(start.elapsed());
                    let answer = answers[(at.len() - 1).min(answers.len() - 1)];
                    async move {
                        match answer {
                            None => Ok("done"),
                            Some(code) => Err(api(code)),
                        }
                    }
                },
            )
            .await;
        Run { at: at.into_inner().unwrap(), retries, result }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn retries_a_retriable_error_up_to_max_attempts_with_growing_delays() {
        let run = run(EXACT, Duration::from_secs(3_600), &[Some(THROTTLED)]).await;
        assert_eq!(run.result, Err(api(THROTTLED)), "the last error, once the attempts are spent");
        assert_eq!(run.at.len(), MAX_ATTEMPTS as usize);
        assert_eq!(run.retries, (1..MAX_ATTEMPTS).collect::<Vec<_>>(), "every retry counted, by attempt");
        let pauses: Vec<Duration> = run.at.windows(2).map(|w| w[1] - w[0]).collect();
        // 100 ms doubling, capped at 5 s.
        let expected: Vec<Duration> = [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000, 5_000].map(ms).to_vec();
        assert_eq!(pauses, expected);

        // A success after two failures ends the loop there.
        let run = run_ok_after(2).await;
        assert_eq!((run.at.len(), run.retries.len(), run.result), (3, 2, Ok("done")));
    }

    async fn run_ok_after(failures: usize) -> Run {
        let mut answers = vec![Some(THROTTLED); failures];
        answers.push(None);
        run(EXACT, Duration::from_secs(3_600), &answers).await
    }

    #[tokio::test(start_paused = true)]
    async fn jittered_pauses_stay_within_the_schedule() {
        let policy = RetryPolicy::new(RETRY);
        let run = run(policy, Duration::from_secs(3_600), &[Some(THROTTLED)]).await;
        assert_eq!(run.at.len(), MAX_ATTEMPTS as usize);
        for (retry, w) in run.at.windows(2).enumerate() {
            assert!(w[1] - w[0] <= RETRY.delay(retry as u32), "pause {retry}: {:?}", w[1] - w[0]);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn stops_at_a_permanent_error() {
        let run = run(EXACT, Duration::from_secs(3_600), &[Some(THROTTLED), Some("ValidationException")]).await;
        assert_eq!(run.result, Err(api("ValidationException")));
        assert_eq!((run.at.len(), run.retries), (2, vec![1]), "not retried");
        assert_eq!(run.at[1], ms(100));
    }

    #[tokio::test(start_paused = true)]
    async fn never_sleeps_past_the_deadline() {
        // Attempts at 0, 100, 300 and 700 ms; the next pause (800 ms) would end at 1.5 s.
        let start = Instant::now();
        let run = run(EXACT, ms(1_000), &[Some(THROTTLED)]).await;
        assert_eq!(run.result, Err(DataApiError::Deadline { during: "testing", statement_id: None }));
        assert_eq!(run.at, [0, 100, 300, 700].map(ms).to_vec());
        assert_eq!(run.retries, vec![1, 2, 3, 4], "the retry the deadline cut short is counted");
        assert_eq!(start.elapsed(), ms(700), "no time spent after the last attempt");
        // A pause that would end exactly at the deadline is not taken either.
        assert!(pause(ms(10), Instant::now() + ms(10), "pausing", Some("s-1")).await.is_err());
        assert!(pause(ms(9), Instant::now() + ms(10), "pausing", None).await.is_ok());
    }
}

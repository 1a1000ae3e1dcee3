//! Slow-start batches (upstream's `slowStartBatch`): make `count` calls in batches of 1, 2,
//! 4, ... run concurrently, and stop after the first batch with a failure.
//!
//! When every call would fail (a quota is exhausted, an admission webhook rejects the
//! template) this costs a handful of requests instead of hundreds, and the caller learns
//! how many calls were never made so it can stop expecting their results.

use std::future::Future;

/// Runs `f(i)` for `i` in `0..count`; returns how many succeeded and the first error. Calls
/// after a failing batch are not made: `count - successes - failures in the last batch`
/// were skipped.
pub async fn slow_start_batch<F, Fut, E>(
    count: usize,
    initial: usize,
    mut f: F,
) -> (usize, Option<E>)
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let mut started = 0;
    let mut successes = 0;
    let mut batch = initial.max(1).min(count);
    while batch > 0 {
        let calls: Vec<Fut> = (started..started + batch).map(&mut f).collect();
        started += batch;
        let mut first_error = None;
        for r in futures::future::join_all(calls).await {
            match r {
                Ok(()) => successes += 1,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if first_error.is_some() {
            return (successes, first_error);
        }
        batch = (batch * 2).min(count - started);
    }
    (successes, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Runs a slow start where calls with the given indexes fail; returns (successes,
    /// error, calls made).
    async fn run(count: usize, failing: &[usize]) -> (usize, Option<usize>, Vec<usize>) {
        let calls = Mutex::new(Vec::new());
        let (ok, err) = slow_start_batch(count, 1, |i| {
            calls.lock().unwrap().push(i);
            let fails = failing.contains(&i);
            async move { if fails { Err(i) } else { Ok(()) } }
        })
        .await;
        let made = calls.into_inner().unwrap();
        (ok, err, made)
    }

    #[tokio::test]
    async fn batches_double_until_done() {
        let (ok, err, made) = run(10, &[]).await;
        assert_eq!((ok, err), (10, None));
        assert_eq!(made, (0..10).collect::<Vec<_>>());
        assert_eq!(run(0, &[]).await, (0, None, vec![]));
    }

    #[tokio::test]
    async fn a_failing_batch_stops_the_rest() {
        // Batches: [0], [1,2], [3..7), [7..10). Index 4 fails: the third batch completes
        // (3 of 4 succeed) and the fourth is never started.
        let (ok, err, made) = run(10, &[4]).await;
        assert_eq!((ok, err), (1 + 2 + 3, Some(4)));
        assert_eq!(made, (0..7).collect::<Vec<_>>());
        // The very first call failing makes exactly one request.
        assert_eq!(run(500, &[0]).await, (0, Some(0), vec![0]));
    }
}

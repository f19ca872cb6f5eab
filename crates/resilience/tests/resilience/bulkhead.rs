use std::sync::Arc;
use std::time::Duration;

use bazaar_resilience::{lift, BulkheadLayer, ResilienceError};
use tokio::sync::Semaphore;
use tower::{Layer, ServiceExt};

use crate::Boom;

/// A service whose calls wait until the test hands out a "go" permit, counting entries.
fn gated() -> (
    impl tower::Service<
            (),
            Response = (),
            Error = ResilienceError<Boom>,
            Future = impl Send + 'static,
        > + Clone
        + Send
        + 'static,
    Arc<Semaphore>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    let go = Arc::new(Semaphore::new(0));
    let entered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (g, e) = (go.clone(), entered.clone());
    let service = tower::service_fn(move |()| {
        let (go, entered) = (g.clone(), e.clone());
        async move {
            entered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            go.acquire()
                .await
                .map_err(|_| Boom { retryable: false })?
                .forget();
            Ok::<(), Boom>(())
        }
    });
    (lift(service), go, entered)
}

async fn wait_until(mut condition: impl FnMut() -> bool) {
    for _ in 0..1_000 {
        if condition() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("condition not met");
}

#[tokio::test(start_paused = true)]
async fn rejects_a_call_that_waits_longer_than_the_queue_timeout() {
    let (inner, go, entered) = gated();
    let layer = BulkheadLayer::new(1, Duration::from_millis(100));
    let service = layer.layer(inner);
    let first = tokio::spawn(service.clone().oneshot(()));
    wait_until(|| entered.load(std::sync::atomic::Ordering::SeqCst) == 1).await;
    assert_eq!(layer.available(), 0);

    let second = service.clone().oneshot(()).await;
    assert!(
        matches!(second, Err(ResilienceError::BulkheadFull)),
        "{second:?}"
    );
    assert_eq!(
        entered.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the rejected call never reached the service"
    );

    go.add_permits(1);
    first.await.unwrap().unwrap();
    assert_eq!(layer.available(), 1);
}

#[tokio::test(start_paused = true)]
async fn admits_a_waiting_call_when_a_slot_frees() {
    let (inner, go, entered) = gated();
    let layer = BulkheadLayer::new(1, Duration::from_secs(1));
    let service = layer.layer(inner);
    let first = tokio::spawn(service.clone().oneshot(()));
    wait_until(|| entered.load(std::sync::atomic::Ordering::SeqCst) == 1).await;

    let second = tokio::spawn(service.clone().oneshot(()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        entered.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the second call queues while the slot is taken"
    );
    // Let the first call finish (within the second's queue timeout): the second gets in.
    go.add_permits(1);
    first.await.unwrap().unwrap();
    wait_until(|| entered.load(std::sync::atomic::Ordering::SeqCst) == 2).await;
    go.add_permits(1);
    second.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_zero_queue_timeout_rejects_at_once_when_full() {
    let (inner, go, entered) = gated();
    let service = BulkheadLayer::new(2, Duration::ZERO).layer(inner);
    let a = tokio::spawn(service.clone().oneshot(()));
    let b = tokio::spawn(service.clone().oneshot(()));
    wait_until(|| entered.load(std::sync::atomic::Ordering::SeqCst) == 2).await;
    assert!(matches!(
        service.clone().oneshot(()).await,
        Err(ResilienceError::BulkheadFull)
    ));
    go.add_permits(2);
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
}

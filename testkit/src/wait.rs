//! Waiting on a warehouse: the condition, not a time.
use inlet_seams::Warehouse;
use std::time::{Duration, Instant};

/// Waits until the warehouse has read `events` user records (aggregated + dead-lettered +
/// duplicates); panics naming where it stalled once `limit` has passed.
pub async fn wait_until_read(warehouse: &dyn Warehouse, events: u64, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let read = warehouse.totals().await.unwrap().read();
        if read >= events as i64 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "stalled at {read} of {events} user records read after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

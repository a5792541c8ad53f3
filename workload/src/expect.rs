//! What a workload must give on a stream's shards, with consumers on their default settings.
use inlet_generator::{Expected, Generator, GeneratorConfig};
use inlet_producer::ShardMap;

/// An empty expectation for a stream of `shards` shards read by consumers with the default
/// allowed lateness and dedupe retry window (`inlet_rollup::Horizon::default()`, which the
/// consumer's `WorkerConfig::new` takes too).
pub fn expectation(shards: usize) -> Expected {
    let horizon = inlet_rollup::Horizon::default();
    Expected::new(shards, horizon.lateness.allowed_ms).with_retry_window_ms(horizon.retry_window_ms)
}

/// What the pipeline must produce for the workload `config` generates, sent in generation
/// order to the stream whose shards `map` describes.
pub fn expect(config: &GeneratorConfig, map: &ShardMap) -> Expected {
    let mut expected = expectation(map.len());
    for ev in Generator::new(config.clone()) {
        expected.observe(&ev, map.index_of_key(&ev.partition_key));
    }
    expected
}

"""The independent Kafka client that `benches/benches/kafka_throughput.rs` measures Inlet
against: confluent-kafka (the librdkafka its wheel bundles, not Inlet's), on the same broker
and the same events.

    kafka_peer.py produce BOOTSTRAP TOPIC FILE [SETTING=VALUE ...]
        FILE: JSON lines {"key", "data" (base64), "partition"}. Every line is decoded before
        the clock starts; then each event is produced to its partition (the one Inlet's
        producer chose), with Inlet's producer settings (idempotent, lz4, linger 5 ms; any
        SETTING=VALUE given, a librdkafka setting, is applied over them), a delivery callback
        per message, and flush() until every one is delivered.
        Timed: the produce loop and the flush (not the interpreter's start, the file's
        decoding, making the client, its first metadata call or the 1.5 s it is then given to
        get its idempotent producer id).

    kafka_peer.py consume BOOTSTRAP TOPIC COUNT [SETTING=VALUE ...]
        Assigns every partition from its beginning (no group join, no commits) and counts
        messages and key + value bytes until COUNT, with librdkafka's default consumer
        settings (and any SETTING=VALUE given). Timed: from making the consumer (its metadata
        call included) to the COUNT-th message.

Prints one JSON line: {"mode", "events", "bytes", "seconds", "cpu_user", "cpu_sys",
"librdkafka"}; the CPU seconds are this process's (resource.getrusage) over the timed part.
Exits 1 if a message failed or COUNT was not reached (60 s without a message).
"""
import base64
import json
import resource
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition, libversion


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def report(mode, events, nbytes, started, cpu0):
    seconds = time.perf_counter() - started
    user, sys_ = cpu()
    print(json.dumps({
        "mode": mode,
        "events": events,
        "bytes": nbytes,
        "seconds": seconds,
        "cpu_user": user - cpu0[0],
        "cpu_sys": sys_ - cpu0[1],
        "librdkafka": libversion()[0],
    }), flush=True)


def produce(bootstrap, topic, path, settings):
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                records.append((r["key"].encode(), base64.b64decode(r["data"]), int(r["partition"])))
    nbytes = sum(len(k) + len(v) for k, v, _ in records)
    producer = Producer({
        "bootstrap.servers": bootstrap,
        # Inlet's producer_config (kafka/src/location.rs).
        "enable.idempotence": True,
        "compression.type": "lz4",
        "linger.ms": 5,
        "batch.size": 1000000,
        "message.timeout.ms": 30000,
        "queue.buffering.max.kbytes": 1048576,
        "queue.buffering.max.messages": 1000000,
        **settings,
    })
    # Metadata and the idempotent producer id before the clock starts, as Inlet's client,
    # made before its topic was created, has them too: librdkafka asks for the id about
    # 0.5 s after it starts (measured here: the first message took 0.50 s to deliver, the
    # next ones 1-2 ms), and there is no call that waits for it.
    producer.list_topics(topic, timeout=30)
    time.sleep(1.5)
    delivered, failed = 0, []

    def on_delivery(err, _msg):
        nonlocal delivered
        if err is None:
            delivered += 1
        else:
            failed.append(str(err))

    cpu0, started = cpu(), time.perf_counter()
    for key, value, partition in records:
        while True:
            try:
                producer.produce(topic, value=value, key=key, partition=partition, on_delivery=on_delivery)
                break
            except BufferError:  # its queue is full: let deliveries drain it
                producer.poll(0.1)
        producer.poll(0)
    left = producer.flush(300)
    report("produce", delivered, nbytes, started, cpu0)
    if failed or left or delivered != len(records):
        sys.exit(f"{len(failed)} failed (first: {failed[:1]}), {left} not delivered, {delivered} of {len(records)}")


def consume(bootstrap, topic, count, settings):
    cpu0, started = cpu(), time.perf_counter()
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "inlet-bench-peer",  # required by the client; never joined (assign, no commits)
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        **settings,
    })
    meta = consumer.list_topics(topic, timeout=30).topics[topic]
    if meta.error is not None:
        raise KafkaException(meta.error)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(meta.partitions)])
    read, nbytes, last = 0, 0, time.monotonic()
    while read < count and time.monotonic() - last < 60:
        for msg in consumer.consume(num_messages=10000, timeout=1.0):
            if msg.error():
                if msg.error().fatal() or not msg.error().retriable():
                    raise KafkaException(msg.error())
                continue
            nbytes += len(msg.key() or b"") + len(msg.value() or b"")
            read, last = read + 1, time.monotonic()
    report("consume", read, nbytes, started, cpu0)
    consumer.close()
    if read < count:
        sys.exit(f"read {read} of {count} messages")


def main():
    mode, bootstrap, topic, arg = sys.argv[1:5]
    settings = dict(s.split("=", 1) for s in sys.argv[5:])
    if mode == "produce":
        produce(bootstrap, topic, arg, settings)
    elif mode == "consume":
        consume(bootstrap, topic, int(arg), settings)
    else:
        sys.exit(f"unknown mode {mode!r}: produce BOOTSTRAP TOPIC FILE [SETTING=VALUE ...]"
                 " | consume BOOTSTRAP TOPIC COUNT [SETTING=VALUE ...]")


if __name__ == "__main__":
    main()

"""Reads every partition of a Kafka topic from its beginning with confluent-kafka (the
librdkafka its wheel bundles, not Inlet's): the independent reader the Kafka tests compare
with. No consumer group: the partitions are assigned, and no offset is committed.

    kafka_read.py BOOTSTRAP TOPIC COUNT -> JSON lines, one per message, each partition in
                                           offset order: {"partition","offset","key","data"}
                                           (key as text or null, data base64); stops after
                                           COUNT messages or 60 s without one
"""
import base64
import json
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
consumer = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": "inlet-oracle",  # required by the client; never joined (assign, no commits)
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
})
meta = consumer.list_topics(topic, timeout=30).topics[topic]
if meta.error is not None:
    raise KafkaException(meta.error)
consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(meta.partitions)])

out, read, last = sys.stdout, 0, time.monotonic()
while read < count and time.monotonic() - last < 60:
    for msg in consumer.consume(num_messages=10000, timeout=1.0):
        if msg.error():
            if msg.error().fatal() or not msg.error().retriable():
                raise KafkaException(msg.error())
            continue
        key = msg.key()
        out.write(json.dumps({
            "partition": msg.partition(),
            "offset": msg.offset(),
            "key": key.decode() if key is not None else None,
            "data": base64.b64encode(msg.value() or b"").decode(),
        }) + "\n")
        read, last = read + 1, time.monotonic()
consumer.close()
print(f"read {read} of {count} messages", file=sys.stderr)

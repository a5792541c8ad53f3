"""Writes JSON lines from stdin to a Kafka topic with confluent-kafka (the librdkafka its
wheel bundles, not Inlet's): the independent writer Inlet's Kafka reader is checked against.
Its default partitioner (consistent_random: CRC32 of the key) picks the partition, batches
are zstd-compressed (Inlet writes lz4), the producer is idempotent.

    kafka_write.py BOOTSTRAP TOPIC <  {"key","data"} lines (data base64)
                                   -> prints the count delivered; exits 1 if any failed
"""
import base64
import json
import sys

from confluent_kafka import Producer

bootstrap, topic = sys.argv[1], sys.argv[2]
producer = Producer({
    "bootstrap.servers": bootstrap,
    "enable.idempotence": True,
    "compression.type": "zstd",
    "linger.ms": 20,
})
delivered, failed = 0, []


def on_delivery(err, msg):
    global delivered
    if err is None:
        delivered += 1
    else:
        failed.append(str(err))


for line in sys.stdin:
    if not line.strip():
        continue
    r = json.loads(line)
    while True:
        try:
            producer.produce(topic, key=r["key"].encode(), value=base64.b64decode(r["data"]),
                             on_delivery=on_delivery)
            break
        except BufferError:  # its queue is full: let deliveries drain it
            producer.poll(0.1)
    producer.poll(0)
left = producer.flush(120)
print(delivered)
if failed or left:
    sys.exit(f"{len(failed)} failed (first: {failed[:1]}), {left} not delivered")

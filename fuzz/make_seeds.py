#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (fuzz/seeds/<target>/) from a small real run:
stream records and the events in them, NDJSON from replay, an archive segment, a spool file
built to the spool's format, the KPL golden vectors, the example configuration.
Usage: INLET=path/to/inlet fuzz/make_seeds.py"""
import tempfile, sqlite3, zlib, struct, re, gzip, os, json, subprocess, base64, shutil
HERE=os.path.dirname(os.path.abspath(__file__))
S=os.path.join(HERE,'seeds')
INLET=os.environ.get('INLET','inlet')
work=tempfile.mkdtemp()
os.chdir(work)
subprocess.run([INLET,'produce','--data-dir','d','--events','300','--shards','2','--invalid-share','0.1'],check=True,capture_output=True)
try:
    subprocess.run([INLET,'consume','--data-dir','d','--archive','arch'],timeout=8,capture_output=True)
except subprocess.TimeoutExpired:
    pass
shutil.rmtree(S, ignore_errors=True)
for t in 'kpl_aggregate protobuf_events json_events collector_body spool_file archive_segment locations config_file'.split():
    os.makedirs(f'{S}/{t}')
def put(t, name, b):
    open(f'{S}/{t}/{name}','wb').write(b)
c=sqlite3.connect('d/stream.db')
rows=c.execute('select partition_key, explicit_hash_key, data from records order by seq limit 4').fetchall()
for i,(pk,ehk,data) in enumerate(rows[:3]):
    put('kpl_aggregate', f'stream-record-{i}', data)
src=open(os.path.join(HERE,'..','schemas','tests','kpl_codec.rs')).read()
for i,m in enumerate(re.findall(r'"(f3899ac2[0-9a-f\\\s]*?)"', src)):
    put('kpl_aggregate', f'golden-{i}', bytes.fromhex(re.sub(r'[\\\s]','',m)))
def varint_at(b,i):
    n=shift=0
    while True:
        x=b[i]; i+=1; n|=(x&0x7f)<<shift; shift+=7
        if not x&0x80: return n,i
def fields(b):
    i=0
    while i<len(b):
        key,i=varint_at(b,i)
        f,w=key>>3,key&7
        if w==0: v,i=varint_at(b,i)
        elif w==2:
            l,i=varint_at(b,i); v=b[i:i+l]; i+=l
        else: raise Exception(w)
        yield f,v
users=[]
for pk,ehk,data in rows[:2]:
    body=data[4:-16]
    for f,v in fields(body):
        if f==3 and len(users)<5:
            users+=[d for g,d in fields(v) if g==3]
for i,u in enumerate(users[:5]):
    put('protobuf_events', f'envelope-{i}', u)
def varint(n):
    out=bytearray()
    while True:
        b=n&0x7f; n>>=7
        if n: out.append(b|0x80)
        else: out.append(b); return bytes(out)
batch=b''.join(b'\x0a'+varint(len(u))+u for u in users[:3])
put('protobuf_events','batch-0',batch)
lines=subprocess.run([INLET,'replay','ndjson','--data-dir','d'],capture_output=True).stdout.decode().splitlines()
for i,l in enumerate(lines[:3]):
    put('json_events', f'event-{i}', l.encode())
put('json_events','batch-0', ('{"events":['+','.join(lines[:3])+']}').encode())
put('json_events','array-0', ('['+','.join(lines[:2])+']').encode())
body=('{"events":['+','.join(lines[:3])+']}').encode()
put('collector_body','json-identity', bytes([0])+body)
put('collector_body','json-gzip', bytes([0|1<<2])+gzip.compress(body))
put('collector_body','protobuf-identity', bytes([1])+batch)
put('collector_body','protobuf-gzip', bytes([1|1<<2])+gzip.compress(batch))
magic=b'INLSPL\x00\x02'
spool=bytearray(magic)
for pk,ehk,data in rows[:3]:
    rec=struct.pack('<H',len(pk))+pk.encode()+(b'\x01'+ehk[::-1] if ehk else b'\x00')+struct.pack('<I',3)+data
    spool+=struct.pack('<II',len(rec),zlib.crc32(rec))+rec
put('spool_file','raw-3-records', bytes([0])+bytes(spool))
put('spool_file','framed', bytes([1])+b'\x00\x02pk\x00\x01\x00\x00\x00hello')
for p in os.popen('find arch -name "*.seg"').read().split():
    put('archive_segment','raw-'+os.path.basename(os.path.dirname(p)), bytes([0])+open(p,'rb').read())
for i,u in enumerate(['kinesis://telemetry?region=us-east-1&endpoint=http://127.0.0.1:4567&read=fanout',
    'kafka://127.0.0.1:9092,127.0.0.1:9093/events?group=rollups&compression.type=zstd',
    'postgres://inlet:secret@db.example.com:5432/inlet?sslmode=verify-full&sslrootcert=/etc/inlet/ca.pem&connect_timeout=5',
    'host=localhost user=postgres sslmode=require']):
    put('locations', f'url-{i}', u.encode())
put('config_file','example', open(os.path.join(HERE,'..','config','inlet.example.toml'),'rb').read())
put('config_file','with-env', b'[stream]\nshards = 8\n\x00PRODUCER__BUFFER_BYTES=2097152')

#!/usr/bin/env python3
"""Golden TensorBoard event records, written by TensorBoard's own code.

Serializes a few `tensorflow.Event` messages with TensorBoard's protobuf classes and frames them
with its RecordWriter (the writer torch.utils.tensorboard uses), with fixed wall times, into
crates/train/tests/fixtures/tensorboard_events.bin. mouton's encoder must give the same bytes
(`cargo test -p mouton-train --lib tensorboard`).

Usage: pip install tensorboard; python3 bench/tensorboard_fixture.py
"""
import io
import os

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "train", "tests", "fixtures",
                   "tensorboard_events.bin")


def scalars(step, wall, values):
    s = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=t, simple_value=v)
                                   for t, v in values])
    return event_pb2.Event(wall_time=wall, step=step, summary=s)


def main():
    events = [
        event_pb2.Event(wall_time=1700000000.25, file_version="brain.Event:2"),
        event_pb2.Event(wall_time=1700000001.5, step=3,
                        session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)),
        scalars(3, 1700000002.75, [("train/d_loss", 0.1), ("train/g_loss", -1.25)]),
        # A zero value and step 0: the oneof keeps the zero, proto3 drops the step.
        scalars(0, 1700000003.0, [("quality/swd", 0.0)]),
        scalars(2**40 + 7, 1700000004.125, [("speed/images_per_s", 123456.75)]),
        event_pb2.Event(wall_time=1700000005.5, step=4, summary=summary_pb2.Summary(value=[
            summary_pb2.Summary.Value(tag="samples", image=summary_pb2.Summary.Image(
                height=2, width=3, colorspace=1, encoded_image_string=bytes(range(200))))])),
    ]
    buf = io.BytesIO()
    w = RecordWriter(buf)
    for e in events:
        w.write(e.SerializeToString())
    with open(OUT, "wb") as f:
        f.write(buf.getvalue())
    print(f"wrote {os.path.normpath(OUT)}: {len(events)} events, {len(buf.getvalue())} bytes")


if __name__ == "__main__":
    main()

"""onnxruntime's per-row cost on the same model and rows as examples/onnx_bench.rs
(one intra-op thread, as a serving worker would run it). Usage: bench_ort.py MODEL.onnx MODEL.json"""
import json, sys, time
import numpy as np
import onnxruntime as ort

opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
opts.inter_op_num_threads = 1
sess = ort.InferenceSession(sys.argv[1], opts, providers=["CPUExecutionProvider"])
doc = json.load(open(sys.argv[2]))
name, spec = next(iter(doc["inputs"].items()))
x = np.array([np.nan if v is None else v for v in spec["data"]], dtype=np.float32).reshape(spec["shape"])
for batch in (1, 100):
    rows = np.resize(x, (batch, x.shape[1])).astype(np.float32)
    iters = 20000 if batch == 1 else 500
    for _ in range(iters // 10):
        sess.run(None, {name: rows})
    t = time.perf_counter()
    for _ in range(iters):
        sess.run(None, {name: rows})
    per_call = (time.perf_counter() - t) * 1e6 / iters
    print(f"batch {batch:>3}: {per_call:9.2} µs/call, {per_call / batch:8.3} µs/row")

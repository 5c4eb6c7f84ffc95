"""Training of the position, model (series) and plate networks on labelled windows.

Needs the ``train`` extra (PyTorch, ONNX). ``locowatch train position|model|plate`` reads
the dataset layout of docs/datasets.md (the twin writes it; a facility can write it from
its own footage), trains on the CPU with a fixed seed, measures the exported ONNX on
held-out scenes through the same decoders the edge runs, and writes the artefact folder
(model.onnx, model.fp16.onnx, meta.json, card.md).

    data.py      labels.jsonl + images -> arrays and per-task targets
    nets.py      the three small networks
    fit.py       the seeded training loop with a progress bar
    export.py    ONNX (FP32 and FP16, dynamic batch) and the artefact folder
    evaluate.py  held-out metrics of an artefact, split by night and occlusion
    cli.py       ``locowatch train``
"""

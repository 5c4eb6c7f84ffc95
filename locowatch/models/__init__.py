"""Trained model artefacts and the meaning of their inputs and outputs.

Both sides of a model's life import this package: ``training`` writes artefacts and
measures them through the decoders here, and the edge estimators run the very same
preprocessing and decoding around an inference engine. So a model is measured exactly as
it will run.

    artefacts.py   where models live (``models/<name>/<version>/``), their metadata
    position.py    strip -> network input; network output -> occupied intervals in metres
    attributes.py  body and end-face windows -> inputs; class scores / CTC -> values
"""

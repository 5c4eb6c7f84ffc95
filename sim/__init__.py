"""The facility twin: layout, scenario, rendering, faults, ground truth, evaluation.

Built by the «Facility twin» issue; it stands in for a real depot's cameras in the demo,
the tests and model training.
"""

"""Estimators: one generic service for position and for every attribute (series, plate, ...)."""

"""The aggregator: frames in, packets (strips, body and plate crops) out to every flow."""

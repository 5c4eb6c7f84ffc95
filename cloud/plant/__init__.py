"""Results into plant systems: MQTT, webhooks and OPC UA, fed from an outbox in the
database that loses nothing, and alerts evaluated on the facility state."""

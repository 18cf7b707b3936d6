"""The Label Studio ML backend: HTTP API, Redis store, label config, head, RQ jobs."""

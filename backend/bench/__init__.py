"""DALT's benchmarks, every one against a baseline measured in the same run (``dalt bench``).

``runner`` lists them (``BENCHES``) and writes the table and ``docs/bench/results.json``; one module per
measurement: ``predict``, ``webhook``, ``freshness``, ``head_training``, ``bulk_encoding``, ``memory``,
``scaleout``; ``encoder_pipeline`` is the encoder alone (``dalt bench encoder``). ``common`` holds the
private servers, payloads and statistics they share, ``apps`` the baseline servers, ``data`` the MNIST
sample and its autoencoder.
"""

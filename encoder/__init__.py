"""Everything that turns a task's image into a vector: fetch, decode, the network, training, encoding."""

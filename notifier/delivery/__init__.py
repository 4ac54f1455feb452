"""Live delivery: the service that stores then publishes, the broker, and the hub of sockets."""

"""The state backends that keep everything in this process's memory: the default, and the only one
until a shared backend exists. Replicas behind a load balancer do not share what these hold."""

"""Remote commands: the lifecycle and the book (pure), the dispatch queue, the tracker process and
the API's read model of Kafka."""

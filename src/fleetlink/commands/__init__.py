"""Remote commands, one wing: the rules of a request (``intake``, pure), the lifecycle and the
book (pure), the dispatch queue, the downlink to the cars, the tracker and the API's read model."""

"""One module per protocol: reads (fetch raw state, encode calls) and exact math beside it."""

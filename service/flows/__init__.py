"""The use cases, one module per capability. Each owns its transactions and knows nothing of
HTTP; flows share through service.domain and service.db, never through each other's internals."""

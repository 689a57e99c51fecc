"""Reporting upward: every rating the hub holds reaches the province's 好差评 system exactly once per
(projectNo, assessNumber).

Pure rules (no I/O): ``profiles`` (one explicit mapping table per target), ``signing`` (HMAC-SHA256 and
SM2 with SM3), ``rules`` (the outbox state machine, backoff with jitter, Retry-After, the circuit
breaker). Thin shells: ``outbox`` (the table and its SQL, written in the transaction that stores a
rating), ``sender`` (HTTP, batches, row locks so that two hub processes never send one record at once)
and ``standin`` (a stand-in provincial server for tests, the demo and the benchmark). Like the rest of
``hub`` this package must not import Qt, ``kiosk``, ``drivers`` or ``sync``.
"""

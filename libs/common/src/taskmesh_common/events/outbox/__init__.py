"""The transactional outbox: producers keep pending events inside the document they change,
and an :class:`OutboxRelay` per replica publishes them.

- :mod:`.pending`: which documents have pending entries (the index-backed query, the scan,
  the pending gauges);
- :mod:`.claims`: a relay's claim on a document (a lease written on the document itself),
  reading a process's own writes without one, and settling once entries are confirmed;
- :mod:`.named`: the documents named for the next cycles (own writes, to claim, in flight);
- :mod:`.picking`: what one cycle takes: own writes, named documents, what a scan finds;
- :mod:`.relay`: the relay's loop: publishing with confirms, settling, the background pass.
"""

from taskmesh_common.events.outbox.claims import CLAIM_FIELD, Claimed
from taskmesh_common.events.outbox.pending import PENDING, PENDING_INDEX
from taskmesh_common.events.outbox.relay import OutboxRelay

__all__ = ["CLAIM_FIELD", "PENDING", "PENDING_INDEX", "Claimed", "OutboxRelay"]

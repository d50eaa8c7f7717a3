"""``sqs://``: Kombu's queue names and bodies, batches, held visibility, leased broadcast."""

from .broadcast import SQSSubscription
from .transport import SQSTransport

__all__ = ["SQSSubscription", "SQSTransport"]

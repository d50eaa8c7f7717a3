"""The ``kafka://`` transport (kafka-python): a topic and a consumer group per queue."""

from .transport import KafkaTransport, MessageTooLarge

__all__ = ["KafkaTransport", "MessageTooLarge"]

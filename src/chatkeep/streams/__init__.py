"""The event broker runs publish their streams to: in-process memory, or Redis Streams when
several processes share the work. Streams are replayable from any cursor until they expire."""

from chatkeep.streams.broker import Broker, Event, StreamGone, make_broker

__all__ = ["Broker", "Event", "StreamGone", "make_broker"]

"""The shared inbox: conversations, messages, assignment, read state and agent assistance."""

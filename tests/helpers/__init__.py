"""What tests share: sockets, channels and receivers, campaigns (`tests/conftest.py` has the hubs)."""

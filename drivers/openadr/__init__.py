"""OpenADR 2.0b: a VEN (client) on ``openleadr``. Knows the protocol only, nothing of plans."""

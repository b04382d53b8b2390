"""ECHONET Lite over UDP (port 3610): frame codec, client, and device drivers."""

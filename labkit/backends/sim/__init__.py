"""The sim backend: a lab daemon (``daemon``) hosts every product's emulator on loopback; ``backend`` talks to it."""

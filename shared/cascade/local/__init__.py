"""The local stack: the same template, state machine and handlers on loopback, with moto as the
AWS and local stand-ins for the providers. Not used on AWS."""

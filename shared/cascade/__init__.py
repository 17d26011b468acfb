"""Cascade messaging: reach a customer on the cheapest channel first, escalate only while they stay silent.

The package is the installable core shipped to every Lambda function:

- ``scenarios``   scenario model and the bundled presets (pure)
- ``models``      API request/response models (pure)
- ``planning``    step planning, links, rendering (pure)
- ``channels``    one adapter per channel: send + understand its webhooks
- ``store``       DynamoDB access
- ``aws``         the boto3 clients and Step Functions callbacks
- ``ingest``, ``engine``, ``signals``, ``views``  the use cases handlers call
"""

__all__: list[str] = []

"""Pure domain: dataclasses, rules and ports. No boto3, no environment, no I/O."""

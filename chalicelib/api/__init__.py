"""HTTP translation: request parsing, the authorizer's verdict, error mapping."""

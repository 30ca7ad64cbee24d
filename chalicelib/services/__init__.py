"""Use cases. Each service names the ports it needs and holds no AWS detail."""

"""What producers and workers agree on: settings, models, tickets, errors, the Celery app."""

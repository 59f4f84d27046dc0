"""The worker side: a thin Celery task around a plain function that calls the TaurusDB API."""

"""The installed sender's launcher (Briefcase runs ``python -m coalesce``); the app is ``coalesce_client``."""
